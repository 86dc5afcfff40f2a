package isolation

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-tenancy/tenancy"
)

// HybridConfig configures a Hybrid provider.
type HybridConfig struct {
	// Tiers maps a tenant tier to the strategy its tenants use, e.g.
	// "enterprise" -> IsolationSchema, "starter" -> IsolationRLS.
	Tiers map[string]tenancy.Isolation
	// Default is the strategy of tenants whose tier is not in Tiers.
	// Required.
	Default tenancy.Isolation
	// Providers holds the provider of each strategy used. They must speak
	// one dialect, so that application SQL is the same for every tenant.
	Providers map[tenancy.Isolation]Provider
}

// Hybrid routes each tenant to a strategy by its tier, unless the tenant
// overrides it (Tenant.Isolation): enterprise tenants in their own schema,
// starter tenants in shared tables under RLS, on the same database.
type Hybrid struct {
	cfg     HybridConfig
	dialect Dialect
}

var _ Provider = (*Hybrid)(nil)

// NewHybrid checks that every strategy named has a provider and that the
// providers share a dialect.
func NewHybrid(cfg HybridConfig) (*Hybrid, error) {
	need := []tenancy.Isolation{cfg.Default}
	for _, s := range cfg.Tiers {
		need = append(need, s)
	}
	for _, s := range need {
		if s == tenancy.IsolationDefault || !s.Valid() {
			return nil, fmt.Errorf("isolation: hybrid strategy %q is not rls, schema or database", s)
		}
		if cfg.Providers[s] == nil {
			return nil, fmt.Errorf("isolation: hybrid strategy %q has no provider", s)
		}
	}
	h := &Hybrid{cfg: cfg}
	for s, p := range cfg.Providers {
		if h.dialect == 0 {
			h.dialect = p.Dialect()
		} else if p.Dialect() != h.dialect {
			return nil, fmt.Errorf("isolation: hybrid provider for %q speaks %s, others %s", s, p.Dialect(), h.dialect)
		}
	}
	return h, nil
}

// Strategy returns the strategy t uses: its own override, else its tier's,
// else the default.
func (h *Hybrid) Strategy(t *tenancy.Tenant) tenancy.Isolation {
	if t.Isolation != tenancy.IsolationDefault {
		return t.Isolation
	}
	if s, ok := h.cfg.Tiers[t.Tier]; ok {
		return s
	}
	return h.cfg.Default
}

// ProviderFor returns the provider serving t.
func (h *Hybrid) ProviderFor(t *tenancy.Tenant) (Provider, error) {
	if t == nil {
		return nil, tenancy.ErrNoTenant
	}
	s := h.Strategy(t)
	p := h.cfg.Providers[s]
	if p == nil {
		return nil, fmt.Errorf("isolation: tenant %s uses strategy %q, which has no provider", t.ID, s)
	}
	return p, nil
}

// Providers returns the configured providers by strategy.
func (h *Hybrid) Providers() map[tenancy.Isolation]Provider { return h.cfg.Providers }

// Dialect implements Provider.
func (h *Hybrid) Dialect() Dialect { return h.dialect }

// Initialize implements Provider.
func (h *Hybrid) Initialize(ctx context.Context, t *tenancy.Tenant) error {
	p, err := h.ProviderFor(t)
	if err != nil {
		return err
	}
	return p.Initialize(ctx, t)
}

// Destroy implements Provider on every provider, not only the one the
// tenant uses now: a tenant that changed tier may have data in another.
func (h *Hybrid) Destroy(ctx context.Context, t *tenancy.Tenant) error {
	if t == nil {
		return tenancy.ErrNoTenant
	}
	var errs []error
	for _, p := range h.cfg.Providers {
		errs = append(errs, p.Destroy(ctx, t))
	}
	return errors.Join(errs...)
}

// Exec implements Provider.
func (h *Hybrid) Exec(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) (int64, error) {
	for range maxReroutes {
		p, err := h.ProviderFor(t)
		if err != nil {
			return 0, err
		}
		n, err := p.Exec(ctx, t, sql, args...)
		nt, moved := movedTo(err)
		if !moved {
			return n, err
		}
		t = nt
	}
	return 0, &MovedError{Tenant: t}
}

// Query implements Provider.
func (h *Hybrid) Query(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) (Rows, error) {
	for range maxReroutes {
		p, err := h.ProviderFor(t)
		if err != nil {
			return nil, err
		}
		rows, err := p.Query(ctx, t, sql, args...)
		nt, moved := movedTo(err)
		if !moved {
			return rows, err
		}
		t = nt
	}
	return nil, &MovedError{Tenant: t}
}

// QueryRow implements Provider.
func (h *Hybrid) QueryRow(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) Row {
	return RowOf(h.Query(ctx, t, sql, args...))
}

// Tx implements Provider.
func (h *Hybrid) Tx(ctx context.Context, t *tenancy.Tenant, fn func(Tx) error) error {
	for range maxReroutes {
		p, err := h.ProviderFor(t)
		if err != nil {
			return err
		}
		err = p.Tx(ctx, t, fn)
		nt, moved := movedTo(err)
		if !moved {
			return err
		}
		t = nt
	}
	return &MovedError{Tenant: t}
}

// maxReroutes bounds how often one call follows a tenant that moved while
// it waited (a MovedError) to the provider of its new record.
const maxReroutes = 3

// Close implements Provider: it closes every provider.
func (h *Hybrid) Close() {
	for _, p := range h.cfg.Providers {
		p.Close()
	}
}

// Targets implements Migratable: the targets of every provider for the
// tenants it serves, shared tables first. Every provider must be
// Migratable.
func (h *Hybrid) Targets(tenants []*tenancy.Tenant) ([]Target, error) {
	byStrategy := map[tenancy.Isolation][]*tenancy.Tenant{}
	for _, t := range tenants {
		if t == nil {
			return nil, tenancy.ErrNoTenant
		}
		byStrategy[h.Strategy(t)] = append(byStrategy[h.Strategy(t)], t)
	}
	var shared, own []Target
	seen := map[string]bool{}
	for s, ts := range byStrategy {
		if h.cfg.Providers[s] == nil {
			return nil, fmt.Errorf("isolation: %d tenants (%s first) use strategy %q, which has no provider", len(ts), ts[0].Identifier, s)
		}
	}
	for _, s := range []tenancy.Isolation{tenancy.IsolationRLS, tenancy.IsolationSchema, tenancy.IsolationDatabase} {
		p, ok := h.cfg.Providers[s]
		if !ok {
			continue
		}
		m, ok := p.(Migratable)
		if !ok {
			return nil, fmt.Errorf("isolation: hybrid provider for %q cannot be migrated", s)
		}
		targets, err := m.Targets(byStrategy[s])
		if err != nil {
			return nil, err
		}
		for _, t := range targets {
			if seen[t.Key] {
				continue
			}
			seen[t.Key] = true
			if t.Tenant == nil {
				shared = append(shared, t)
			} else {
				own = append(own, t)
			}
		}
	}
	return append(shared, own...), nil
}

// Residue implements ResidueChecker with every provider's check: a tenant
// may have moved between strategies.
func (h *Hybrid) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	var out []string
	for _, p := range h.cfg.Providers {
		rc, ok := p.(ResidueChecker)
		if !ok {
			continue
		}
		left, err := rc.Residue(ctx, t)
		if err != nil {
			return nil, err
		}
		out = append(out, left...)
	}
	return out, nil
}
