package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaConfig configures schema-per-tenant isolation.
type SchemaConfig struct {
	Config
	// Prefix starts every tenant schema name; see isolation.Name.
	// Default isolation.DefaultPrefix ("tenant_").
	Prefix string
}

// Schema gives every tenant its own schema. Each statement runs with the
// search path set to the tenant's schema alone (never public: a table
// missing there is an error, not a read of a shared table), and with
// app.tenant_id and the tenant role set as in RLS, so tables inside tenant
// schemas may carry the same policies as shared ones: even a read qualified
// with another tenant's schema returns nothing.
type Schema struct {
	s      *shared
	prefix string
}

var _ isolation.Provider = (*Schema)(nil)

// NewSchema returns a schema-per-tenant provider on pool.
func NewSchema(ctx context.Context, pool *pgxpool.Pool, cfg SchemaConfig) (*Schema, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = isolation.DefaultPrefix
	}
	if err := isolation.ValidatePrefix(cfg.Prefix); err != nil {
		return nil, err
	}
	for _, p := range append([]*pgxpool.Pool{pool}, slices.Collect(maps.Values(cfg.Placements))...) {
		if describesEarly(p) {
			return nil, errors.New("tenancy: schema isolation needs default_query_exec_mode cache_statement (the default), exec or simple_protocol: " +
				"cache_describe and describe_exec describe statements before the tenant's search path is set")
		}
	}
	s, err := newShared(ctx, pool, cfg.Config)
	if err != nil {
		return nil, err
	}
	return &Schema{s: s, prefix: cfg.Prefix}, nil
}

// Role returns the tenant role.
func (p *Schema) Role() string { return p.s.cfg.Role }

// Prefix returns the schema name prefix.
func (p *Schema) Prefix() string { return p.prefix }

// SchemaName returns the name of t's schema.
func (p *Schema) SchemaName(t *tenancy.Tenant) (string, error) {
	if t == nil {
		return "", tenancy.ErrNoTenant
	}
	return isolation.Name(p.prefix, t.Identifier)
}

// Pool returns the pool of tenants without a Placement.
func (p *Schema) Pool() *pgxpool.Pool { return p.s.pool }

// PoolFor returns the pool of the server holding t's schema.
func (p *Schema) PoolFor(t *tenancy.Tenant) (*pgxpool.Pool, error) {
	pool, _, err := p.s.poolFor(t)
	return pool, err
}

func (p *Schema) scope(t *tenancy.Tenant) (scope, error) {
	name, err := isolation.Name(p.prefix, t.Identifier)
	if err != nil {
		return scope{}, err
	}
	return scope{tenantID: t.ID, role: p.s.cfg.Role, path: pgx.Identifier{name}.Sanitize()}, nil
}

// Dialect implements isolation.Provider.
func (p *Schema) Dialect() isolation.Dialect { return isolation.Postgres }

// Initialize implements isolation.Provider: it creates t's schema and grants
// the tenant role its use.
func (p *Schema) Initialize(ctx context.Context, t *tenancy.Tenant) error {
	if err := isolation.CheckTenant(t); err != nil {
		return err
	}
	name, err := isolation.Name(p.prefix, t.Identifier)
	if err != nil {
		return err
	}
	pool, _, err := p.s.poolFor(t)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		// Two concurrent CREATE SCHEMA IF NOT EXISTS may race on the catalog's
		// unique index; the schema exists either way.
		if pgCode(err) != "23505" {
			return fmt.Errorf("create schema %s: %w", name, err)
		}
	}
	return GrantSchema(ctx, pool, name, p.s.cfg.Role)
}

// Destroy implements isolation.Provider: it drops t's schema and everything
// in it.
func (p *Schema) Destroy(ctx context.Context, t *tenancy.Tenant) error {
	if err := isolation.CheckTenant(t); err != nil {
		return err
	}
	name, err := isolation.Name(p.prefix, t.Identifier)
	if err != nil {
		return err
	}
	pool, _, err := p.s.poolFor(t)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema %s: %w", name, err)
	}
	return nil
}

// Exec implements isolation.Provider.
func (p *Schema) Exec(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) (int64, error) {
	rows, err := p.s.query(ctx, t, p.scope, sql, args)
	if err != nil {
		return 0, err
	}
	return drain(rows)
}

// Query implements isolation.Provider.
func (p *Schema) Query(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) (isolation.Rows, error) {
	return p.s.query(ctx, t, p.scope, sql, args)
}

// QueryRow implements isolation.Provider.
func (p *Schema) QueryRow(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) isolation.Row {
	return isolation.RowOf(p.s.query(ctx, t, p.scope, sql, args))
}

// Tx implements isolation.Provider.
func (p *Schema) Tx(ctx context.Context, t *tenancy.Tenant, fn func(isolation.Tx) error) error {
	return p.s.tx(ctx, t, p.scope, fn)
}

// Close implements isolation.Provider. The pools belong to the caller.
func (p *Schema) Close() {}
