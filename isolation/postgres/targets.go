package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// SharedTarget is the key of the shared tables' migration target.
const SharedTarget = "shared"

// target describes a migration target on the server of pool: database
// (empty: the pool's own) and schema (empty: the default search path, whose
// first schema, public, receives the grants).
func target(pool *pgxpool.Pool, key string, t *tenancy.Tenant, database, schema, role string) isolation.Target {
	grantIn := schema
	if grantIn == "" {
		grantIn = "public"
	}
	return isolation.Target{
		Key:     key,
		Tenant:  t,
		Dialect: isolation.Postgres,
		Open: func(context.Context) (*sql.DB, error) {
			cc := pool.Config().ConnConfig.Copy()
			if database != "" {
				cc.Database = database
			}
			if schema != "" {
				cc.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
			}
			return stdlib.OpenDB(*cc), nil
		},
		Finish: func(ctx context.Context, db *sql.DB) error {
			sql, err := grantSQL(grantIn, role)
			if err != nil {
				return err
			}
			if _, err := db.ExecContext(ctx, sql); err != nil {
				return fmt.Errorf("tenancy: grant tenant role %s on schema %s: %w", role, grantIn, err)
			}
			// The grant above covers every table, the migration version
			// table too; tenant statements have no business there, and it
			// has no row-level security.
			version := pgx.Identifier{grantIn, isolation.VersionTable}.Sanitize()
			var exists bool
			if err := db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", version).Scan(&exists); err != nil {
				return fmt.Errorf("tenancy: look up %s: %w", version, err)
			}
			if exists {
				if _, err := db.ExecContext(ctx, "REVOKE ALL ON TABLE "+version+" FROM "+role); err != nil {
					return fmt.Errorf("tenancy: revoke tenant role %s on %s: %w", role, version, err)
				}
			}
			return nil
		},
	}
}

// Targets implements isolation.Migratable: the shared tables of every
// server tenants are placed on, the default server's always.
func (p *RLS) Targets(tenants []*tenancy.Tenant) ([]isolation.Target, error) {
	out := []isolation.Target{target(p.s.pool, SharedTarget, nil, "", "", p.s.cfg.Role)}
	seen := map[string]bool{"": true}
	for _, t := range tenants {
		if seen[t.Placement] {
			continue
		}
		seen[t.Placement] = true
		pool, _, err := p.s.poolFor(t)
		if err != nil {
			return nil, err
		}
		out = append(out, target(pool, SharedTarget+"/"+t.Placement, nil, "", "", p.s.cfg.Role))
	}
	return out, nil
}

// Targets implements isolation.Migratable: one schema per tenant.
func (p *Schema) Targets(tenants []*tenancy.Tenant) ([]isolation.Target, error) {
	out := make([]isolation.Target, 0, len(tenants))
	for _, t := range tenants {
		if err := isolation.CheckTenant(t); err != nil {
			return nil, err
		}
		name, err := isolation.Name(p.prefix, t.Identifier)
		if err != nil {
			return nil, err
		}
		pool, _, err := p.s.poolFor(t)
		if err != nil {
			return nil, err
		}
		out = append(out, target(pool, "schema/"+placementKey(t)+name, t, "", name, p.s.cfg.Role))
	}
	return out, nil
}

// Targets implements isolation.Migratable: one database per tenant.
func (p *Database) Targets(tenants []*tenancy.Tenant) ([]isolation.Target, error) {
	out := make([]isolation.Target, 0, len(tenants))
	for _, t := range tenants {
		name, admin, err := p.locate(t)
		if err != nil {
			return nil, err
		}
		out = append(out, target(admin, "database/"+placementKey(t)+name, t, name, "", p.s.cfg.Role))
	}
	return out, nil
}

// placementKey prefixes target keys of tenants placed off the default
// server, so that equal names on two servers stay apart.
func placementKey(t *tenancy.Tenant) string {
	if t.Placement == "" {
		return ""
	}
	return t.Placement + "/"
}
