package postgres

import (
	"context"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
)

// Residue implements isolation.ResidueChecker: rows of t left in shared
// tables with a tenant_id column, counted in t's own scope.
func (p *RLS) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	if err := isolation.CheckTenant(t); err != nil {
		return nil, err
	}
	pool, _, err := p.s.poolFor(t)
	if err != nil {
		return nil, err
	}
	tables, err := rlsTables(ctx, pool)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, tbl := range tables {
		var n int64
		if err := p.QueryRow(ctx, t, "SELECT count(*) FROM "+tbl.sanitized()+" WHERE tenant_id = $1", t.ID).Scan(&n); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", tbl, err)
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("%d rows in %s", n, tbl))
		}
	}
	return out, nil
}

// Residue implements isolation.ResidueChecker: t's schema, if it exists.
func (p *Schema) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	name, err := p.SchemaName(t)
	if err != nil {
		return nil, err
	}
	pool, _, err := p.s.poolFor(t)
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", name).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look up schema %s: %w", name, err)
	}
	if exists {
		return []string{"schema " + name}, nil
	}
	return nil, nil
}

// Residue implements isolation.ResidueChecker: t's database, if it exists.
func (p *Database) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	name, admin, err := p.locate(t)
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return []string{"database " + name}, nil
	}
	return nil, nil
}
