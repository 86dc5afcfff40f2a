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

// targetPlace says where in a server a migration target lives: a database
// (empty: the pool's own) and a schema (empty: the default search path, whose
// first schema, public, receives the grants).
type targetPlace struct {
	database, schema string
}

// target describes a migration target on the server of pool. Migrations of
// a tenant's own target run with its tenant set, so that its schema's
// boundary policies let them read and write its rows; Finish grants the
// tenant role its use and, in a tenant schema, seals every table with the
// schema's boundary policies.
func (c *core) target(pool *pgxpool.Pool, key string, t *tenancy.Tenant, at targetPlace) isolation.Target {
	role := c.cfg.Role
	grantIn := at.schema
	if grantIn == "" {
		grantIn = "public"
	}
	return isolation.Target{
		Key:     key,
		Tenant:  t,
		Dialect: isolation.Postgres,
		Open: func(context.Context) (*sql.DB, error) {
			cc := pool.Config().ConnConfig.Copy()
			if at.database != "" {
				cc.Database = at.database
			}
			if at.schema != "" {
				cc.RuntimeParams["search_path"] = pgx.Identifier{at.schema}.Sanitize()
			}
			if t != nil {
				cc.RuntimeParams[TenantSetting] = t.ID
			}
			return stdlib.OpenDB(*cc), nil
		},
		Finish: func(ctx context.Context, db *sql.DB) error {
			sql, err := grantSQL(grantIn, role)
			if err != nil {
				return err
			}
			if err := execCatalog(ctx, sqlExecer{db}, sql); err != nil {
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
			if at.schema != "" && t != nil {
				if c.cfg.Citus {
					return SealSchemaCitus(ctx, sqlExecer{db}, at.schema, t.ID)
				}
				return SealSchema(ctx, sqlExecer{db}, at.schema, t.ID)
			}
			return nil
		},
	}
}
