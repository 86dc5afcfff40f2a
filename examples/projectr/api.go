package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/go-tenancy/tenancy/quota"
)

// bearerScheme names the OpenAPI security scheme of the access tokens.
const bearerScheme = "bearer"

// projectsAPI holds the handlers of the tenant's operations.
type projectsAPI struct {
	store Store
	quota quotaLimits
	// isolation names the strategy that keeps t's data: schema or rls on
	// PostgreSQL, file on SQLite.
	isolation func(t *tenancy.Tenant) string
	logger    *slog.Logger
}

// projectrAPI describes Projectr's API and registers its operations.
func projectrAPI(p *projectsAPI, a *authAPI) service.API {
	return service.API{
		Title:   "Projectr",
		Version: "1.0.0",
		Description: "A multi-tenant project-management service. POST /auth/token exchanges a tenant's identifier and secret " +
			"for a bearer token; every other call sends it (Authorization: Bearer ...) and sees only that tenant's projects, tasks and jobs.",
		Tags: []*huma.Tag{
			{Name: "auth", Description: "Access tokens."},
			{Name: "projects", Description: "The tenant's projects, within its tier's quota."},
			{Name: "tasks", Description: "The tasks of a project."},
			{Name: "jobs", Description: "Background exports of a project."},
			{Name: "tenant", Description: "The calling tenant: tier, isolation, limits and usage."},
		},
		SecuritySchemes: map[string]*huma.SecurityScheme{
			bearerScheme: {Type: "http", Scheme: "bearer", BearerFormat: "JWT",
				Description: "An access token from POST /auth/token; it names the tenant (claim tenant_id)."},
		},
		Security: []map[string][]string{{bearerScheme: {}}},
		Register: func(api huma.API) {
			a.register(api)
			p.register(api)
		},
	}
}

func (a *projectsAPI) register(api huma.API) {
	te, be := tokenErrors(service.TenantErrors()), tokenErrors(service.BodyErrors())
	huma.Register(api, huma.Operation{OperationID: "create-project", Method: http.MethodPost, Path: "/projects",
		Summary: "Create a project", Description: "Refused with 403 quota-exceeded beyond the tier's projects (starter 3, enterprise 500).",
		Tags: []string{"projects"}, DefaultStatus: http.StatusCreated, Errors: be}, a.createProject)
	huma.Register(api, huma.Operation{OperationID: "list-projects", Method: http.MethodGet, Path: "/projects",
		Summary: "List the tenant's projects, newest first", Tags: []string{"projects"}, Errors: te}, a.listProjects)
	huma.Register(api, huma.Operation{OperationID: "get-project", Method: http.MethodGet, Path: "/projects/{id}",
		Summary: "Get a project", Tags: []string{"projects"}, Errors: te}, a.getProject)
	huma.Register(api, huma.Operation{OperationID: "update-project", Method: http.MethodPatch, Path: "/projects/{id}",
		Summary: "Change a project's name or description", Tags: []string{"projects"}, Errors: be}, a.updateProject)
	huma.Register(api, huma.Operation{OperationID: "delete-project", Method: http.MethodDelete, Path: "/projects/{id}",
		Summary: "Delete a project with its tasks", Tags: []string{"projects"}, DefaultStatus: http.StatusNoContent, Errors: te}, a.deleteProject)
	huma.Register(api, huma.Operation{OperationID: "create-task", Method: http.MethodPost, Path: "/projects/{id}/tasks",
		Summary: "Add a task to a project", Tags: []string{"tasks"}, DefaultStatus: http.StatusCreated, Errors: be}, a.createTask)
	huma.Register(api, huma.Operation{OperationID: "list-tasks", Method: http.MethodGet, Path: "/projects/{id}/tasks",
		Summary: "List a project's tasks, oldest first", Tags: []string{"tasks"}, Errors: te}, a.listTasks)
	huma.Register(api, huma.Operation{OperationID: "update-task", Method: http.MethodPatch, Path: "/tasks/{id}",
		Summary: "Change a task", Tags: []string{"tasks"}, Errors: be}, a.updateTask)
	huma.Register(api, huma.Operation{OperationID: "delete-task", Method: http.MethodDelete, Path: "/tasks/{id}",
		Summary: "Delete a task", Tags: []string{"tasks"}, DefaultStatus: http.StatusNoContent, Errors: te}, a.deleteTask)
	huma.Register(api, huma.Operation{OperationID: "export-project", Method: http.MethodPost, Path: "/projects/{id}/export",
		Summary:     "Export a project in the background",
		Description: "Queues a job that counts the project's tasks by status; follow it with GET /jobs/{id}.",
		Tags:        []string{"jobs"}, DefaultStatus: http.StatusAccepted, Errors: te}, a.exportProject)
	huma.Register(api, huma.Operation{OperationID: "get-job", Method: http.MethodGet, Path: "/jobs/{id}",
		Summary: "Get an export job's state and, once done, its result", Tags: []string{"jobs"}, Errors: te}, a.getJob)
	huma.Register(api, huma.Operation{OperationID: "get-tenant", Method: http.MethodGet, Path: "/tenant",
		Summary: "The calling tenant: tier, isolation, limits and usage", Tags: []string{"tenant"}, Errors: te}, a.getTenant)
}

// tokenErrors adds 401 (no token or a bad one) to an operation's errors.
func tokenErrors(errs []int) []int {
	return append([]int{http.StatusUnauthorized}, errs...)
}

// Field limits, in characters (Unicode code points).
const (
	maxNameLen        = 200
	maxDescriptionLen = 10_000
	maxAssigneeLen    = 200
)

// trimmed trims s and checks its length in characters; loc names the
// field in the error.
func trimmed(s *string, lo, hi int, loc string) error {
	*s = strings.TrimSpace(*s)
	n := len([]rune(*s))
	if strings.ContainsRune(*s, 0) {
		return &huma.ErrorDetail{Location: loc, Message: "must not contain NUL characters"}
	}
	if n < lo || n > hi {
		return &huma.ErrorDetail{Location: loc, Message: "must be " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi) + " characters once trimmed"}
	}
	return nil
}

// nullFields refuses explicit nulls in a PATCH body, which the decoded
// body cannot tell from absent fields: a field can be changed, never
// removed.
func nullFields(raw []byte, names ...string) []error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return nil // not an object: the schema reports it
	}
	var errs []error
	for _, name := range names {
		if v, ok := fields[name]; ok && string(v) == "null" {
			errs = append(errs, &huma.ErrorDetail{Location: "body." + name, Message: "must not be null: omit the field to keep it"})
		}
	}
	return errs
}

type projectBody struct {
	Name        string `json:"name" minLength:"1" doc:"The name: 1 to 200 characters once trimmed."`
	Description string `json:"description,omitempty" maxLength:"10000" doc:"The description, up to 10,000 characters. Default empty."`
}

func (b *projectBody) Resolve(huma.Context) []error {
	var errs []error
	if b.Name != "" {
		if err := trimmed(&b.Name, 1, maxNameLen, "body.name"); err != nil {
			errs = append(errs, err)
		}
	}
	if err := trimmed(&b.Description, 0, maxDescriptionLen, "body.description"); err != nil {
		errs = append(errs, err)
	}
	return errs
}

type projectPatchBody struct {
	Name        *string `json:"name,omitempty" minLength:"1" doc:"The new name. Omit it to keep the name."`
	Description *string `json:"description,omitempty" maxLength:"10000" doc:"The new description. Omit it to keep it."`
}

func (b *projectPatchBody) Resolve(huma.Context) []error {
	var errs []error
	if b.Name != nil && *b.Name != "" {
		if err := trimmed(b.Name, 1, maxNameLen, "body.name"); err != nil {
			errs = append(errs, err)
		}
	}
	if b.Description != nil {
		if err := trimmed(b.Description, 0, maxDescriptionLen, "body.description"); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

type taskBody struct {
	Title    string `json:"title" minLength:"1" doc:"The title: 1 to 200 characters once trimmed."`
	Status   string `json:"status,omitempty" enum:"todo,in_progress,done" default:"todo" doc:"todo (the default), in_progress or done."`
	Assignee string `json:"assignee,omitempty" maxLength:"200" doc:"Who the task is assigned to. Default nobody."`
}

func (b *taskBody) Resolve(huma.Context) []error {
	var errs []error
	if b.Title != "" {
		if err := trimmed(&b.Title, 1, maxNameLen, "body.title"); err != nil {
			errs = append(errs, err)
		}
	}
	if err := trimmed(&b.Assignee, 0, maxAssigneeLen, "body.assignee"); err != nil {
		errs = append(errs, err)
	}
	if b.Status == "" {
		b.Status = StatusTodo
	}
	return errs
}

type taskPatchBody struct {
	Title    *string `json:"title,omitempty" minLength:"1" doc:"The new title. Omit it to keep the title."`
	Status   *string `json:"status,omitempty" enum:"todo,in_progress,done" doc:"The new status. Omit it to keep the status."`
	Assignee *string `json:"assignee,omitempty" maxLength:"200" doc:"The new assignee, empty for nobody. Omit it to keep it."`
}

func (b *taskPatchBody) Resolve(huma.Context) []error {
	var errs []error
	if b.Title != nil && *b.Title != "" {
		if err := trimmed(b.Title, 1, maxNameLen, "body.title"); err != nil {
			errs = append(errs, err)
		}
	}
	if b.Assignee != nil {
		if err := trimmed(b.Assignee, 0, maxAssigneeLen, "body.assignee"); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

type pageInput struct {
	Limit  int `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"How many to return, 1 to 100."`
	Offset int `query:"offset" minimum:"0" default:"0" doc:"How many to skip."`
}

type idInput struct {
	ID string `path:"id" doc:"The ID, a UUID. A value that is not one names nothing (404)."`
}

type createProjectInput struct{ Body projectBody }

type projectOutput struct{ Body Project }

type createProjectOutput struct {
	Location string `header:"Location" doc:"The project's URL."`
	Body     Project
}

type listProjectsOutput struct{ Body []Project }

type updateProjectInput struct {
	ID      string `path:"id" doc:"The project's ID."`
	Body    projectPatchBody
	RawBody []byte
}

func (in *updateProjectInput) Resolve(huma.Context) []error {
	return nullFields(in.RawBody, "name", "description")
}

type createTaskInput struct {
	ID   string `path:"id" doc:"The project's ID."`
	Body taskBody
}

type taskOutput struct{ Body Task }

type createTaskOutput struct {
	Location string `header:"Location" doc:"The task's URL."`
	Body     Task
}

type listTasksInput struct {
	ID string `path:"id" doc:"The project's ID."`
	pageInput
}

type listTasksOutput struct{ Body []Task }

type updateTaskInput struct {
	ID      string `path:"id" doc:"The task's ID."`
	Body    taskPatchBody
	RawBody []byte
}

func (in *updateTaskInput) Resolve(huma.Context) []error {
	return nullFields(in.RawBody, "title", "status", "assignee")
}

type noContent struct{}

type exportOutput struct {
	Location string `header:"Location" doc:"The job's URL."`
	Body     struct {
		JobID  string `json:"job_id" format:"uuid" doc:"The job's ID, for GET /jobs/{id}."`
		Status string `json:"status" enum:"queued" doc:"queued."`
	}
}

type jobOutput struct{ Body Export }

// TenantInfo is what GET /tenant answers.
type TenantInfo struct {
	Identifier string        `json:"identifier" doc:"The tenant's identifier."`
	Name       string        `json:"name" doc:"The tenant's display name."`
	Tier       string        `json:"tier" doc:"The tenant's tier: enterprise or starter."`
	Isolation  string        `json:"isolation" enum:"schema,rls,file" doc:"How its data is kept apart: its own PostgreSQL schema, shared tables under row-level security, or its own SQLite file."`
	Limits     quota.Limits  `json:"limits" doc:"What the tenant may hold, by resource."`
	Usage      []quota.Usage `json:"usage" doc:"What the tenant holds, by resource."`
}

type tenantOutput struct{ Body TenantInfo }

func (a *projectsAPI) createProject(ctx context.Context, in *createProjectInput) (*createProjectOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	p, err := a.store.CreateProject(ctx, t, NewProject{Name: in.Body.Name, Description: in.Body.Description})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &createProjectOutput{Location: "/projects/" + p.ID, Body: p}, nil
}

func (a *projectsAPI) listProjects(ctx context.Context, in *pageInput) (*listProjectsOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	ps, err := a.store.ListProjects(ctx, t, Page{Limit: in.Limit, Offset: in.Offset})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	if ps == nil {
		ps = []Project{}
	}
	return &listProjectsOutput{Body: ps}, nil
}

func (a *projectsAPI) getProject(ctx context.Context, in *idInput) (*projectOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	p, err := a.store.GetProject(ctx, t, in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &projectOutput{Body: p}, nil
}

func (a *projectsAPI) updateProject(ctx context.Context, in *updateProjectInput) (*projectOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	p, err := a.store.UpdateProject(ctx, t, in.ID, ProjectPatch{Name: in.Body.Name, Description: in.Body.Description})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &projectOutput{Body: p}, nil
}

func (a *projectsAPI) deleteProject(ctx context.Context, in *idInput) (*noContent, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.store.DeleteProject(ctx, t, in.ID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return &noContent{}, nil
}

func (a *projectsAPI) createTask(ctx context.Context, in *createTaskInput) (*createTaskOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	task, err := a.store.CreateTask(ctx, t, in.ID, NewTask{Title: in.Body.Title, Status: in.Body.Status, Assignee: in.Body.Assignee})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &createTaskOutput{Location: "/tasks/" + task.ID, Body: task}, nil
}

func (a *projectsAPI) listTasks(ctx context.Context, in *listTasksInput) (*listTasksOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := a.store.ListTasks(ctx, t, in.ID, Page{Limit: in.Limit, Offset: in.Offset})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	if ts == nil {
		ts = []Task{}
	}
	return &listTasksOutput{Body: ts}, nil
}

func (a *projectsAPI) updateTask(ctx context.Context, in *updateTaskInput) (*taskOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	task, err := a.store.UpdateTask(ctx, t, in.ID, TaskPatch{Title: in.Body.Title, Status: in.Body.Status, Assignee: in.Body.Assignee})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &taskOutput{Body: task}, nil
}

func (a *projectsAPI) deleteTask(ctx context.Context, in *idInput) (*noContent, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.store.DeleteTask(ctx, t, in.ID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return &noContent{}, nil
}

func (a *projectsAPI) exportProject(ctx context.Context, in *idInput) (*exportOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	e, err := a.store.RequestExport(ctx, t, in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &exportOutput{Location: "/jobs/" + e.ID}
	out.Body.JobID, out.Body.Status = e.ID, e.Status
	return out, nil
}

func (a *projectsAPI) getJob(ctx context.Context, in *idInput) (*jobOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	e, err := a.store.GetExport(ctx, t, in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &jobOutput{Body: e}, nil
}

func (a *projectsAPI) getTenant(ctx context.Context, _ *struct{}) (*tenantOutput, error) {
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	usage, err := a.store.Usage(ctx, t)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &tenantOutput{Body: TenantInfo{
		Identifier: t.Identifier, Name: t.Name, Tier: t.Tier, Isolation: a.isolation(t),
		Limits: quota.Limits{ResourceProjects: a.quota.Limit(t, ResourceProjects)}, Usage: usage,
	}}, nil
}

// fail maps a Store error to its response, and logs what is not the
// client's doing.
func (a *projectsAPI) fail(ctx context.Context, err error) error {
	notFound := func(what string) error {
		return service.Problem(problem.Details{Type: "about:blank", Title: "Not Found", Status: http.StatusNotFound,
			Detail: "The tenant has no " + what + " with that ID."})
	}
	switch {
	case errors.Is(err, ErrProjectNotFound):
		return notFound("project")
	case errors.Is(err, ErrTaskNotFound):
		return notFound("task")
	case errors.Is(err, ErrJobNotFound):
		return notFound("job")
	case errors.Is(err, tenancy.ErrQuotaExceeded):
		return service.Problem(problem.FromError(err))
	}
	a.logger.ErrorContext(ctx, "request failed", slog.Any("error", err))
	return service.Problem(problem.FromError(err))
}

// quotaLimits tells a tenant's limit of a resource (*quota.Quota does).
type quotaLimits interface {
	Limit(t *tenancy.Tenant, resource string) int64
}
