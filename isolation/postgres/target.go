package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

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
			if at.database == "" {
				// A target on the pool's own database runs on a borrowed
				// connection, reset when the DB is closed. Its commits are
				// asynchronous (no WAL flush each); Finish commits
				// synchronously, which flushes them all before the
				// runner records the outcome.
				settings := [][2]string{{"synchronous_commit", "off"}}
				if at.schema != "" {
					settings = append(settings, [2]string{"search_path", pgx.Identifier{at.schema}.Sanitize()})
				}
				if t != nil {
					settings = append(settings, [2]string{TenantSetting, t.ID})
				}
				return openSession(pool, settings), nil
			}
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
			// One round trip, one transaction: the grants; the version
			// table closed again (the grant covers every table, the
			// version table too, and tenant statements have no business
			// there: it has no row-level security); in a tenant schema,
			// every table sealed with its boundary policies; and a
			// synchronous commit that flushes the session's asynchronous
			// ones before the runner records the outcome.
			grant, err := grantSQL(grantIn, role)
			if err != nil {
				return err
			}
			version := pgx.Identifier{grantIn, isolation.VersionTable}.Sanitize()
			stmts := []string{
				"SELECT pg_catalog.set_config('synchronous_commit', 'on', true)",
				grantIfNeeded(grantIn, role, grant),
				"DO $revoke$ BEGIN IF pg_catalog.to_regclass(" + quoteLiteral(version) + ") IS NOT NULL AND pg_catalog.has_table_privilege(" +
					quoteLiteral(role) + ", " + quoteLiteral(version) + ", 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') THEN REVOKE ALL ON TABLE " +
					version + " FROM " + role + "; END IF; END $revoke$",
			}
			if at.schema != "" && t != nil {
				predicate := BoundaryPredicate
				if c.cfg.Citus {
					predicate = CitusBoundaryPredicate
				}
				seal, err := sealSchemaSQL(at.schema, t.ID, predicate)
				if err != nil {
					return err
				}
				stmts = append(stmts, seal)
			}
			stmts = append(stmts, "SELECT pg_catalog.pg_current_xact_id()")
			if err := execCatalog(ctx, sqlExecer{db}, strings.Join(stmts, ";\n")); err != nil {
				return fmt.Errorf("tenancy: grant tenant role %s on schema %s and seal it: %w", role, grantIn, err)
			}
			return nil
		},
	}
}

// grantIfNeeded wraps grant (grantSQL's) in a check, so that a target whose
// grants are all in place, as on a Verify run, writes nothing to the
// catalog: the tenant role lacks the use of the schema, a privilege on a
// table or sequence other than the version table, or the schema's default
// privileges for tables or sequences are missing.
func grantIfNeeded(schema, role, grant string) string {
	nsp := quoteLiteral(pgx.Identifier{schema}.Sanitize()) + "::pg_catalog.regnamespace"
	r := quoteLiteral(role)
	// The schema's relations through pg_depend, which is indexed by the
	// schema (pg_class is not; see SealSchemaSQL).
	inSchema := `pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid
                WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                AND d.refobjid = ` + nsp + ` AND c.relnamespace = d.refobjid`
	return `DO $grant$ BEGIN
  IF NOT pg_catalog.has_schema_privilege(` + r + `, ` + nsp + `::oid, 'USAGE')
     OR EXISTS (SELECT FROM ` + inSchema + ` AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND c.relname <> ` + quoteLiteral(isolation.VersionTable) + `
                AND NOT (pg_catalog.has_table_privilege(` + r + `, c.oid, 'SELECT') AND pg_catalog.has_table_privilege(` + r + `, c.oid, 'INSERT')
                     AND pg_catalog.has_table_privilege(` + r + `, c.oid, 'UPDATE') AND pg_catalog.has_table_privilege(` + r + `, c.oid, 'DELETE')))
     OR EXISTS (SELECT FROM ` + inSchema + ` AND c.relkind = 'S'
                AND NOT (pg_catalog.has_sequence_privilege(` + r + `, c.oid, 'USAGE') AND pg_catalog.has_sequence_privilege(` + r + `, c.oid, 'SELECT')
                     AND pg_catalog.has_sequence_privilege(` + r + `, c.oid, 'UPDATE')))
     OR (SELECT count(DISTINCT d.defaclobjtype) FROM pg_catalog.pg_default_acl d
         WHERE d.defaclnamespace = ` + nsp + ` AND d.defaclrole = current_user::pg_catalog.regrole AND d.defaclobjtype IN ('r', 'S')) < 2
  THEN
    EXECUTE ` + quoteLiteral(grant) + `;
  END IF;
END $grant$`
}
