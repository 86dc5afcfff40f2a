package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/go-tenancy/tenancy/lifecycle"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/go-tenancy/tenancy/oteltenancy"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/go-tenancy/tenancy/redislog"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/go-tenancy/tenancy/store/pgstore"
	"github.com/go-tenancy/tenancy/store/sqlitestore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

//go:embed migrations
var migrationFiles embed.FS

// seedTenants are the demo tenants, provisioned once when SEED_DEMO is on
// (see backend.seed).
var seedTenants = []tenancy.Tenant{
	{ID: "tenant-acme-001", Identifier: "acme-corp", Name: "Acme Corp"},
	{ID: "tenant-globex-001", Identifier: "globex", Name: "Globex Corporation"},
}

// SQLite files beside the tenant files. Tenant identifiers start with a
// letter, so these names can never be a tenant's file.
const (
	journalFile     = "_migrations.db"
	tenantStoreFile = "_tenants.db"
	// seedMarkerFile records, beside the tenant store, that the demo
	// tenants were seeded.
	seedMarkerFile = "_demo-seeded"
)

// noRedisTTL is the tenant cache's lifetime without Redis when the tenant
// store is shared: nothing then tells this process about writes made by
// another one (the admin subcommands), so a suspension must show within a
// second without that message.
const noRedisTTL = time.Second

// backend is the storage side of the service: tenant store and cache,
// isolation providers, migrations and the lifecycle manager. The server and
// the admin subcommands share it.
type backend struct {
	cfg    Config
	logger *slog.Logger

	// tenants is the cached tenant store; every read and write goes through
	// it, so writes invalidate every instance's cache (through Redis).
	tenants *cache.Store
	// notes serves requests, on the application's connection.
	notes NoteStore
	// migrator applies migrations/<dialect> to every target.
	migrator *migrate.Runner
	// lifecycle provisions, suspends and purges tenants.
	lifecycle *lifecycle.Manager
	// limiter is nil unless RATE_LIMIT_PER_MINUTE is set.
	limiter *limit.Limiter
	// ready reports whether the databases answer.
	ready func(context.Context) error
	// doctor inspects the RLS setup; nil on SQLite.
	doctor func(context.Context) (*postgres.Report, error)

	// readOnly: see backendOptions.ReadOnly.
	readOnly bool
	// tracerProvider: see backendOptions.TracerProvider.
	tracerProvider trace.TracerProvider
	// seeded and markSeeded read and write the persisted record that the
	// demo tenants were seeded; nil with the in-memory tenant store, which
	// remembers nothing.
	seeded     func(context.Context) (bool, error)
	markSeeded func(context.Context) error

	closers []func()
}

// backendOptions tune openBackend for the server or the admin subcommands.
type backendOptions struct {
	// Logger receives the library's log lines. Required.
	Logger *slog.Logger
	// Metrics counts the cache's lookups and the limiter's decisions. Nil:
	// nothing is counted.
	Metrics *promtenancy.Metrics
	// MigrateConcurrency is how many targets migrate at once. Zero: the
	// migrate package's default (4).
	MigrateConcurrency int
	// TracerProvider traces the statements requests run in a tenant's
	// scope (oteltenancy). Nil: none is traced.
	TracerProvider trace.TracerProvider
	// ReadOnly opens everything without changing anything: no grant, no
	// tenant store migration, no journal creation. For admin commands that
	// only read, which then work with DATABASE_URL's role alone.
	ReadOnly bool
}

// openBackend connects everything cfg names.
func openBackend(ctx context.Context, cfg Config, opts backendOptions) (_ *backend, err error) {
	logger := opts.Logger
	b := &backend{cfg: cfg, logger: logger, readOnly: opts.ReadOnly, tracerProvider: opts.TracerProvider}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	var (
		store    tenancy.Store
		provider isolation.Provider // requests
		admin    isolation.Provider // migrations and lifecycle
		journal  migrate.Journal
		dialect  string
	)
	if cfg.Postgres() {
		dialect = "postgres"
		if store, provider, admin, journal, err = b.openPostgres(ctx); err != nil {
			return nil, err
		}
	} else {
		dialect = "sqlite"
		if store, provider, admin, journal, err = b.openSQLite(ctx); err != nil {
			return nil, err
		}
	}

	var rdb *redis.Client
	ttl := time.Duration(0) // the cache's default
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, errors.New("REDIS_URL is not a valid Redis URL")
		}
		// Short timeouts: Redis is an accelerator, and the first request to
		// meet an outage pays them before the cache skips Redis.
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 2*time.Second, time.Second, time.Second
		opts.MaxRetries = 1
		opts.ContextTimeoutEnabled = true
		// go-redis's own lines (a lost subscription, say) go to our logger,
		// not to stderr in another format. This is process-wide.
		redislog.Use(logger)
		rdb = redis.NewClient(opts)
		b.closers = append(b.closers, func() { _ = rdb.Close() })
	} else if cfg.TenantStore == service.StoreDB {
		ttl = noRedisTTL
	}
	b.tenants = cache.New(store, cache.Config{
		TTL:     ttl,
		Redis:   redisOrNil(rdb),
		Prefix:  cfg.RedisPrefix,
		Logger:  logger,
		Metrics: opts.Metrics,
	})
	b.closers = append(b.closers, func() { _ = b.tenants.Close() })

	if cfg.RateLimitPerMinute > 0 {
		b.limiter = limit.New(limit.Config{
			Default: limit.Rate{Limit: cfg.RateLimitPerMinute, Period: time.Minute},
			Redis:   redisOrNil(rdb),
			Prefix:  cfg.RedisPrefix + "ratelimit:",
			Logger:  logger,
			Metrics: opts.Metrics,
		})
	}

	migrations, err := fs.Sub(migrationFiles, "migrations/"+dialect)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	targets, ok := admin.(isolation.Migratable)
	if !ok {
		return nil, fmt.Errorf("%s provider has no migration targets", dialect)
	}
	b.migrator, err = migrate.New(migrate.Config{
		Migrations:  migrations,
		Targets:     targets,
		Store:       b.tenants,
		Journal:     journal,
		Concurrency: opts.MigrateConcurrency,
		Logger:      logger,
	})
	if err != nil {
		return nil, err
	}
	// A purge asks each of these to forget the tenant, then checks that
	// none holds anything of it; the migrator is one without being listed.
	components := []tenancy.Component{b.tenants}
	if b.limiter != nil {
		components = append(components, b.limiter)
	}
	b.lifecycle, err = lifecycle.New(lifecycle.Config{
		Store:      b.tenants,
		Provider:   admin,
		Migrator:   b.migrator,
		Components: components,
		Logger:     logger,
	})
	if err != nil {
		return nil, err
	}
	if b.notes, err = NewSQLNotes(provider); err != nil {
		return nil, err
	}
	return b, nil
}

// redisOrNil keeps a nil *redis.Client from becoming a non-nil interface.
func redisOrNil(c *redis.Client) redis.UniversalClient {
	if c == nil {
		return nil
	}
	return c
}

// openPostgres opens the two pools. Requests run on DATABASE_URL through
// the RLS provider, which switches every tenant statement to the tenant
// role; migrations, provisioning and the tenant store run on
// MIGRATION_DATABASE_URL.
func (b *backend) openPostgres(ctx context.Context) (tenancy.Store, isolation.Provider, isolation.Provider, migrate.Journal, error) {
	appPool, err := openPool(ctx, "DATABASE_URL", b.cfg.DatabaseURL, 1, func(pc *pgxpool.Config) {
		appPoolConfig(pc, b.cfg)
	})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	b.closers = append(b.closers, appPool.Close)
	// pgstore's migrations hold one connection while a second renews their
	// lock, and each target being migrated holds one for its journal lock.
	migPool, err := openPool(ctx, "MIGRATION_DATABASE_URL", b.cfg.MigrationDatabaseURL, 6)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	b.closers = append(b.closers, migPool.Close)

	pcfg := postgres.Config{Logger: b.logger}
	admin, err := postgres.NewRLS(ctx, migPool, pcfg)
	if err != nil {
		return nil, nil, nil, nil, b.setupHint(ctx, migPool, fmt.Errorf("row-level security on MIGRATION_DATABASE_URL: %w", err))
	}
	if !b.readOnly {
		if err := grantTenantRole(ctx, appPool, migPool, admin.Role()); err != nil {
			return nil, nil, nil, nil, b.setupHint(ctx, migPool, err)
		}
	}
	appCfg := pcfg
	appCfg.Pooler = b.cfg.Pooler
	if b.tracerProvider != nil {
		appCfg.Tracer = oteltenancy.New(oteltenancy.Config{
			TracerProvider: b.tracerProvider,
			Attributes:     oteltenancy.ServerAttributes(&appPool.Config().ConnConfig.Config),
		})
	}
	provider, err := postgres.NewRLS(ctx, appPool, appCfg)
	if err != nil {
		return nil, nil, nil, nil, b.setupHint(ctx, migPool, fmt.Errorf("row-level security on DATABASE_URL: %w", err))
	}
	var journal migrate.Journal
	if b.readOnly {
		journal = migrate.OpenPostgresJournal(migPool, "tenancy")
	} else if journal, err = migrate.NewPostgresJournal(ctx, migPool, "tenancy"); err != nil {
		return nil, nil, nil, nil, b.needsOwner(err)
	}

	var store tenancy.Store = memstore.New()
	if b.cfg.TenantStore == service.StoreDB {
		if !b.readOnly {
			if err := pgstore.Migrate(ctx, migPool, pgstore.Config{Logger: b.logger}); err != nil {
				return nil, nil, nil, nil, b.needsOwner(err)
			}
		}
		if store, err = pgstore.New(ctx, migPool, pgstore.Config{Logger: b.logger}); err != nil {
			return nil, nil, nil, nil, b.needsOwner(err)
		}
		b.seeded, b.markSeeded = postgresSeedMarker(migPool)
	}
	if !b.readOnly {
		if err := grantReads(ctx, appPool, migPool); err != nil {
			return nil, nil, nil, nil, b.needsOwner(err)
		}
	}
	b.ready = func(ctx context.Context) error {
		if err := appPool.Ping(ctx); err != nil {
			return fmt.Errorf("ping DATABASE_URL: %w", err)
		}
		if err := migPool.Ping(ctx); err != nil {
			return fmt.Errorf("ping MIGRATION_DATABASE_URL: %w", err)
		}
		return nil
	}
	b.doctor = func(ctx context.Context) (*postgres.Report, error) {
		return postgres.Doctor(ctx, migPool, postgres.DoctorConfig{Role: admin.Role(), AppRole: appPool.Config().ConnConfig.User})
	}
	return store, provider, admin, journal, nil
}

// appPoolConfig tunes the requests' pool: the statement timeout as a
// start-up parameter (unless the DSN sets one, or a transaction pooler
// sits in between, which would refuse it), and, behind a transaction
// pooler, statements sent unprepared (pgx's own, such as the readiness
// ping; the provider's follow Config.Pooler).
func appPoolConfig(pc *pgxpool.Config, cfg Config) {
	rp := pc.ConnConfig.RuntimeParams
	if _, set := rp["statement_timeout"]; !set && cfg.StatementTimeout > 0 && cfg.Pooler == postgres.PoolerNone {
		rp["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	}
	if cfg.Pooler == postgres.PoolerTransaction && !strings.Contains(cfg.DatabaseURL, "default_query_exec_mode") {
		pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
}

// openPool opens and pings a pool of at least minConns connections (more
// when the DSN's pool_max_conns or pgx's default says so), tuned by
// configure. Errors name the variable, never the DSN, which may hold a
// password.
func openPool(ctx context.Context, name, dsn string, minConns int32, configure ...func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid PostgreSQL URL", name)
	}
	cfg.MaxConns = max(cfg.MaxConns, minConns)
	for _, c := range configure {
		c(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", name, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, connectError(name, cfg.ConnConfig.User, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

// connectError says why a connection failed in one line: the server's
// refusal or the network error, once (pgx lists every address it tried),
// and what to do about a missing role or database.
func connectError(name, user, database string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		hint := ""
		switch pgErr.Code {
		case "28000", "3D000": // no such role, no such database
			hint = ` (create the roles and the database with the SQL "notekeeper setup" prints)`
		}
		return fmt.Errorf("connect to %s as %s to database %s: %s (SQLSTATE %s)%s", name, user, database, pgErr.Message, pgErr.Code, hint)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return fmt.Errorf("connect to %s: %w", name, opErr)
	}
	return fmt.Errorf("connect to %s: %w", name, err)
}

// setupConfig is the PostgreSQL setup of cfg: the database and the two
// roles of DATABASE_URL (or databaseURL, from --database-url) and
// MIGRATION_DATABASE_URL.
func setupConfig(cfg Config, databaseURL string) (postgres.SetupConfig, error) {
	if databaseURL == "" {
		databaseURL = cfg.DatabaseURL
	}
	if databaseURL == "" {
		return postgres.SetupConfig{}, errors.New("set DATABASE_URL (requests) and MIGRATION_DATABASE_URL (migrations): setup is for PostgreSQL")
	}
	if cfg.MigrationDatabaseURL == "" || cfg.MigrationDatabaseURL == cfg.DatabaseURL {
		return postgres.SetupConfig{}, errors.New("set MIGRATION_DATABASE_URL to the owner's URL: requests and migrations connect as two roles")
	}
	return admin.SetupFromURLs(databaseURL, cfg.MigrationDatabaseURL)
}

// setupHint completes a setup failure with what the server lacks: the
// statements of postgres.SetupSQL that are still needed for both login
// roles, which the library's own error (about one connection's user) cannot
// know.
func (b *backend) setupHint(ctx context.Context, pool *pgxpool.Pool, err error) error {
	var setup *postgres.SetupError
	var pgErr *pgconn.PgError
	if !errors.As(err, &setup) && !(errors.As(err, &pgErr) && (pgErr.Code == "42501" || pgErr.Code == "0LP01")) {
		return err
	}
	cfg, cerr := setupConfig(b.cfg, "")
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
	return fmt.Errorf("the PostgreSQL setup is incomplete (%s); as a superuser run: %s (or: notekeeper setup --apply --admin-url <a superuser's URL>)",
		problem, strings.Join(sql, " "))
}

// needsOwner names MIGRATION_DATABASE_URL in a permission error met while
// changing the schema as DATABASE_URL's user.
func (b *backend) needsOwner(err error) error {
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		return err
	}
	if b.cfg.MigrationDatabaseURL == b.cfg.DatabaseURL {
		return fmt.Errorf("%w: migrations need the owner's rights; set MIGRATION_DATABASE_URL to the owner's URL (it defaults to DATABASE_URL)", err)
	}
	return fmt.Errorf("%w: MIGRATION_DATABASE_URL's user must own the database (see notekeeper setup)", err)
}

// grantTenantRole makes the application's user a member of the tenant role,
// which it must be to switch to it. The application's user need not own or
// be granted anything else: tenant statements run as the tenant role. The
// grant is made on the migration connection, whose user created the role.
func grantTenantRole(ctx context.Context, appPool, migPool *pgxpool.Pool, role string) error {
	var user string
	var member bool
	err := appPool.QueryRow(ctx, "SELECT current_user, pg_has_role(current_user, $1, 'MEMBER')", role).Scan(&user, &member)
	if err != nil {
		return fmt.Errorf("inspect the DATABASE_URL user: %w", err)
	}
	if member {
		return nil
	}
	return execRetry(ctx, migPool, "GRANT "+pgx.Identifier{role}.Sanitize()+" TO "+pgx.Identifier{user}.Sanitize())
}

// grantReads lets the application's user read the tenant store and the
// migration journal (schema tenancy), so that the read-only admin commands
// (tenants list and show, migrate status, doctor) work with DATABASE_URL
// alone, without the owner's credentials. Reading is all it gets: every
// change still needs MIGRATION_DATABASE_URL.
func grantReads(ctx context.Context, appPool, migPool *pgxpool.Pool) error {
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
		if err := execRetry(ctx, migPool, sql); err != nil {
			return err
		}
	}
	return nil
}

// execRetry runs a GRANT on the migration connection, retrying the race of
// instances starting together.
func execRetry(ctx context.Context, migPool *pgxpool.Pool, sql string) error {
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

// openSQLite opens the embedded storage under DATA_DIR: a file per tenant,
// the migration journal and, with TENANT_STORE=db, the tenant store.
func (b *backend) openSQLite(ctx context.Context) (tenancy.Store, isolation.Provider, isolation.Provider, migrate.Journal, error) {
	provider, err := sqlite.New(sqlite.Config{Dir: b.cfg.DataDir})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	b.closers = append(b.closers, provider.Close)
	journalDB, err := provider.Open(filepath.Join(b.cfg.DataDir, journalFile))
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("open migration journal: %w", err)
	}
	b.closers = append(b.closers, func() { _ = journalDB.Close() })
	journal, err := migrate.NewSQLiteJournal(ctx, journalDB)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var store tenancy.Store = memstore.New()
	if b.cfg.TenantStore == service.StoreDB {
		s, err := sqlitestore.Open(ctx, filepath.Join(b.cfg.DataDir, tenantStoreFile), sqlitestore.Config{Logger: b.logger})
		if err != nil {
			return nil, nil, nil, nil, err
		}
		b.closers = append(b.closers, func() { _ = s.Close() })
		store = s
		b.seeded, b.markSeeded = fileSeedMarker(filepath.Join(b.cfg.DataDir, seedMarkerFile))
	}
	b.ready = func(ctx context.Context) error {
		if _, err := journalDB.ExecContext(ctx, "SELECT 1 FROM migration_targets LIMIT 1"); err != nil {
			return fmt.Errorf("read %s: %w", journalFile, err)
		}
		return nil
	}
	// The same provider serves requests, migrations and the lifecycle: on
	// SQLite there is no second role to connect as.
	return store, provider, provider, journal, nil
}

// close releases everything, last opened first.
func (b *backend) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}

// migrateAll brings every target up to date. A tenant whose migration fails
// is logged and left out (it is retried at the next start) while the others
// are served; shared tables that fail to migrate stop the start.
func (b *backend) migrateAll(ctx context.Context) error {
	report, err := b.migrator.Up(ctx, migrate.Options{})
	if err != nil && !errors.Is(err, migrate.ErrFailed) {
		return err
	}
	if report == nil {
		return err
	}
	for _, r := range report.Failed() {
		if r.TenantID == "" {
			return err
		}
		b.logger.ErrorContext(ctx, "tenant migration failed", slog.String("tenant_id", r.TenantID), slog.String("error", r.Error))
	}
	b.logger.InfoContext(ctx, "migrations done",
		slog.Int("targets", len(report.Results)),
		slog.Int("migrated", report.Count(migrate.StatusMigrated)),
		slog.Int("failed", report.Count(migrate.StatusFailed)),
		slog.Duration("duration", report.Duration))
	return nil
}

// seed provisions the demo tenants when SEED_DEMO is on and the tenant
// store has not recorded that it did so before: with a persisted store, a
// demo tenant deleted or purged later stays gone. Tenants that exist keep
// their status (a suspended one stays suspended), and one whose
// provisioning failed is retried.
func (b *backend) seed(ctx context.Context) error {
	if !b.cfg.SeedDemo {
		return nil
	}
	if b.seeded != nil {
		done, err := b.seeded(ctx)
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if done {
			b.logger.DebugContext(ctx, "demo tenants seeded before; not again")
			return nil
		}
	}
	for _, s := range seedTenants {
		t, err := b.tenants.Get(ctx, s.ID)
		switch {
		case errors.Is(err, tenancy.ErrTenantNotFound):
			_, err = b.lifecycle.Provision(ctx, &s)
			if errors.Is(err, tenancy.ErrDuplicate) {
				// Another instance seeded it meanwhile, or the identifier
				// belongs to a tenant created by hand.
				b.logger.WarnContext(ctx, "seed tenant not created: already taken", slog.String("tenant", s.Identifier), slog.Any("error", err))
				continue
			}
		case err != nil:
			return fmt.Errorf("seed %s: %w", s.Identifier, err)
		case t.Status == tenancy.StatusFailed || t.Status == tenancy.StatusProvisioning:
			_, err = b.lifecycle.Retry(ctx, t.ID)
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("seed %s: %w", s.Identifier, err)
		}
		b.logger.InfoContext(ctx, "seed tenant provisioned", slog.String("tenant", s.Identifier))
	}
	if b.markSeeded != nil {
		if err := b.markSeeded(ctx); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// postgresSeedMarker keeps the seed record in a table of its own.
func postgresSeedMarker(pool *pgxpool.Pool) (seeded func(context.Context) (bool, error), mark func(context.Context) error) {
	seeded = func(ctx context.Context) (bool, error) {
		var ok bool
		err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM notekeeper_demo_seed)").Scan(&ok)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // never seeded: no table yet
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read the demo seed record: %w", err)
		}
		return ok, nil
	}
	mark = func(ctx context.Context) error {
		_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS notekeeper_demo_seed (seeded_at timestamptz NOT NULL DEFAULT now());
INSERT INTO notekeeper_demo_seed DEFAULT VALUES`)
		if err != nil {
			return fmt.Errorf("record the demo seed: %w", err)
		}
		return nil
	}
	return seeded, mark
}

// fileSeedMarker keeps the seed record in a file.
func fileSeedMarker(path string) (seeded func(context.Context) (bool, error), mark func(context.Context) error) {
	seeded = func(context.Context) (bool, error) {
		_, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	}
	mark = func(context.Context) error {
		return os.WriteFile(path, []byte("The demo tenants were seeded; delete this file to seed them again.\n"), 0o644)
	}
	return seeded, mark
}
