package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/lifecycle"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/go-tenancy/tenancy/store/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// OpenAppPool opens the requests' pool on DATABASE_URL, of at least
// minConns connections: the statement timeout as a start-up parameter
// (unless the DSN sets one, or a transaction pooler sits in between, which
// would refuse it), and, behind a transaction pooler, statements sent
// unprepared (pgx's own, such as the readiness ping; the provider's follow
// Config.Pooler).
func (c Config) OpenAppPool(ctx context.Context, minConns int32) (*pgxpool.Pool, error) {
	return c.openPool(ctx, "DATABASE_URL", c.DatabaseURL, minConns, c.tuneApp(c.DatabaseURL))
}

// tuneApp is OpenAppPool's tuning of the pool of dsn.
func (c Config) tuneApp(dsn string) func(*pgxpool.Config) {
	return func(pc *pgxpool.Config) {
		rp := pc.ConnConfig.RuntimeParams
		if _, set := rp["statement_timeout"]; !set && c.StatementTimeout > 0 && c.Pooler == postgres.PoolerNone {
			rp["statement_timeout"] = strconv.FormatInt(c.StatementTimeout.Milliseconds(), 10)
		}
		if c.Pooler == postgres.PoolerTransaction && !strings.Contains(dsn, "default_query_exec_mode") {
			pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
		}
	}
}

// Placed are the pools on the servers of DATABASE_URLS, other than the
// default one: for each, a pool for requests (as OpenAppPool's) and one for
// migrations (as OpenMigrationPool's), keyed by placement name, to be
// given as postgres.Config.Placements to the providers of requests and of
// migrations. Empty with one server.
type Placed struct {
	// App holds the request pools, on DatabaseURLs.
	App postgres.Servers
	// Migration holds the migration pools, on MigrationDatabaseURLs.
	Migration postgres.Servers
}

// OpenPlaced opens and pings the pools of every server of DatabaseURLs
// and MigrationDatabaseURLs; the request pools have at least minConns
// connections. On error, what was opened is closed.
func (c Config) OpenPlaced(ctx context.Context, minConns int32) (_ Placed, err error) {
	p := Placed{App: postgres.Servers{}, Migration: postgres.Servers{}}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	for _, name := range slices.Sorted(maps.Keys(c.DatabaseURLs)) {
		dsn := c.DatabaseURLs[name]
		if p.App[name], err = c.openPool(ctx, fmt.Sprintf("DATABASE_URLS server %q", name), dsn, minConns, c.tuneApp(dsn)); err != nil {
			return Placed{}, err
		}
		if p.Migration[name], err = c.openPool(ctx, fmt.Sprintf("MIGRATION_DATABASE_URLS server %q", name), c.MigrationDatabaseURLs[name], 6, nil); err != nil {
			return Placed{}, err
		}
	}
	return p, nil
}

// Close closes every pool.
func (p Placed) Close() {
	p.App.Close()
	p.Migration.Close()
}

// GrantTenantRole is GrantTenantRole on every server.
func (p Placed) GrantTenantRole(ctx context.Context, role string) error {
	for _, name := range slices.Sorted(maps.Keys(p.App)) {
		if err := GrantTenantRole(ctx, p.App[name], p.Migration[name], role); err != nil {
			return fmt.Errorf("server %q: %w", name, err)
		}
	}
	return nil
}

// Ping checks that every server answers, on both roles' pools.
func (p Placed) Ping(ctx context.Context) error {
	if err := p.App.Ping(ctx); err != nil {
		return fmt.Errorf("ping DATABASE_URLS: %w", err)
	}
	if err := p.Migration.Ping(ctx); err != nil {
		return fmt.Errorf("ping MIGRATION_DATABASE_URLS: %w", err)
	}
	return nil
}

// Doctor inspects the default server (on migPool) and, with servers of
// DATABASE_URLS, every other one (postgres.DoctorServers), also reporting
// the tenants of store whose placement names no server.
func (p Placed) Doctor(ctx context.Context, migPool *pgxpool.Pool, cfg postgres.DoctorConfig, store tenancy.Store) (*postgres.Report, error) {
	if len(p.Migration) == 0 {
		return postgres.Doctor(ctx, migPool, cfg)
	}
	tenants, err := tenancy.ListAll(ctx, store, "")
	if err != nil {
		return nil, err
	}
	servers := postgres.Servers{"": migPool}
	maps.Copy(servers, p.Migration)
	return postgres.DoctorServers(ctx, servers, cfg, tenants)
}

// OpenMigrationPool opens the pool of MIGRATION_DATABASE_URL, on which
// migrations, provisioning and the tenant store run: at least 6
// connections, so that tenants migrate concurrently.
func (c Config) OpenMigrationPool(ctx context.Context) (*pgxpool.Pool, error) {
	return c.openPool(ctx, "MIGRATION_DATABASE_URL", c.MigrationDatabaseURL, 6, nil)
}

// openPool opens and pings a pool of at least minConns connections (more
// when the DSN's pool_max_conns or pgx's default says so), tuned by
// configure. Errors name the variable, never the DSN, which may hold a
// password.
func (c Config) openPool(ctx context.Context, name, dsn string, minConns int32, configure func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid PostgreSQL URL", name)
	}
	pc.MaxConns = max(pc.MaxConns, minConns)
	if configure != nil {
		configure(pc)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", name, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, c.connectError(name, pc.ConnConfig.User, pc.ConnConfig.Database, err)
	}
	return pool, nil
}

// connectError says why a connection failed in one line: the server's
// refusal or the network error, once (pgx lists every address it tried),
// and what to do about a missing role or database.
func (c Config) connectError(name, user, database string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		hint := ""
		switch pgErr.Code {
		case "28000", "3D000": // no such role, no such database
			hint = fmt.Sprintf(` (create the roles and the database with the SQL "%s setup" prints)`, c.Name)
		}
		return fmt.Errorf("connect to %s as %s to database %s: %s (SQLSTATE %s)%s", name, user, database, pgErr.Message, pgErr.Code, hint)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return fmt.Errorf("connect to %s: %w", name, opErr)
	}
	return fmt.Errorf("connect to %s: %w", name, err)
}

// SetupConfig is the PostgreSQL setup of c: the database and the two roles
// of DATABASE_URL (or databaseURL, from --database-url) and
// MIGRATION_DATABASE_URL.
func (c Config) SetupConfig(databaseURL string) (postgres.SetupConfig, error) {
	if databaseURL == "" {
		databaseURL = c.DatabaseURL
	}
	if databaseURL == "" {
		return postgres.SetupConfig{}, errors.New("set DATABASE_URL (requests) and MIGRATION_DATABASE_URL (migrations): setup is for PostgreSQL")
	}
	if c.MigrationDatabaseURL == "" || c.MigrationDatabaseURL == c.DatabaseURL {
		return postgres.SetupConfig{}, errors.New("set MIGRATION_DATABASE_URL to the owner's URL: requests and migrations connect as two roles")
	}
	return admin.SetupFromURLs(databaseURL, c.MigrationDatabaseURL)
}

// SetupHint completes a setup failure with what the server lacks: the
// statements of postgres.SetupSQL that are still needed for both login
// roles, which the library's own error (about one connection's user) cannot
// know. Other errors are returned as they are.
func (c Config) SetupHint(ctx context.Context, pool *pgxpool.Pool, err error) error {
	var setup *postgres.SetupError
	var pgErr *pgconn.PgError
	if !errors.As(err, &setup) && !(errors.As(err, &pgErr) && (pgErr.Code == "42501" || pgErr.Code == "0LP01")) {
		return err
	}
	cfg, cerr := c.SetupConfig("")
	if cerr != nil {
		return err
	}
	sql, perr := postgres.PendingSetup(ctx, pool, cfg)
	if perr != nil || len(sql) == 0 {
		return err
	}
	problem := err.Error()
	if setup != nil {
		problem = setup.Problem
	}
	return fmt.Errorf("the PostgreSQL setup is incomplete (%s); as a superuser run: %s (or: %s setup --apply --admin-url <a superuser's URL>)",
		problem, strings.Join(sql, " "), c.Name)
}

// NeedsOwner names MIGRATION_DATABASE_URL in a permission error met while
// changing the schema as DATABASE_URL's user. Other errors are returned as
// they are.
func (c Config) NeedsOwner(err error) error {
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		return err
	}
	if c.MigrationDatabaseURL == c.DatabaseURL {
		return fmt.Errorf("%w: migrations need the owner's rights; set MIGRATION_DATABASE_URL to the owner's URL (it defaults to DATABASE_URL)", err)
	}
	return fmt.Errorf("%w: MIGRATION_DATABASE_URL's user must own the database (see %s setup)", err, c.Name)
}

// GrantTenantRole makes the application's user a member of the tenant role,
// which it must be to switch to it. The application's user need not own or
// be granted anything else: tenant statements run as the tenant role. The
// grant is made on the migration connection, whose user created the role.
func GrantTenantRole(ctx context.Context, appPool, migPool *pgxpool.Pool, role string) error {
	var user string
	var member bool
	err := appPool.QueryRow(ctx, "SELECT current_user, pg_has_role(current_user, $1, 'MEMBER')", role).Scan(&user, &member)
	if err != nil {
		return fmt.Errorf("inspect the DATABASE_URL user: %w", err)
	}
	if member {
		return nil
	}
	return ExecRetry(ctx, migPool, "GRANT "+pgx.Identifier{role}.Sanitize()+" TO "+pgx.Identifier{user}.Sanitize())
}

// GrantReads lets the application's user read the tenant store and the
// migration journal (schema tenancy), so that the read-only admin commands
// (tenants list and show, migrate status, doctor) work with DATABASE_URL
// alone, without the owner's credentials. Reading is all it gets: every
// change still needs MIGRATION_DATABASE_URL.
func GrantReads(ctx context.Context, appPool, migPool *pgxpool.Pool) error {
	app, mig := appPool.Config().ConnConfig.User, migPool.Config().ConnConfig.User
	if app == mig {
		return nil
	}
	var granted bool
	// By OID: a name would be looked up for every table of the database
	// before the schema filter applies, and fail for other schemas'.
	err := appPool.QueryRow(ctx, `SELECT coalesce(bool_and(has_schema_privilege(n.oid, 'USAGE')
  AND NOT EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v')
                  AND NOT has_table_privilege(c.oid, 'SELECT'))), true)
FROM pg_namespace n WHERE n.nspname = 'tenancy'`).Scan(&granted)
	if err != nil {
		return fmt.Errorf("inspect the DATABASE_URL user's rights on schema tenancy: %w", err)
	}
	if granted {
		return nil
	}
	to := pgx.Identifier{app}.Sanitize()
	for _, sql := range []string{"GRANT USAGE ON SCHEMA tenancy TO " + to, "GRANT SELECT ON ALL TABLES IN SCHEMA tenancy TO " + to} {
		if err := ExecRetry(ctx, migPool, sql); err != nil {
			return err
		}
	}
	return nil
}

// ExecRetry runs a GRANT on the migration connection, retrying the race of
// instances starting together.
func ExecRetry(ctx context.Context, migPool *pgxpool.Pool, sql string) error {
	for attempt := 1; ; attempt++ {
		_, err := migPool.Exec(ctx, sql)
		if err == nil {
			return nil
		}
		// Instances starting together may grant at once; PostgreSQL then
		// fails all but one with "tuple concurrently updated".
		var pgErr *pgconn.PgError
		if attempt < 5 && errors.As(err, &pgErr) && (pgErr.Code == "XX000" || pgErr.Code == "40001") {
			time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
			continue
		}
		return fmt.Errorf("%s (as the MIGRATION_DATABASE_URL user): %w", sql, err)
	}
}

// MigrateAll brings every target of r up to date. A tenant whose migration
// fails is logged and left out (it is retried at the next start) while the
// others are served; shared tables that fail to migrate stop the start.
func MigrateAll(ctx context.Context, r *migrate.Runner, logger *slog.Logger) error {
	report, err := r.Up(ctx, migrate.Options{})
	if err != nil && !errors.Is(err, migrate.ErrFailed) {
		return err
	}
	if report == nil {
		return err
	}
	for _, res := range report.Failed() {
		if res.TenantID == "" {
			return err
		}
		logger.ErrorContext(ctx, "tenant migration failed", slog.String("tenant_id", res.TenantID), slog.String("error", res.Error))
	}
	logger.InfoContext(ctx, "migrations done",
		slog.Int("targets", len(report.Results)),
		slog.Int("migrated", report.Count(migrate.StatusMigrated)),
		slog.Int("failed", report.Count(migrate.StatusFailed)),
		slog.Duration("duration", report.Duration))
	return nil
}

// SeedMarker is the persisted record that the demo tenants were seeded, so
// that a demo tenant deleted or purged later is not created again.
type SeedMarker struct {
	// Seeded reports whether the record exists.
	Seeded func(context.Context) (bool, error)
	// Mark writes it.
	Mark func(context.Context) error
}

// PostgresSeedMarker keeps the seed record in the table <name>_demo_seed
// of pool's database.
func (c Config) PostgresSeedMarker(pool *pgxpool.Pool) SeedMarker {
	table := pgx.Identifier{c.Name + "_demo_seed"}.Sanitize()
	return SeedMarker{
		Seeded: func(ctx context.Context) (bool, error) {
			var ok bool
			err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM "+table+")").Scan(&ok)
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // never seeded: no table yet
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("read the demo seed record: %w", err)
			}
			return ok, nil
		},
		Mark: func(ctx context.Context) error {
			_, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+" (seeded_at timestamptz NOT NULL DEFAULT now());\nINSERT INTO "+table+" DEFAULT VALUES")
			if err != nil {
				return fmt.Errorf("record the demo seed: %w", err)
			}
			return nil
		},
	}
}

// FileSeedMarker keeps the seed record in a file.
func FileSeedMarker(path string) SeedMarker {
	return SeedMarker{
		Seeded: func(context.Context) (bool, error) {
			_, err := os.Stat(path)
			if errors.Is(err, fs.ErrNotExist) {
				return false, nil
			}
			return err == nil, err
		},
		Mark: func(context.Context) error {
			return os.WriteFile(path, []byte("The demo tenants were seeded; delete this file to seed them again.\n"), 0o644)
		},
	}
}

// RedisOrNil keeps a nil *redis.Client from becoming a non-nil interface.
func RedisOrNil(c *redis.Client) redis.UniversalClient {
	if c == nil {
		return nil
	}
	return c
}

// Seed provisions the demo tenants once: unless m records that it did so
// before (with a persisted tenant store, a demo tenant deleted or purged
// later stays gone). Tenants that exist keep their status (a suspended one
// stays suspended); one whose provisioning failed is retried. each, when
// set, runs for every demo tenant that is there afterwards, with created
// true for those provisioned or retried by this call.
func (m SeedMarker) Seed(ctx context.Context, demo []tenancy.Tenant, store tenancy.Store, lc *lifecycle.Manager, logger *slog.Logger,
	each func(ctx context.Context, t *tenancy.Tenant, created bool) error) error {
	if m.Seeded != nil {
		done, err := m.Seeded(ctx)
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if done {
			logger.DebugContext(ctx, "demo tenants seeded before; not again")
			return nil
		}
	}
	for _, s := range demo {
		t, err := store.Get(ctx, s.ID)
		created := true
		switch {
		case errors.Is(err, tenancy.ErrTenantNotFound):
			t, err = lc.Provision(ctx, &s)
			if errors.Is(err, tenancy.ErrDuplicate) {
				// Another instance seeded it meanwhile, or the identifier
				// belongs to a tenant created by hand.
				logger.WarnContext(ctx, "seed tenant not created: already taken", slog.String("tenant", s.Identifier), slog.Any("error", err))
				continue
			}
		case err != nil:
		case t.Status == tenancy.StatusFailed || t.Status == tenancy.StatusProvisioning:
			t, err = lc.Retry(ctx, t.ID)
		default:
			created = false
		}
		if err != nil {
			return fmt.Errorf("seed %s: %w", s.Identifier, err)
		}
		if created {
			logger.InfoContext(ctx, "seed tenant provisioned", slog.String("tenant", s.Identifier))
		}
		if each != nil {
			if err := each(ctx, t, created); err != nil {
				return fmt.Errorf("seed %s: %w", s.Identifier, err)
			}
		}
	}
	if m.Mark != nil {
		if err := m.Mark(ctx); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// Control is what an app keeps on the default server beside its tenants'
// data: the migration journal, the tenant store (the in-memory one unless
// TENANT_STORE=db) and the record of the demo seed (empty with the
// in-memory store, which remembers nothing).
type Control struct {
	Journal migrate.Journal
	Store   tenancy.Store
	Seed    SeedMarker
}

// OpenControl opens the control plane on migPool, the migration role's
// pool. Read-only, it creates and migrates nothing (read-only admin
// commands, which then work with the app role alone). Permission errors
// name MIGRATION_DATABASE_URL (NeedsOwner).
func (c Config) OpenControl(ctx context.Context, migPool *pgxpool.Pool, readOnly bool, logger *slog.Logger) (Control, error) {
	var ctl Control
	var err error
	if readOnly {
		ctl.Journal = migrate.OpenPostgresJournal(migPool, "tenancy")
	} else if ctl.Journal, err = migrate.NewPostgresJournal(ctx, migPool, "tenancy"); err != nil {
		return Control{}, c.NeedsOwner(err)
	}
	ctl.Store = memstore.New()
	if c.TenantStore == StoreDB {
		if !readOnly {
			if err := pgstore.Migrate(ctx, migPool, pgstore.Config{Logger: logger}); err != nil {
				return Control{}, c.NeedsOwner(err)
			}
		}
		if ctl.Store, err = pgstore.New(ctx, migPool, pgstore.Config{Logger: logger}); err != nil {
			return Control{}, c.NeedsOwner(err)
		}
		ctl.Seed = c.PostgresSeedMarker(migPool)
	}
	return ctl, nil
}
