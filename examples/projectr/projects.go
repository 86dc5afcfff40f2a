package main

import (
	"context"
	"errors"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/quota"
	"github.com/google/uuid"
)

// Project is one project of one tenant.
type Project struct {
	ID          string    `json:"id" format:"uuid" doc:"The project's ID, a UUID."`
	TenantID    string    `json:"tenant_id" doc:"The ID of the tenant that owns the project, as stored with it."`
	Name        string    `json:"name" doc:"The name, 1 to 200 characters."`
	Description string    `json:"description" doc:"The description, up to 10,000 characters."`
	CreatedAt   time.Time `json:"created_at" doc:"When the project was created (UTC)."`
	UpdatedAt   time.Time `json:"updated_at" doc:"When the project was last changed (UTC)."`
}

// Task is one task of a project.
type Task struct {
	ID        string    `json:"id" format:"uuid" doc:"The task's ID, a UUID."`
	TenantID  string    `json:"tenant_id" doc:"The ID of the tenant that owns the task."`
	ProjectID string    `json:"project_id" format:"uuid" doc:"The project the task belongs to."`
	Title     string    `json:"title" doc:"The title, 1 to 200 characters."`
	Status    string    `json:"status" enum:"todo,in_progress,done" doc:"todo, in_progress or done."`
	Assignee  string    `json:"assignee" doc:"Who the task is assigned to; empty for nobody."`
	CreatedAt time.Time `json:"created_at" doc:"When the task was created (UTC)."`
	UpdatedAt time.Time `json:"updated_at" doc:"When the task was last changed (UTC)."`
}

// Task statuses.
const (
	StatusTodo       = "todo"
	StatusInProgress = "in_progress"
	StatusDone       = "done"
)

// Export is a request to export a project, and its outcome: what
// GET /jobs/{id} shows.
type Export struct {
	ID        string        `json:"job_id" format:"uuid" doc:"The job's ID."`
	ProjectID string        `json:"project_id" format:"uuid" doc:"The project exported."`
	Status    string        `json:"status" enum:"queued,running,done,failed" doc:"queued, running, done or failed."`
	Result    *ExportResult `json:"result,omitempty" doc:"The export, once done."`
	Error     string        `json:"error,omitempty" doc:"Why the job failed, once failed."`
	CreatedAt time.Time     `json:"created_at" doc:"When the export was requested (UTC)."`
	UpdatedAt time.Time     `json:"updated_at" doc:"When the job last changed state (UTC)."`
}

// ExportResult is what an export job computes: the project's tasks counted
// by status, read in the tenant's own isolation.
type ExportResult struct {
	ProjectID string           `json:"project_id" format:"uuid" doc:"The project exported."`
	Tasks     map[string]int64 `json:"tasks" doc:"The project's tasks counted by status: todo, in_progress and done."`
	Total     int64            `json:"total" doc:"How many tasks the project has."`
}

// Export states.
const (
	ExportQueued  = "queued"
	ExportRunning = "running"
	ExportDone    = "done"
	ExportFailed  = "failed"
)

// NewProject holds the fields of a project to create, already validated.
type NewProject struct {
	Name        string
	Description string
}

// ProjectPatch names the fields of a project to change; nil fields stay.
type ProjectPatch struct {
	Name        *string
	Description *string
}

// NewTask holds the fields of a task to create, already validated.
type NewTask struct {
	Title    string
	Status   string
	Assignee string
}

// TaskPatch names the fields of a task to change; nil fields stay.
type TaskPatch struct {
	Title    *string
	Status   *string
	Assignee *string
}

// Page selects a page of a list.
type Page struct {
	Limit  int
	Offset int
}

// ResourceProjects is the quota-counted resource of projects.
const ResourceProjects = "projects"

// Errors of a Store. Another tenant's row is not found, like a missing one.
var (
	ErrProjectNotFound = errors.New("project not found")
	ErrTaskNotFound    = errors.New("task not found")
	ErrJobNotFound     = errors.New("job not found")
)

// Store keeps projects, tasks and export requests. Every method names the
// tenant explicitly, and none can reach another tenant's rows: another
// tenant's row is not found, and changing it changes nothing.
type Store interface {
	// CreateProject stores a new project of t, within t's quota of
	// projects (a *tenancy.QuotaError beyond it).
	CreateProject(ctx context.Context, t *tenancy.Tenant, p NewProject) (Project, error)
	// ListProjects returns a page of t's projects, newest first.
	ListProjects(ctx context.Context, t *tenancy.Tenant, p Page) ([]Project, error)
	// GetProject returns t's project with the given ID.
	GetProject(ctx context.Context, t *tenancy.Tenant, id string) (Project, error)
	// UpdateProject changes the fields p sets.
	UpdateProject(ctx context.Context, t *tenancy.Tenant, id string, p ProjectPatch) (Project, error)
	// DeleteProject removes the project with its tasks and exports, and
	// gives its unit of quota back.
	DeleteProject(ctx context.Context, t *tenancy.Tenant, id string) error
	// CreateTask adds a task to t's project.
	CreateTask(ctx context.Context, t *tenancy.Tenant, projectID string, n NewTask) (Task, error)
	// ListTasks returns a page of the project's tasks, oldest first.
	ListTasks(ctx context.Context, t *tenancy.Tenant, projectID string, p Page) ([]Task, error)
	// UpdateTask changes the fields p sets.
	UpdateTask(ctx context.Context, t *tenancy.Tenant, id string, p TaskPatch) (Task, error)
	// DeleteTask removes t's task.
	DeleteTask(ctx context.Context, t *tenancy.Tenant, id string) error
	// RequestExport records an export request of the project and queues
	// its job, in one transaction: the job exists if and only if the
	// request does.
	RequestExport(ctx context.Context, t *tenancy.Tenant, projectID string) (Export, error)
	// GetExport returns t's export request with the given ID.
	GetExport(ctx context.Context, t *tenancy.Tenant, id string) (Export, error)
	// Usage returns t's use of its quotas.
	Usage(ctx context.Context, t *tenancy.Tenant) ([]quota.Usage, error)
}

// canonicalID returns id in canonical form, or false when it is not a
// UUID in its 36-character form: such an ID names nothing, and is never
// sent to the database.
func canonicalID(id string) (string, bool) {
	if len(id) != 36 {
		return "", false
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	return u.String(), true
}
