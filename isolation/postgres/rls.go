package postgres

import (
	"context"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RLS keeps every tenant's rows in shared tables guarded by row-level
// security. Each statement runs in a transaction (the implicit one of a
// pipeline, or an explicit one from Tx) that first sets app.tenant_id and
// switches to the tenant role, in one statement and the same round trip.
type RLS struct {
	s *shared
}

var _ isolation.Provider = (*RLS)(nil)

// NewRLS returns an RLS provider on pool. It makes sure the tenant role
// exists and that pool's user may switch to it (see EnsureRole).
func NewRLS(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*RLS, error) {
	s, err := newShared(ctx, pool, cfg)
	if err != nil {
		return nil, err
	}
	return &RLS{s: s}, nil
}

// Role returns the tenant role.
func (p *RLS) Role() string { return p.s.cfg.Role }

// Pool returns the pool of tenants without a Placement.
func (p *RLS) Pool() *pgxpool.Pool { return p.s.pool }

func (p *RLS) scope(t *tenancy.Tenant) (scope, error) {
	return scope{tenantID: t.ID, role: p.s.cfg.Role}, nil
}

// Dialect implements isolation.Provider.
func (p *RLS) Dialect() isolation.Dialect { return isolation.Postgres }

// Initialize implements isolation.Provider. Shared tables need nothing per
// tenant, so it only validates t.
func (p *RLS) Initialize(_ context.Context, t *tenancy.Tenant) error {
	if err := isolation.CheckTenant(t); err != nil {
		return err
	}
	_, _, err := p.s.poolFor(t)
	return err
}

// Destroy implements isolation.Provider: it deletes t's rows from every
// shared table with a tenant_id column, children before parents, in one
// transaction run as the tenant, confined to t's rows by its WHERE clause
// and by the policies.
func (p *RLS) Destroy(ctx context.Context, t *tenancy.Tenant) error {
	if err := isolation.CheckTenant(t); err != nil {
		return err
	}
	pool, _, err := p.s.poolFor(t)
	if err != nil {
		return err
	}
	tables, err := rlsTables(ctx, pool)
	if err != nil {
		return err
	}
	return p.Tx(ctx, t, func(tx isolation.Tx) error {
		for _, tbl := range tables {
			if _, err := tx.Exec(ctx, "DELETE FROM "+tbl.sanitized()+" WHERE tenant_id = $1", t.ID); err != nil {
				return fmt.Errorf("delete tenant rows from %s: %w", tbl, err)
			}
		}
		return nil
	})
}

// Exec implements isolation.Provider.
func (p *RLS) Exec(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) (int64, error) {
	rows, err := p.s.query(ctx, t, p.scope, sql, args)
	if err != nil {
		return 0, err
	}
	return drain(rows)
}

// Query implements isolation.Provider.
func (p *RLS) Query(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) (isolation.Rows, error) {
	return p.s.query(ctx, t, p.scope, sql, args)
}

// QueryRow implements isolation.Provider.
func (p *RLS) QueryRow(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) isolation.Row {
	return isolation.RowOf(p.s.query(ctx, t, p.scope, sql, args))
}

// Tx implements isolation.Provider.
func (p *RLS) Tx(ctx context.Context, t *tenancy.Tenant, fn func(isolation.Tx) error) error {
	return p.s.tx(ctx, t, p.scope, fn)
}

// Close implements isolation.Provider. The pools belong to the caller.
func (p *RLS) Close() {}
