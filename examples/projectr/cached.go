package main

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/cache"
)

// cachePrefix starts the key of every cached project read. Every write
// moves the prefix on (cache.InvalidatePrefix) before it answers, so no
// instance serves a read from before it.
const cachePrefix = "projects:"

// cachedStore caches project and task reads per tenant (package cache:
// keys are built from the tenant the context carries), and invalidates
// them on every write, on every instance sharing the Redis.
type cachedStore struct {
	Store
	cache  *cache.Cache
	ttl    time.Duration
	logger *slog.Logger
}

// newCachedStore returns s behind c, or s itself when ttl is zero.
func newCachedStore(s Store, c *cache.Cache, ttl time.Duration, logger *slog.Logger) Store {
	if ttl <= 0 {
		return s
	}
	return &cachedStore{Store: s, cache: c, ttl: ttl, logger: logger}
}

// scoped returns ctx carrying t: cache keys are built from the context's
// tenant, which must be the one the call names.
func scoped(ctx context.Context, t *tenancy.Tenant) context.Context {
	if ct, ok := tenancy.FromContext(ctx); ok && ct.ID == t.ID {
		return ctx
	}
	return tenancy.WithTenant(ctx, t)
}

func pageKey(p Page) string {
	return strconv.Itoa(p.Limit) + ":" + strconv.Itoa(p.Offset)
}

// ListProjects implements Store, cached.
func (c *cachedStore) ListProjects(ctx context.Context, t *tenancy.Tenant, p Page) ([]Project, error) {
	ctx = scoped(ctx, t)
	return cache.GetOrLoad(ctx, c.cache, cachePrefix+"list:"+pageKey(p), c.ttl, func(ctx context.Context) ([]Project, error) {
		return c.Store.ListProjects(ctx, t, p)
	})
}

// GetProject implements Store, cached.
func (c *cachedStore) GetProject(ctx context.Context, t *tenancy.Tenant, id string) (Project, error) {
	id, ok := canonicalID(id)
	if !ok {
		return Project{}, ErrProjectNotFound
	}
	ctx = scoped(ctx, t)
	return cache.GetOrLoad(ctx, c.cache, cachePrefix+"get:"+id, c.ttl, func(ctx context.Context) (Project, error) {
		return c.Store.GetProject(ctx, t, id)
	})
}

// ListTasks implements Store, cached.
func (c *cachedStore) ListTasks(ctx context.Context, t *tenancy.Tenant, projectID string, p Page) ([]Task, error) {
	projectID, ok := canonicalID(projectID)
	if !ok {
		return nil, ErrProjectNotFound
	}
	ctx = scoped(ctx, t)
	return cache.GetOrLoad(ctx, c.cache, cachePrefix+"tasks:"+projectID+":"+pageKey(p), c.ttl, func(ctx context.Context) ([]Task, error) {
		return c.Store.ListTasks(ctx, t, projectID, p)
	})
}

// invalidate drops t's cached reads after a write, before the write
// answers. A failure (Redis down) is logged: reads then miss anyway, and
// the entries' generations have not moved, so they stay valid only until
// their TTL.
func (c *cachedStore) invalidate(ctx context.Context, t *tenancy.Tenant) {
	if err := c.cache.InvalidatePrefix(scoped(ctx, t), cachePrefix); err != nil {
		c.logger.WarnContext(ctx, "invalidate cached project reads", slog.Any("error", err))
	}
}

// after invalidates t's reads once a write has returned, whatever its
// outcome: a failed write may still have committed.
func after[T any](c *cachedStore, ctx context.Context, t *tenancy.Tenant, v T, err error) (T, error) {
	c.invalidate(ctx, t)
	return v, err
}

// CreateProject implements Store and invalidates.
func (c *cachedStore) CreateProject(ctx context.Context, t *tenancy.Tenant, p NewProject) (Project, error) {
	v, err := c.Store.CreateProject(ctx, t, p)
	return after(c, ctx, t, v, err)
}

// UpdateProject implements Store and invalidates.
func (c *cachedStore) UpdateProject(ctx context.Context, t *tenancy.Tenant, id string, p ProjectPatch) (Project, error) {
	v, err := c.Store.UpdateProject(ctx, t, id, p)
	return after(c, ctx, t, v, err)
}

// DeleteProject implements Store and invalidates.
func (c *cachedStore) DeleteProject(ctx context.Context, t *tenancy.Tenant, id string) error {
	_, err := after(c, ctx, t, struct{}{}, c.Store.DeleteProject(ctx, t, id))
	return err
}

// CreateTask implements Store and invalidates.
func (c *cachedStore) CreateTask(ctx context.Context, t *tenancy.Tenant, projectID string, n NewTask) (Task, error) {
	v, err := c.Store.CreateTask(ctx, t, projectID, n)
	return after(c, ctx, t, v, err)
}

// UpdateTask implements Store and invalidates.
func (c *cachedStore) UpdateTask(ctx context.Context, t *tenancy.Tenant, id string, p TaskPatch) (Task, error) {
	v, err := c.Store.UpdateTask(ctx, t, id, p)
	return after(c, ctx, t, v, err)
}

// DeleteTask implements Store and invalidates.
func (c *cachedStore) DeleteTask(ctx context.Context, t *tenancy.Tenant, id string) error {
	_, err := after(c, ctx, t, struct{}{}, c.Store.DeleteTask(ctx, t, id))
	return err
}
