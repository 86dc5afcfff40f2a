package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/jobs"
	"github.com/go-tenancy/tenancy/quota"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// The GORM models. They are what a GORM codebase has before it adopts
// tenancy: no tenant filter in any query. The tenant's scope comes from
// where the statements run (the connector, or the tenant's SQLite file),
// and tenant_id is written explicitly so that each row says whose it is
// (on PostgreSQL the policies' WITH CHECK refuses any other value).
type projectRow struct {
	TenantID    string `gorm:"primaryKey"`
	ID          string `gorm:"primaryKey"`
	Name        string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (projectRow) TableName() string { return "projects" }

func (r projectRow) project() Project {
	return Project{ID: r.ID, TenantID: r.TenantID, Name: r.Name, Description: r.Description,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

type taskRow struct {
	TenantID  string `gorm:"primaryKey"`
	ID        string `gorm:"primaryKey"`
	ProjectID string
	Title     string
	Status    string
	Assignee  string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (taskRow) TableName() string { return "tasks" }

func (r taskRow) task() Task {
	return Task{ID: r.ID, TenantID: r.TenantID, ProjectID: r.ProjectID, Title: r.Title, Status: r.Status,
		Assignee: r.Assignee, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

type exportRow struct {
	TenantID  string `gorm:"primaryKey"`
	ID        string `gorm:"primaryKey"`
	ProjectID string
	Status    string
	Result    *string
	Error     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (exportRow) TableName() string { return "exports" }

func (r exportRow) export() (Export, error) {
	e := Export{ID: r.ID, ProjectID: r.ProjectID, Status: r.Status, Error: r.Error,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if r.Result != nil {
		e.Result = new(ExportResult)
		if err := json.Unmarshal([]byte(*r.Result), e.Result); err != nil {
			return Export{}, fmt.Errorf("decode export result: %w", err)
		}
	}
	return e, nil
}

// enqueueFunc queues a job in the transaction it was handed with.
type enqueueFunc func(ctx context.Context, args jobs.Args) error

// session reaches a tenant's data with GORM: on PostgreSQL through the
// toolkit's database/sql connector over the hybrid provider, on SQLite
// on the tenant's file.
type session interface {
	// use runs fn with a handle in t's scope, outside a transaction: each
	// statement on its own.
	use(ctx context.Context, t *tenancy.Tenant, fn func(db *gorm.DB) error) error
	// write runs fn in a transaction in t's scope, committed when fn
	// returns nil. tx is the same transaction as database/sql sees it (for
	// the quota), and enqueue queues a job in it.
	write(ctx context.Context, t *tenancy.Tenant, fn func(db *gorm.DB, tx *sql.Tx, enqueue enqueueFunc) error) error
}

// GORMStore is the Store on GORM.
type GORMStore struct {
	s     session
	quota *quota.Quota
	now   func() time.Time
}

var _ Store = (*GORMStore)(nil)

// NewGORMStore returns a Store on s, with projects counted by q.
func NewGORMStore(s session, q *quota.Quota) *GORMStore {
	return &GORMStore{s: s, quota: q, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
}

// notFound turns GORM's not-found into err.
func notFound(err, nf error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nf
	}
	return err
}

// CreateProject implements Store. The quota's unit is taken in the
// insert's transaction, before the insert: the database refuses it beyond
// the limit, however many creates run at once.
func (g *GORMStore) CreateProject(ctx context.Context, t *tenancy.Tenant, in NewProject) (Project, error) {
	now := g.now()
	r := projectRow{TenantID: t.ID, ID: uuid.NewString(), Name: in.Name, Description: in.Description, CreatedAt: now, UpdatedAt: now}
	err := g.s.write(ctx, t, func(db *gorm.DB, tx *sql.Tx, _ enqueueFunc) error {
		if err := g.quota.Acquire(ctx, quota.SQL(tx), t, ResourceProjects); err != nil {
			return err
		}
		return db.Create(&r).Error
	})
	if err != nil {
		return Project{}, fmt.Errorf("create project: %w", err)
	}
	return r.project(), nil
}

// ListProjects implements Store.
func (g *GORMStore) ListProjects(ctx context.Context, t *tenancy.Tenant, p Page) ([]Project, error) {
	var rows []projectRow
	err := g.s.use(ctx, t, func(db *gorm.DB) error {
		return db.Order("created_at DESC, id DESC").Limit(p.Limit).Offset(p.Offset).Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	out := make([]Project, len(rows))
	for i, r := range rows {
		out[i] = r.project()
	}
	return out, nil
}

// GetProject implements Store.
func (g *GORMStore) GetProject(ctx context.Context, t *tenancy.Tenant, id string) (Project, error) {
	id, ok := canonicalID(id)
	if !ok {
		return Project{}, ErrProjectNotFound
	}
	var r projectRow
	err := g.s.use(ctx, t, func(db *gorm.DB) error { return db.Where("id = ?", id).Take(&r).Error })
	if err != nil {
		return Project{}, notFound(err, ErrProjectNotFound)
	}
	return r.project(), nil
}

// UpdateProject implements Store.
func (g *GORMStore) UpdateProject(ctx context.Context, t *tenancy.Tenant, id string, p ProjectPatch) (Project, error) {
	id, ok := canonicalID(id)
	if !ok {
		return Project{}, ErrProjectNotFound
	}
	var r projectRow
	err := g.s.write(ctx, t, func(db *gorm.DB, _ *sql.Tx, _ enqueueFunc) error {
		if err := db.Where("id = ?", id).Take(&r).Error; err != nil {
			return notFound(err, ErrProjectNotFound)
		}
		if p.Name == nil && p.Description == nil {
			return nil
		}
		if p.Name != nil {
			r.Name = *p.Name
		}
		if p.Description != nil {
			r.Description = *p.Description
		}
		r.UpdatedAt = g.now()
		return db.Model(&projectRow{}).Where("id = ?", id).
			Updates(map[string]any{"name": r.Name, "description": r.Description, "updated_at": r.UpdatedAt}).Error
	})
	if err != nil {
		return Project{}, fmt.Errorf("update project: %w", err)
	}
	return r.project(), nil
}

// DeleteProject implements Store. Its tasks and exports go with it (the
// foreign keys cascade, within the tenant: they carry tenant_id), and the
// project's unit of quota is given back in the same transaction.
func (g *GORMStore) DeleteProject(ctx context.Context, t *tenancy.Tenant, id string) error {
	id, ok := canonicalID(id)
	if !ok {
		return ErrProjectNotFound
	}
	err := g.s.write(ctx, t, func(db *gorm.DB, tx *sql.Tx, _ enqueueFunc) error {
		res := db.Where("id = ?", id).Delete(&projectRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrProjectNotFound
		}
		return g.quota.Release(ctx, quota.SQL(tx), t, ResourceProjects)
	})
	if err != nil && !errors.Is(err, ErrProjectNotFound) {
		return fmt.Errorf("delete project: %w", err)
	}
	return err
}

// CreateTask implements Store.
func (g *GORMStore) CreateTask(ctx context.Context, t *tenancy.Tenant, projectID string, in NewTask) (Task, error) {
	projectID, ok := canonicalID(projectID)
	if !ok {
		return Task{}, ErrProjectNotFound
	}
	now := g.now()
	r := taskRow{TenantID: t.ID, ID: uuid.NewString(), ProjectID: projectID, Title: in.Title, Status: in.Status,
		Assignee: in.Assignee, CreatedAt: now, UpdatedAt: now}
	err := g.s.write(ctx, t, func(db *gorm.DB, _ *sql.Tx, _ enqueueFunc) error {
		// Looked up first, in the tenant's scope: the foreign key would
		// refuse another tenant's project too, but as an error, not a 404.
		var n int64
		if err := db.Model(&projectRow{}).Where("id = ?", projectID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrProjectNotFound
		}
		return db.Create(&r).Error
	})
	if err != nil {
		if errors.Is(err, ErrProjectNotFound) {
			return Task{}, err
		}
		return Task{}, fmt.Errorf("create task: %w", err)
	}
	return r.task(), nil
}

// ListTasks implements Store.
func (g *GORMStore) ListTasks(ctx context.Context, t *tenancy.Tenant, projectID string, p Page) ([]Task, error) {
	projectID, ok := canonicalID(projectID)
	if !ok {
		return nil, ErrProjectNotFound
	}
	var rows []taskRow
	err := g.s.use(ctx, t, func(db *gorm.DB) error {
		var n int64
		if err := db.Model(&projectRow{}).Where("id = ?", projectID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrProjectNotFound
		}
		return db.Where("project_id = ?", projectID).Order("created_at, id").Limit(p.Limit).Offset(p.Offset).Find(&rows).Error
	})
	if err != nil {
		if errors.Is(err, ErrProjectNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	out := make([]Task, len(rows))
	for i, r := range rows {
		out[i] = r.task()
	}
	return out, nil
}

// UpdateTask implements Store.
func (g *GORMStore) UpdateTask(ctx context.Context, t *tenancy.Tenant, id string, p TaskPatch) (Task, error) {
	id, ok := canonicalID(id)
	if !ok {
		return Task{}, ErrTaskNotFound
	}
	var r taskRow
	err := g.s.write(ctx, t, func(db *gorm.DB, _ *sql.Tx, _ enqueueFunc) error {
		if err := db.Where("id = ?", id).Take(&r).Error; err != nil {
			return notFound(err, ErrTaskNotFound)
		}
		if p.Title == nil && p.Status == nil && p.Assignee == nil {
			return nil
		}
		if p.Title != nil {
			r.Title = *p.Title
		}
		if p.Status != nil {
			r.Status = *p.Status
		}
		if p.Assignee != nil {
			r.Assignee = *p.Assignee
		}
		r.UpdatedAt = g.now()
		return db.Model(&taskRow{}).Where("id = ?", id).
			Updates(map[string]any{"title": r.Title, "status": r.Status, "assignee": r.Assignee, "updated_at": r.UpdatedAt}).Error
	})
	if err != nil {
		if errors.Is(err, ErrTaskNotFound) {
			return Task{}, err
		}
		return Task{}, fmt.Errorf("update task: %w", err)
	}
	return r.task(), nil
}

// DeleteTask implements Store.
func (g *GORMStore) DeleteTask(ctx context.Context, t *tenancy.Tenant, id string) error {
	id, ok := canonicalID(id)
	if !ok {
		return ErrTaskNotFound
	}
	var affected int64
	err := g.s.use(ctx, t, func(db *gorm.DB) error {
		res := db.Where("id = ?", id).Delete(&taskRow{})
		affected = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return fmt.Errorf("delete task: %w", err)
	}
	if affected == 0 {
		return ErrTaskNotFound
	}
	return nil
}

// RequestExport implements Store: the request row and its job are
// written in one transaction.
func (g *GORMStore) RequestExport(ctx context.Context, t *tenancy.Tenant, projectID string) (Export, error) {
	projectID, ok := canonicalID(projectID)
	if !ok {
		return Export{}, ErrProjectNotFound
	}
	now := g.now()
	r := exportRow{TenantID: t.ID, ID: uuid.NewString(), ProjectID: projectID, Status: ExportQueued, CreatedAt: now, UpdatedAt: now}
	err := g.s.write(ctx, t, func(db *gorm.DB, _ *sql.Tx, enqueue enqueueFunc) error {
		var n int64
		if err := db.Model(&projectRow{}).Where("id = ?", projectID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrProjectNotFound
		}
		if err := db.Create(&r).Error; err != nil {
			return err
		}
		return enqueue(ctx, ExportArgs{TenantArgs: jobs.For(t), ExportID: r.ID})
	})
	if err != nil {
		if errors.Is(err, ErrProjectNotFound) {
			return Export{}, err
		}
		return Export{}, fmt.Errorf("request export: %w", err)
	}
	return r.export()
}

// GetExport implements Store.
func (g *GORMStore) GetExport(ctx context.Context, t *tenancy.Tenant, id string) (Export, error) {
	id, ok := canonicalID(id)
	if !ok {
		return Export{}, ErrJobNotFound
	}
	var r exportRow
	err := g.s.use(ctx, t, func(db *gorm.DB) error { return db.Where("id = ?", id).Take(&r).Error })
	if err != nil {
		return Export{}, notFound(err, ErrJobNotFound)
	}
	return r.export()
}

// Usage implements Store.
func (g *GORMStore) Usage(ctx context.Context, t *tenancy.Tenant) ([]quota.Usage, error) {
	return g.quota.Usage(ctx, t)
}

// setExport moves an export to status, with its result or error.
func (g *GORMStore) setExport(ctx context.Context, t *tenancy.Tenant, id, status string, result *ExportResult, msg string) error {
	fields := map[string]any{"status": status, "error": msg, "updated_at": g.now()}
	if result != nil {
		b, err := json.Marshal(result)
		if err != nil {
			return err
		}
		fields["result"] = string(b)
	}
	var affected int64
	err := g.s.use(ctx, t, func(db *gorm.DB) error {
		res := db.Model(&exportRow{}).Where("id = ?", id).Updates(fields)
		affected = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return fmt.Errorf("set export %s: %w", status, err)
	}
	if affected == 0 {
		return ErrJobNotFound
	}
	return nil
}

// exportProject counts the tasks of the export's project by status.
func (g *GORMStore) exportProject(ctx context.Context, t *tenancy.Tenant, id string) (*ExportResult, error) {
	var r exportRow
	var counts []struct {
		Status string
		N      int64
	}
	err := g.s.use(ctx, t, func(db *gorm.DB) error {
		if err := db.Where("id = ?", id).Take(&r).Error; err != nil {
			return notFound(err, ErrJobNotFound)
		}
		return db.Model(&taskRow{}).Select("status, count(*) AS n").Where("project_id = ?", r.ProjectID).Group("status").Scan(&counts).Error
	})
	if err != nil {
		return nil, err
	}
	res := &ExportResult{ProjectID: r.ProjectID, Tasks: map[string]int64{StatusTodo: 0, StatusInProgress: 0, StatusDone: 0}}
	for _, c := range counts {
		res.Tasks[c.Status] = c.N
		res.Total += c.N
	}
	return res, nil
}
