package main

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/quota"
	"github.com/google/uuid"
)

// fakeStore is an in-memory Store for the handler tests: rows by tenant
// ID, the projects quota enforced under its lock, exports queued until
// run is called.
type fakeStore struct {
	mu       sync.Mutex
	projects map[string][]Project
	tasks    map[string][]Task
	exports  map[string][]Export
	limits   map[string]int64 // projects by tier
	clock    time.Time
	// reads counts ListProjects and GetProject calls that reached the
	// store (the cache tests).
	reads int
}

var _ Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{
		projects: map[string][]Project{}, tasks: map[string][]Task{}, exports: map[string][]Export{},
		limits: map[string]int64{TierEnterprise: 500, TierStarter: 3},
		clock:  time.Now().UTC().Truncate(time.Microsecond),
	}
}

func (f *fakeStore) tick() time.Time {
	f.clock = f.clock.Add(time.Millisecond)
	return f.clock
}

func (f *fakeStore) CreateProject(_ context.Context, t *tenancy.Tenant, in NewProject) (Project, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if lim := f.limits[t.Tier]; int64(len(f.projects[t.ID])) >= lim {
		return Project{}, &tenancy.QuotaError{Resource: ResourceProjects, Limit: lim, Usage: lim, Tier: t.Tier}
	}
	now := f.tick()
	p := Project{ID: uuid.NewString(), TenantID: t.ID, Name: in.Name, Description: in.Description, CreatedAt: now, UpdatedAt: now}
	f.projects[t.ID] = append(f.projects[t.ID], p)
	return p, nil
}

func (f *fakeStore) ListProjects(_ context.Context, t *tenancy.Tenant, p Page) ([]Project, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	all := slices.Clone(f.projects[t.ID])
	slices.Reverse(all)
	start := min(p.Offset, len(all))
	end := min(start+p.Limit, len(all))
	return append([]Project{}, all[start:end]...), nil
}

func (f *fakeStore) project(t *tenancy.Tenant, id string) int {
	return slices.IndexFunc(f.projects[t.ID], func(p Project) bool { return p.ID == id })
}

func (f *fakeStore) GetProject(_ context.Context, t *tenancy.Tenant, id string) (Project, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	i := f.project(t, id)
	if i < 0 {
		return Project{}, ErrProjectNotFound
	}
	return f.projects[t.ID][i], nil
}

func (f *fakeStore) UpdateProject(_ context.Context, t *tenancy.Tenant, id string, p ProjectPatch) (Project, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.project(t, id)
	if i < 0 {
		return Project{}, ErrProjectNotFound
	}
	pr := &f.projects[t.ID][i]
	if p.Name != nil {
		pr.Name = *p.Name
	}
	if p.Description != nil {
		pr.Description = *p.Description
	}
	pr.UpdatedAt = f.tick()
	return *pr, nil
}

func (f *fakeStore) DeleteProject(_ context.Context, t *tenancy.Tenant, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.project(t, id)
	if i < 0 {
		return ErrProjectNotFound
	}
	f.projects[t.ID] = slices.Delete(f.projects[t.ID], i, i+1)
	f.tasks[t.ID] = slices.DeleteFunc(f.tasks[t.ID], func(x Task) bool { return x.ProjectID == id })
	return nil
}

func (f *fakeStore) CreateTask(_ context.Context, t *tenancy.Tenant, projectID string, in NewTask) (Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.project(t, projectID) < 0 {
		return Task{}, ErrProjectNotFound
	}
	now := f.tick()
	x := Task{ID: uuid.NewString(), TenantID: t.ID, ProjectID: projectID, Title: in.Title, Status: in.Status, Assignee: in.Assignee, CreatedAt: now, UpdatedAt: now}
	f.tasks[t.ID] = append(f.tasks[t.ID], x)
	return x, nil
}

func (f *fakeStore) ListTasks(_ context.Context, t *tenancy.Tenant, projectID string, p Page) ([]Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.project(t, projectID) < 0 {
		return nil, ErrProjectNotFound
	}
	var out []Task
	for _, x := range f.tasks[t.ID] {
		if x.ProjectID == projectID {
			out = append(out, x)
		}
	}
	start := min(p.Offset, len(out))
	end := min(start+p.Limit, len(out))
	return append([]Task{}, out[start:end]...), nil
}

func (f *fakeStore) task(t *tenancy.Tenant, id string) int {
	return slices.IndexFunc(f.tasks[t.ID], func(x Task) bool { return x.ID == id })
}

func (f *fakeStore) UpdateTask(_ context.Context, t *tenancy.Tenant, id string, p TaskPatch) (Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.task(t, id)
	if i < 0 {
		return Task{}, ErrTaskNotFound
	}
	x := &f.tasks[t.ID][i]
	if p.Title != nil {
		x.Title = *p.Title
	}
	if p.Status != nil {
		x.Status = *p.Status
	}
	if p.Assignee != nil {
		x.Assignee = *p.Assignee
	}
	x.UpdatedAt = f.tick()
	return *x, nil
}

func (f *fakeStore) DeleteTask(_ context.Context, t *tenancy.Tenant, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.task(t, id)
	if i < 0 {
		return ErrTaskNotFound
	}
	f.tasks[t.ID] = slices.Delete(f.tasks[t.ID], i, i+1)
	return nil
}

func (f *fakeStore) RequestExport(_ context.Context, t *tenancy.Tenant, projectID string) (Export, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.project(t, projectID) < 0 {
		return Export{}, ErrProjectNotFound
	}
	now := f.tick()
	e := Export{ID: uuid.NewString(), ProjectID: projectID, Status: ExportQueued, CreatedAt: now, UpdatedAt: now}
	f.exports[t.ID] = append(f.exports[t.ID], e)
	return e, nil
}

func (f *fakeStore) GetExport(_ context.Context, t *tenancy.Tenant, id string) (Export, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.exports[t.ID], func(e Export) bool { return e.ID == id })
	if i < 0 {
		return Export{}, ErrJobNotFound
	}
	return f.exports[t.ID][i], nil
}

func (f *fakeStore) Usage(_ context.Context, t *tenancy.Tenant) ([]quota.Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []quota.Usage{{Resource: ResourceProjects, Used: int64(len(f.projects[t.ID])), Limit: f.limits[t.Tier]}}, nil
}

// fakeLimits is the quota's Limit for the fake store's tiers.
type fakeLimits struct{ f *fakeStore }

func (l fakeLimits) Limit(t *tenancy.Tenant, _ string) int64 { return l.f.limits[t.Tier] }
