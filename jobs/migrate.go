package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// DefaultSchema is the schema of River's tables unless PostgresConfig.Schema
// says otherwise. Give the same name to river.Config.Schema of every client:
// unnamed, River's tables would resolve through the search path, which in a
// tenant's transaction is the tenant's schema.
const DefaultSchema = "river"

// Policy names on river_job.
const (
	// PolicyAccess is the permissive policy that lets every role see every
	// job, River's own client included.
	PolicyAccess = "tenancy_jobs_access"
	// PolicyTenant is the restrictive policy that confines the tenant role
	// to the jobs whose args name the tenant of its transaction.
	PolicyTenant = "tenancy_jobs_tenant"
)

// PostgresConfig configures the PostgreSQL queue's migration.
type PostgresConfig struct {
	// Schema holds River's tables. It is created when missing. Default
	// DefaultSchema.
	Schema string
	// Role is the tenant role of the isolation providers, which may insert
	// jobs in a tenant's transaction. Default postgres.DefaultRole.
	Role string
	// Grant lists roles that River's clients connect as, when they differ
	// from the migrating user: they get every privilege River needs on its
	// tables. Default: none.
	Grant []string
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

func (c *PostgresConfig) setDefaults() error {
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if c.Role == "" {
		c.Role = postgres.DefaultRole
	}
	if !schemaName.MatchString(c.Schema) {
		return fmt.Errorf("jobs: schema %q must be lowercase letters, digits and '_', at most 41 bytes (River's limit)", c.Schema)
	}
	for _, r := range append([]string{c.Role}, c.Grant...) {
		if !schemaName.MatchString(r) && !validRole(r) {
			return fmt.Errorf("jobs: role %q must be lowercase letters, digits and '_'", r)
		}
	}
	return nil
}

func validRole(s string) bool {
	return regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`).MatchString(s)
}

// MigratePostgres brings River's tables in pool's database to River's latest
// version, in their own schema, and lets the tenant role insert jobs there
// but read or change only its own tenant's.
//
// Concurrent runs (every instance of a service migrating at start) wait
// for each other on an advisory lock. The
// migrating user must be allowed to create the schema, or own it.
//
// What the tenant role gets, measured as what River's InsertTx needs under
// it: USAGE on the schema; SELECT and INSERT on river_job, UPDATE of its
// kind column (River inserts with ON CONFLICT DO UPDATE SET kind = kind) and
// use of its ID sequence. Row-level security on river_job (enabled, not
// forced, so the owner is exempt) has two policies: PolicyAccess, permissive
// for every role, and PolicyTenant, restrictive, which holds every row for
// any role but the tenant role and, for the tenant role, only rows whose
// args name the tenant of the transaction (ArgsKey, compared with
// app.tenant_id). River's client, connected as the application role, sees
// and works every job; a tenant's transaction inserts its own and sees
// nothing of others'.
//
// Call it from the service's migration step, beside the migrate package's
// Runner (which migrates tenant data, not the queue): the admin CLI's
// migrate command is where a service runs both.
func MigratePostgres(ctx context.Context, pool *pgxpool.Pool, cfg PostgresConfig) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: cfg.Schema})
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	// River's migrations cannot share one transaction (a new enum value is
	// unusable in the transaction that adds it), so a session lock on a
	// connection of its own serializes concurrent runs; it ends with the
	// connection if the process dies.
	lockConn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("jobs: migrate: %w", err)
	}
	defer lockConn.Release()
	if _, err := lockConn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('tenancy.jobs.migrate'))"); err != nil {
		return fmt.Errorf("jobs: migrate: lock: %w", err)
	}
	defer func() {
		if _, err := lockConn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtext('tenancy.jobs.migrate'))"); err != nil {
			_ = lockConn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+cfg.Schema); err != nil {
		return fmt.Errorf("jobs: create schema %s: %w", cfg.Schema, err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("jobs: migrate River: %w", err)
	}
	if _, err := pool.Exec(ctx, securitySQL(cfg)); err != nil {
		return fmt.Errorf("jobs: grant the tenant role: %w", err)
	}
	return nil
}

// TenantPredicate is the condition under which the tenant role may see or
// write a job: its args name the tenant of the transaction. NULLIF makes an
// unset tenant match nothing.
func tenantPredicate(role string) string {
	return fmt.Sprintf("(current_user <> '%s' OR (args ->> '%s') = NULLIF(current_setting('%s', true), ''))", role, ArgsKey, postgres.TenantSetting)
}

func securitySQL(cfg PostgresConfig) string {
	s, r, job := cfg.Schema, cfg.Role, cfg.Schema+".river_job"
	pred := tenantPredicate(r)
	stmts := []string{
		"GRANT USAGE ON SCHEMA " + s + " TO " + r,
		"GRANT SELECT, INSERT ON " + job + " TO " + r,
		"GRANT UPDATE (kind) ON " + job + " TO " + r,
		"GRANT USAGE ON SEQUENCE " + s + ".river_job_id_seq TO " + r,
		"ALTER TABLE " + job + " ENABLE ROW LEVEL SECURITY",
		"DROP POLICY IF EXISTS " + PolicyAccess + " ON " + job,
		"CREATE POLICY " + PolicyAccess + " ON " + job + " AS PERMISSIVE FOR ALL TO PUBLIC USING (true) WITH CHECK (true)",
		"DROP POLICY IF EXISTS " + PolicyTenant + " ON " + job,
		"CREATE POLICY " + PolicyTenant + " ON " + job + " AS RESTRICTIVE FOR ALL TO PUBLIC USING " + pred + " WITH CHECK " + pred,
	}
	for _, g := range cfg.Grant {
		stmts = append(stmts,
			"GRANT USAGE ON SCHEMA "+s+" TO "+g,
			"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "+s+" TO "+g,
			"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "+s+" TO "+g,
			"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA "+s+" TO "+g)
	}
	return strings.Join(stmts, ";\n")
}

// MigrateSQLite brings River's tables in db, the queue's own SQLite file, to
// River's latest version. Tenants' files never hold jobs: their jobs go
// through the outbox (see Outbox).
func MigrateSQLite(ctx context.Context, db *sql.DB) error {
	if db == nil {
		return errors.New("jobs: MigrateSQLite needs a database")
	}
	migrator, err := rivermigrate.New(riversqlite.New(db), nil)
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("jobs: migrate River: %w", err)
	}
	return nil
}
