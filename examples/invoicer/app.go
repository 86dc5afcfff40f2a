package main

import (
	"context"

	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/examples/invoicer/billing"
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
	"github.com/go-tenancy/tenancy/store/sqlitestore"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// seedTenants are the demo tenants, provisioned once when SEED_DEMO is on
// (see backend.seed): acme-corp (alias acme) and globex.
var seedTenants = billing.DemoTenants

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
	// billing serves requests, on the application's connection.
	billing billing.Store
	// migrator applies billing's migrations (tenantMigrations) to every
	// tenant target.
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
	// seedMarker is the persisted record that the demo tenants were
	// seeded; empty with the in-memory tenant store, which remembers
	// nothing.
	seedMarker service.SeedMarker

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
		dialect  isolation.Dialect
	)
	if cfg.Postgres() {
		dialect = isolation.Postgres
		if store, provider, admin, journal, err = b.openPostgres(ctx); err != nil {
			return nil, err
		}
	} else {
		dialect = isolation.SQLite
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
		Redis:   service.RedisOrNil(rdb),
		Prefix:  cfg.RedisPrefix,
		Logger:  logger,
		Metrics: opts.Metrics,
	})
	b.closers = append(b.closers, func() { _ = b.tenants.Close() })

	if cfg.RateLimitPerMinute > 0 {
		b.limiter = limit.New(limit.Config{
			Default: limit.Rate{Limit: cfg.RateLimitPerMinute, Period: time.Minute},
			Redis:   service.RedisOrNil(rdb),
			Prefix:  cfg.RedisPrefix + "ratelimit:",
			Logger:  logger,
			Metrics: opts.Metrics,
		})
	}

	migrations, err := tenantMigrations(dialect)
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
	switch p := provider.(type) {
	case *sqlite.Provider:
		b.billing = billing.NewSQLite(p)
	default:
		if b.billing, err = billing.NewPostgres(p); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// openPostgres opens the two pools. Requests run on DATABASE_URL through
// the schema-per-tenant provider, which sets every tenant statement's
// search path to the tenant's schema and switches it to the tenant role;
// migrations, provisioning (CREATE SCHEMA) and the tenant store run on
// MIGRATION_DATABASE_URL.
func (b *backend) openPostgres(ctx context.Context) (tenancy.Store, isolation.Provider, isolation.Provider, migrate.Journal, error) {
	appPool, err := b.cfg.OpenAppPool(ctx, 1)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	b.closers = append(b.closers, appPool.Close)
	// pgstore's migrations hold one connection while a second renews their
	// lock, and each target being migrated holds one for its journal lock.
	migPool, err := b.cfg.OpenMigrationPool(ctx)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	b.closers = append(b.closers, migPool.Close)
	// The other servers of DATABASE_URLS, each with a pool per role: the
	// providers route a tenant to its Placement's, and migrate, purge and
	// inspect every server. The tenant store and the journal stay on the
	// default server.
	placed, err := b.cfg.OpenPlaced(ctx, 1)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	b.closers = append(b.closers, placed.Close)

	pcfg := postgres.Config{Logger: b.logger, Placements: placed.Migration.Placements()}
	admin, err := postgres.NewSchema(ctx, migPool, postgres.SchemaConfig{Config: pcfg})
	if err != nil {
		return nil, nil, nil, nil, b.cfg.SetupHint(ctx, migPool, fmt.Errorf("schema per tenant on MIGRATION_DATABASE_URL: %w", err))
	}
	if !b.readOnly {
		if err := service.GrantTenantRole(ctx, appPool, migPool, admin.Role()); err != nil {
			return nil, nil, nil, nil, b.cfg.SetupHint(ctx, migPool, err)
		}
		if err := placed.GrantTenantRole(ctx, admin.Role()); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	appCfg := pcfg
	appCfg.Pooler = b.cfg.Pooler
	appCfg.Placements = placed.App.Placements()
	if b.tracerProvider != nil {
		appCfg.Tracer = oteltenancy.New(oteltenancy.Config{
			TracerProvider: b.tracerProvider,
			Attributes:     oteltenancy.ServerAttributes(&appPool.Config().ConnConfig.Config),
		})
	}
	provider, err := postgres.NewSchema(ctx, appPool, postgres.SchemaConfig{Config: appCfg})
	if err != nil {
		return nil, nil, nil, nil, b.cfg.SetupHint(ctx, migPool, fmt.Errorf("schema per tenant on DATABASE_URL: %w", err))
	}
	ctl, err := b.cfg.OpenControl(ctx, migPool, b.readOnly, b.logger)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	b.seedMarker = ctl.Seed
	if !b.readOnly {
		if err := service.GrantReads(ctx, appPool, migPool); err != nil {
			return nil, nil, nil, nil, b.cfg.NeedsOwner(err)
		}
	}
	b.ready = func(ctx context.Context) error {
		if err := appPool.Ping(ctx); err != nil {
			return fmt.Errorf("ping DATABASE_URL: %w", err)
		}
		if err := migPool.Ping(ctx); err != nil {
			return fmt.Errorf("ping MIGRATION_DATABASE_URL: %w", err)
		}
		return placed.Ping(ctx)
	}
	b.doctor = func(ctx context.Context) (*postgres.Report, error) {
		return placed.Doctor(ctx, migPool, postgres.DoctorConfig{Role: admin.Role(), AppRole: appPool.Config().ConnConfig.User}, b.tenants)
	}
	return ctl.Store, provider, admin, ctl.Journal, nil
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
		b.seedMarker = service.FileSeedMarker(filepath.Join(b.cfg.DataDir, seedMarkerFile))
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

// seed provisions the demo tenants (and with SEED_DEMO_DATA their demo
// customers and invoices) when SEED_DEMO is on and the tenant
// store has not recorded that it did so before: with a persisted store, a
// demo tenant deleted or purged later stays gone. Tenants that exist keep
// their status (a suspended one stays suspended), and one whose
// provisioning failed is retried.
func (b *backend) seed(ctx context.Context) error {
	if !b.cfg.SeedDemo {
		return nil
	}
	return b.seedMarker.Seed(ctx, seedTenants, b.tenants, b.lifecycle, b.logger, func(ctx context.Context, t *tenancy.Tenant, created bool) error {
		if !created || !b.cfg.SeedDemoData {
			return nil
		}
		return billing.LoadDemo(ctx, b.billing, t, billing.Demo[t.ID])
	})
}
