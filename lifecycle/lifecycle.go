// Package lifecycle moves tenants through their lives across every place a
// tenant lives: the tenant store (and its cache on every instance), the
// isolation provider's schema, database or file, the migration journal,
// rate-limit keys, and whatever hooks add (queued jobs, for one).
//
// Provisioning never leaves a tenant active without its storage: the record
// is created as provisioning, storage is initialized and migrated, and only
// then is the tenant activated; a failure marks it failed with the reason.
// Purging removes everything and then checks that nothing is left.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/redis/go-redis/v9"
)

// EventKind names a lifecycle transition.
type EventKind string

// Lifecycle events.
const (
	Provisioned     EventKind = "provisioned"
	ProvisionFailed EventKind = "provision-failed"
	Suspended       EventKind = "suspended"
	Activated       EventKind = "activated"
	Deleted         EventKind = "deleted"
	// Purging is sent before anything is removed; a hook that fails stops
	// the purge with nothing removed.
	Purging EventKind = "purging"
	Purged  EventKind = "purged"
)

// Event is a transition of one tenant.
type Event struct {
	Kind   EventKind
	Tenant *tenancy.Tenant
	// Err is why provisioning failed, for ProvisionFailed.
	Err error
}

// Hook is called on every transition. Hooks run in order; an error from a
// Purging hook stops the purge, errors from other events are logged.
type Hook func(ctx context.Context, e Event) error

// RateLimits is the part of a rate limiter a purge needs (limit.Limiter).
type RateLimits interface {
	Reset(ctx context.Context, tenantID string) error
	Keys(tenantID string) []string
}

// Config configures a Manager.
type Config struct {
	// Store keeps tenant records. Pass the cache decorator when there is
	// one, so that every change is seen by every instance. Required.
	Store tenancy.Store
	// Provider creates and destroys tenant storage. Build it on a DSN that
	// may create schemas or databases. Required.
	Provider isolation.Provider
	// Migrator, when set, migrates a new tenant's storage during Provision
	// and forgets its journal records on Purge.
	Migrator *migrate.Runner
	// RateLimits, when set, has its keys removed on Purge.
	RateLimits RateLimits
	// CacheKeys, when set, returns the Redis keys a cache may hold for a
	// tenant (cache.Store.Keys); Purge checks they are gone.
	CacheKeys func(t *tenancy.Tenant) []string
	// Redis is where CacheKeys and rate-limit keys live, for the purge
	// check. Nil skips the check of keys.
	Redis redis.UniversalClient
	// Hooks are called on every transition.
	Hooks []Hook
	// Logger receives hook failures. Default slog.Default().
	Logger *slog.Logger
}

// Manager runs tenant lifecycle transitions.
type Manager struct {
	cfg Config
}

// New checks cfg.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.Provider == nil {
		return nil, errors.New("lifecycle: Store and Provider are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{cfg: cfg}, nil
}

// ErrResidue is returned by Purge when something of the tenant is left.
var ErrResidue = errors.New("lifecycle: tenant data left after purge")

func (m *Manager) emit(ctx context.Context, e Event) error {
	for _, h := range m.cfg.Hooks {
		if err := h(ctx, e); err != nil {
			if e.Kind == Purging {
				return fmt.Errorf("lifecycle: %s hook: %w", e.Kind, err)
			}
			m.cfg.Logger.Error("lifecycle hook failed", "event", string(e.Kind), "tenant_id", e.Tenant.ID, "error", err)
		}
	}
	return nil
}

// Provision creates t (its Status is ignored), initializes and migrates its
// storage and activates it. On failure the tenant is left failed, with the
// reason in StatusReason, and the error says which step failed; Retry runs
// the steps again.
func (m *Manager) Provision(ctx context.Context, t *tenancy.Tenant) (*tenancy.Tenant, error) {
	c := t.Clone()
	c.Status, c.StatusReason = tenancy.StatusProvisioning, ""
	created, err := m.cfg.Store.Create(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: create tenant: %w", err)
	}
	return m.setUp(ctx, created)
}

// Retry runs the provisioning steps again for a tenant left provisioning or
// failed.
func (m *Manager) Retry(ctx context.Context, id string) (*tenancy.Tenant, error) {
	t, err := m.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	if t.Status != tenancy.StatusFailed && t.Status != tenancy.StatusProvisioning {
		return nil, fmt.Errorf("lifecycle: tenant %s is %s, not failed or provisioning", t.Identifier, t.Status)
	}
	if t, err = m.cfg.Store.SetStatus(ctx, id, tenancy.StatusProvisioning, ""); err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	return m.setUp(ctx, t)
}

func (m *Manager) setUp(ctx context.Context, t *tenancy.Tenant) (*tenancy.Tenant, error) {
	step, err := "initialize storage", m.cfg.Provider.Initialize(ctx, t)
	if err == nil && m.cfg.Migrator != nil {
		step = "migrate storage"
		_, err = m.cfg.Migrator.Up(ctx, migrate.Options{Tenant: t.Identifier, Verify: true})
	}
	if err == nil {
		step = "activate"
		var active *tenancy.Tenant
		if active, err = m.cfg.Store.SetStatus(ctx, t.ID, tenancy.StatusActive, ""); err == nil {
			_ = m.emit(ctx, Event{Kind: Provisioned, Tenant: active})
			return active, nil
		}
	}
	err = fmt.Errorf("lifecycle: provision %s: %s: %w", t.Identifier, step, err)
	// Record the failure even when ctx was cancelled: the tenant must not
	// stay "provisioning" for ever.
	failed, serr := m.cfg.Store.SetStatus(context.WithoutCancel(ctx), t.ID, tenancy.StatusFailed, err.Error())
	if serr != nil {
		return nil, errors.Join(err, fmt.Errorf("lifecycle: mark %s failed: %w", t.Identifier, serr))
	}
	_ = m.emit(ctx, Event{Kind: ProvisionFailed, Tenant: failed, Err: err})
	return failed, err
}

// Suspend refuses the tenant's requests (403) and keeps its data.
func (m *Manager) Suspend(ctx context.Context, id, reason string) (*tenancy.Tenant, error) {
	return m.transition(ctx, id, tenancy.StatusSuspended, reason, Suspended)
}

// Activate serves a suspended or soft-deleted tenant again. A tenant whose
// provisioning failed needs Retry instead.
func (m *Manager) Activate(ctx context.Context, id string) (*tenancy.Tenant, error) {
	t, err := m.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	if t.Status == tenancy.StatusFailed || t.Status == tenancy.StatusProvisioning {
		return nil, fmt.Errorf("lifecycle: tenant %s is %s: retry provisioning instead", t.Identifier, t.Status)
	}
	return m.transition(ctx, id, tenancy.StatusActive, "", Activated)
}

// Delete soft-deletes the tenant: refused (403), data kept until Purge.
func (m *Manager) Delete(ctx context.Context, id string) (*tenancy.Tenant, error) {
	return m.transition(ctx, id, tenancy.StatusDeleted, "deleted", Deleted)
}

func (m *Manager) transition(ctx context.Context, id string, s tenancy.Status, reason string, kind EventKind) (*tenancy.Tenant, error) {
	t, err := m.cfg.Store.SetStatus(ctx, id, s, reason)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	_ = m.emit(ctx, Event{Kind: kind, Tenant: t})
	return t, nil
}

// Purge removes the tenant from any status: hooks first (for example, to
// drop its queued jobs), then it is marked deleted (so it is refused on every
// instance from then on, whatever fails next), then its data, its migration
// records and its rate-limit keys go, and its data is checked to be gone;
// only then is its record removed (which drops its cache entries on every
// instance), and everything is checked once more. What is left is reported
// as ErrResidue; a purge that stopped midway can be run again.
func (m *Manager) Purge(ctx context.Context, id string) error {
	t, err := m.cfg.Store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	if err := m.emit(ctx, Event{Kind: Purging, Tenant: t}); err != nil {
		return err
	}
	if t.Status != tenancy.StatusDeleted {
		if _, err := m.cfg.Store.SetStatus(ctx, t.ID, tenancy.StatusDeleted, "purging"); err != nil {
			return fmt.Errorf("lifecycle: purge %s: mark deleted: %w", t.Identifier, err)
		}
	}
	if err := m.cfg.Provider.Destroy(ctx, t); err != nil {
		return fmt.Errorf("lifecycle: purge %s: destroy storage: %w", t.Identifier, err)
	}
	if m.cfg.Migrator != nil {
		if err := m.cfg.Migrator.Forget(ctx, t); err != nil {
			return fmt.Errorf("lifecycle: purge %s: %w", t.Identifier, err)
		}
	}
	if m.cfg.RateLimits != nil {
		if err := m.cfg.RateLimits.Reset(ctx, t.ID); err != nil {
			return fmt.Errorf("lifecycle: purge %s: rate limits: %w", t.Identifier, err)
		}
	}
	left, err := m.dataResidue(ctx, t)
	if err != nil {
		return fmt.Errorf("lifecycle: purge %s: check: %w", t.Identifier, err)
	}
	if len(left) > 0 {
		return fmt.Errorf("%w: %s: %v", ErrResidue, t.Identifier, left)
	}
	if err := m.cfg.Store.Purge(ctx, t.ID); err != nil {
		return fmt.Errorf("lifecycle: purge %s: record: %w", t.Identifier, err)
	}
	if left, err = m.Residue(ctx, t); err != nil {
		return fmt.Errorf("lifecycle: purge %s: check: %w", t.Identifier, err)
	}
	if len(left) > 0 {
		return fmt.Errorf("%w: %s: %v", ErrResidue, t.Identifier, left)
	}
	_ = m.emit(ctx, Event{Kind: Purged, Tenant: t})
	return nil
}

// dataResidue describes what is left of t's data, when the provider can
// tell.
func (m *Manager) dataResidue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	if rc, ok := m.cfg.Provider.(isolation.ResidueChecker); ok {
		return rc.Residue(ctx, t)
	}
	return nil, nil
}

// Residue describes what is left of t anywhere: its record, its data (when
// the provider can tell), and its cache and rate-limit keys in Redis.
func (m *Manager) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	var left []string
	if _, err := m.cfg.Store.Get(ctx, t.ID); err == nil {
		left = append(left, "tenant record")
	} else if !errors.Is(err, tenancy.ErrTenantNotFound) {
		return nil, err
	}
	data, err := m.dataResidue(ctx, t)
	if err != nil {
		return nil, err
	}
	left = append(left, data...)
	if m.cfg.Redis != nil {
		var keys []string
		if m.cfg.CacheKeys != nil {
			keys = append(keys, m.cfg.CacheKeys(t)...)
		}
		if m.cfg.RateLimits != nil {
			keys = append(keys, m.cfg.RateLimits.Keys(t.ID)...)
		}
		for _, k := range keys {
			n, err := m.cfg.Redis.Exists(ctx, k).Result()
			if err != nil {
				return nil, fmt.Errorf("check redis key: %w", err)
			}
			if n > 0 {
				left = append(left, "redis key "+k)
			}
		}
	}
	return left, nil
}
