// Package lifecycle moves tenants through their lives across every place a
// tenant lives: the tenant store (and its cache on every instance), the
// isolation provider's schema, database or file, and every component that
// keeps something of each tenant (tenancy.Component: the cache's Redis
// entries, rate-limit budgets, the migration journal, queued jobs).
//
// Provisioning never leaves a tenant active without its storage: the record
// is created as provisioning, storage is initialized and migrated, and only
// then is the tenant activated; a failure marks it failed with the reason.
// Purging removes everything and then checks that nothing is left. The
// package knows nothing of how components keep their state: it asks them.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/migrate"
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

// Config configures a Manager.
type Config struct {
	// Store keeps tenant records. Pass the cache decorator when there is
	// one, so that every change is seen by every instance. Required.
	Store tenancy.Store
	// Provider creates and destroys tenant storage. Build it on a DSN that
	// may create schemas or databases. Required.
	Provider isolation.Provider
	// Migrator, when set, migrates a new tenant's storage during Provision.
	// It is a component too: Purge forgets its journal records whether or
	// not Components lists it.
	Migrator *migrate.Runner
	// Components keep something of each tenant besides its record and its
	// storage: the cache (list it even when it is the Store, so that its
	// Redis entries are checked), the rate limiter, per-tenant metrics, the
	// job queue. Purge asks each to forget the tenant and then checks that
	// none reports anything left. Default none.
	Components []tenancy.Component
	// Hooks are called on every transition.
	Hooks []Hook
	// Logger receives hook failures. Default slog.Default().
	Logger *slog.Logger
}

// Manager runs tenant lifecycle transitions.
type Manager struct {
	cfg Config
	// components are cfg.Components and the Migrator, each once.
	components []tenancy.Component
}

// New checks cfg.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.Provider == nil {
		return nil, errors.New("lifecycle: Store and Provider are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{cfg: cfg}
	for i, c := range cfg.Components {
		if c == nil {
			return nil, fmt.Errorf("lifecycle: Components[%d] is nil", i)
		}
		m.components = append(m.components, c)
	}
	if cfg.Migrator != nil && !slices.Contains(m.components, tenancy.Component(cfg.Migrator)) {
		m.components = append(m.components, cfg.Migrator)
	}
	return m, nil
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

// Purge removes the tenant from any status: hooks first (a Purging hook may
// stop it), then it is marked deleted (so it is refused on every instance
// from then on, whatever fails next), then its storage is destroyed, every
// component forgets it, and its storage is checked to be gone; only then is
// its record removed (which, through the cache, drops its entries on every
// instance). The components are asked to forget it once more, for what
// requests put back while the record still existed, and everything is
// checked: the record, the storage and every component. What is left is
// reported as ErrResidue. A purge that stops before the record is removed
// can be run again.
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
	if err := m.forget(ctx, t); err != nil {
		return fmt.Errorf("lifecycle: purge %s: %w", t.Identifier, err)
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
	// Nothing can put the tenant back from here on: no record is left to
	// read it from.
	if err := m.forget(ctx, t); err != nil {
		return fmt.Errorf("lifecycle: purge %s: record removed, but: %w", t.Identifier, err)
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

// forget asks every component to forget t.
func (m *Manager) forget(ctx context.Context, t *tenancy.Tenant) error {
	for _, c := range m.components {
		if err := c.Forget(ctx, t); err != nil {
			return fmt.Errorf("forget in %T: %w", c, err)
		}
	}
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
// the provider can tell), and whatever a component still holds of it.
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
	for _, c := range m.components {
		r, err := c.Residue(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("check %T: %w", c, err)
		}
		left = append(left, r...)
	}
	return left, nil
}
