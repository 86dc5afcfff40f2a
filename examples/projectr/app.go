package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/cache"
	"github.com/go-tenancy/tenancy/credential"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/go-tenancy/tenancy/jobs"
	"github.com/go-tenancy/tenancy/jwtauth"
	"github.com/go-tenancy/tenancy/lifecycle"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/go-tenancy/tenancy/move"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/go-tenancy/tenancy/quota"
	"github.com/go-tenancy/tenancy/redislog"
	storecache "github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/go-tenancy/tenancy/store/sqlitestore"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
	gormpg "gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"
)

//go:embed migrations
var migrationFiles embed.FS

// Tiers and their limits.
const (
	TierEnterprise = "enterprise"
	TierStarter    = "starter"
)

// tierQuotas are the projects each tier may hold.
var tierQuotas = map[string]quota.Limits{
	TierEnterprise: {ResourceProjects: 500},
	TierStarter:    {ResourceProjects: 3},
}

// seedTenants are the demo tenants, provisioned once when SEED_DEMO is on,
// each with the client secret "demo" (stored hashed).
var seedTenants = []tenancy.Tenant{
	{ID: "tenant-acme-001", Identifier: "acme-corp", Name: "Acme Corp", Tier: TierEnterprise},
	{ID: "tenant-tech-001", Identifier: "tech-corp", Name: "Tech Corp", Tier: TierEnterprise},
	{ID: "tenant-startupx-001", Identifier: "startup-x", Name: "Startup X", Tier: TierStarter},
	{ID: "tenant-devlabs-001", Identifier: "dev-labs", Name: "Dev Labs", Tier: TierStarter},
}

// demoSecret is the seeded tenants' client secret.
const demoSecret = "demo"

// SQLite files beside the tenant files. Tenant identifiers start with a
// letter, so these names can never be a tenant's file.
const (
	journalFile     = "_migrations.db"
	tenantStoreFile = "_tenants.db"
	queueFile       = "_jobs.db"
	seedMarkerFile  = "_demo-seeded"
)

// noRedisTTL is the tenant cache's lifetime without Redis when the tenant
// store is shared with the admin commands: nothing tells this process of
// their writes, so a suspension must show within a second without it.
const noRedisTTL = time.Second

// backend is the storage side of the service, shared by the server and the
// admin commands.
type backend struct {
	cfg    Config
	logger *slog.Logger

	tenants   *storecache.Store
	secrets   credential.Store
	auth      *credential.Authenticator
	provider  isolation.Provider // requests and jobs
	hybrid    *isolation.Hybrid  // nil on SQLite
	store     *GORMStore
	projects  Store // store behind the response cache
	appCache  *cache.Cache
	quota     *quota.Quota
	migrator  *migrate.Runner
	lifecycle *lifecycle.Manager
	limiter   *limit.Limiter // nil unless RATE_LIMIT_PER_MINUTE is set
	authLimit *limit.Limiter // nil when AUTH_RATE_LIMIT_PER_MINUTE is 0
	signer    *jwtauth.Signer
	verifier  *jwtauth.Verifier
	ready     func(context.Context) error
	doctor    func(context.Context) (*postgres.Report, error)

	// River: the client that works jobs (on the queue's database), the
	// queue as the lifecycle sees it, and, on SQLite, the outbox relay.
	river    jobRunner
	queue    *jobs.Queue
	enqueuer *jobs.Enqueuer
	worker   *exportWorker
	// appPool (PostgreSQL) or queueDB (SQLite) holds the queue.
	appPool *pgxpool.Pool
	queueDB *sql.DB
	// migrateQueue brings River's tables up to date.
	migrateQueue func(context.Context) error

	// migPool and adminProvider (PostgreSQL) reach every tenant's data on
	// MIGRATION_DATABASE_URL, for tenant moves.
	migPool       *pgxpool.Pool
	adminProvider isolation.Provider

	readOnly   bool
	seedMarker service.SeedMarker
	closers    []func()
}

// jobRunner is River's client, whatever its driver.
type jobRunner interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// backendOptions tune openBackend for the server, the admin commands and
// the tests.
type backendOptions struct {
	// Logger receives the library's log lines. Required.
	Logger *slog.Logger
	// Metrics counts cache lookups and limiter decisions. Nil: nothing.
	Metrics *promtenancy.Metrics
	// MigrateConcurrency is how many targets migrate at once. Zero: 4.
	MigrateConcurrency int
	// ReadOnly opens everything without changing anything (read-only
	// admin commands).
	ReadOnly bool
	// JobSnooze is how long a suspended tenant's job waits before it is
	// tried again. Default jobs.DefaultSnooze.
	JobSnooze time.Duration
	// RetryPolicy is River's retry policy. Default River's.
	RetryPolicy river.ClientRetryPolicy
	// BeforeExport runs before each export attempt's work (tests).
	BeforeExport func(ctx context.Context, job *river.Job[ExportArgs]) error
}

// openBackend connects everything cfg names.
func openBackend(ctx context.Context, cfg Config, opts backendOptions) (_ *backend, err error) {
	b := &backend{cfg: cfg, logger: opts.Logger, readOnly: opts.ReadOnly}
	defer func() {
		if err != nil {
			b.close()
		}
	}()

	var rdb *redis.Client
	ttl := time.Duration(0)
	if cfg.RedisURL != "" {
		ropts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, errors.New("REDIS_URL is not a valid Redis URL")
		}
		ropts.DialTimeout, ropts.ReadTimeout, ropts.WriteTimeout = 2*time.Second, time.Second, time.Second
		ropts.MaxRetries = 1
		ropts.ContextTimeoutEnabled = true
		redislog.Use(b.logger)
		rdb = redis.NewClient(ropts)
		b.closers = append(b.closers, func() { _ = rdb.Close() })
	} else if cfg.TenantStore == service.StoreDB {
		ttl = noRedisTTL
	}

	var (
		store   tenancy.Store
		admin   isolation.Provider
		journal migrate.Journal
		dialect string
		gdb     *gorm.DB
	)
	if cfg.Postgres() {
		dialect = "postgres"
		store, admin, journal, err = b.openPostgres(ctx)
	} else {
		dialect = "sqlite"
		store, admin, journal, err = b.openSQLite(ctx)
	}
	if err != nil {
		return nil, err
	}
	secrets, ok := store.(credential.Store)
	if !ok {
		return nil, errors.New("the tenant store keeps no secrets")
	}
	b.secrets = secrets
	b.tenants = storecache.New(store, storecache.Config{TTL: ttl, Redis: service.RedisOrNil(rdb), Prefix: cfg.RedisPrefix, Logger: b.logger, Metrics: opts.Metrics})
	b.closers = append(b.closers, func() { _ = b.tenants.Close() })

	if b.appCache, err = cache.New(cache.Config{Redis: service.RedisOrNil(rdb), Prefix: cfg.RedisPrefix + "app", TTL: cfg.CacheTTL, Logger: b.logger}); err != nil {
		return nil, err
	}
	if cfg.RateLimitPerMinute > 0 {
		b.limiter = limit.New(limit.Config{
			Default: limit.Rate{Limit: cfg.RateLimitPerMinute, Period: time.Minute},
			Redis:   service.RedisOrNil(rdb), Prefix: cfg.RedisPrefix + "ratelimit:", Logger: b.logger, Metrics: opts.Metrics,
		})
	}
	if cfg.AuthRatePerMinute > 0 {
		b.authLimit = limit.New(limit.Config{
			Default: limit.Rate{Limit: cfg.AuthRatePerMinute, Period: time.Minute},
			Redis:   service.RedisOrNil(rdb), Prefix: cfg.RedisPrefix + "authlimit:", Logger: b.logger,
		})
	}
	if b.auth, err = credential.New(credential.Config{Tenants: b.tenants, Secrets: secrets, Logger: b.logger}); err != nil {
		return nil, err
	}
	if err := b.openTokens(); err != nil {
		return nil, err
	}
	if b.quota, err = quota.New(quota.Config{Provider: b.provider, Tiers: tierQuotas}); err != nil {
		return nil, err
	}

	mw, err := jobs.NewMiddleware(jobs.Config{Store: b.tenants, Snooze: opts.JobSnooze, RequireTenant: true, Logger: b.logger})
	if err != nil {
		return nil, err
	}
	gcfg := &gorm.Config{SkipDefaultTransaction: true, Logger: gormlogger.Discard}
	var sess session
	if cfg.Postgres() {
		sqlDB, err := postgres.OpenDB(b.hybrid)
		if err != nil {
			return nil, err
		}
		b.closers = append(b.closers, func() { _ = sqlDB.Close() })
		if gdb, err = gorm.Open(gormpg.New(gormpg.Config{Conn: sqlDB}), gcfg); err != nil {
			return nil, fmt.Errorf("open GORM: %w", err)
		}
		insert, err := river.NewClient(riverdatabasesql.New(nil), &river.Config{Schema: jobs.DefaultSchema, Middleware: []rivertype.Middleware{mw}})
		if err != nil {
			return nil, err
		}
		sess = &pgSession{db: gdb, insert: insert}
	} else {
		if gdb, err = gorm.Open(sqliteDialect{}, gcfg); err != nil {
			return nil, fmt.Errorf("open GORM: %w", err)
		}
		// The enqueuer is completed once the River client exists (below).
		sess = &sqliteSession{base: gdb, provider: b.provider.(*sqlite.Provider)}
	}
	b.store = NewGORMStore(sess, b.quota)
	b.projects = newCachedStore(b.store, b.appCache, cfg.CacheTTL, b.logger)
	b.worker = &exportWorker{store: b.store, before: opts.BeforeExport}
	if err := b.openQueue(ctx, mw, opts); err != nil {
		return nil, err
	}
	if s, ok := sess.(*sqliteSession); ok {
		s.enqueuer = b.enqueuer
	}

	migrations, err := fs.Sub(migrationFiles, "migrations/"+dialect)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	targets, ok := admin.(isolation.Migratable)
	if !ok {
		return nil, fmt.Errorf("%s provider has no migration targets", dialect)
	}
	if b.migrator, err = migrate.New(migrate.Config{Migrations: migrations, Targets: targets, Store: b.tenants, Journal: journal, Concurrency: opts.MigrateConcurrency, Logger: b.logger}); err != nil {
		return nil, err
	}
	components := []tenancy.Component{b.tenants, b.appCache, b.queue, b.auth}
	for _, l := range []*limit.Limiter{b.limiter, b.authLimit} {
		if l != nil {
			components = append(components, l)
		}
	}
	b.lifecycle, err = lifecycle.New(lifecycle.Config{
		Store: b.tenants, Provider: admin, Migrator: b.migrator, Components: components,
		Hooks: []lifecycle.Hook{b.queue.Hook()}, Logger: b.logger,
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// openTokens makes the signer and verifier of JWT_SECRET, or of a random
// key when it is unset.
func (b *backend) openTokens() error {
	key := b.cfg.JWTSecret
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		if !b.readOnly {
			b.logger.Warn("JWT_SECRET is unset: tokens are signed with a random key and die with this process; set JWT_SECRET (32 bytes or more) to keep them valid across restarts and instances")
		}
	}
	jc := jwtauth.Config{Algorithm: jwtauth.HS256, Key: key, Issuer: b.cfg.JWTIssuer, Audience: b.cfg.JWTAudience, TTL: b.cfg.TokenTTL}
	var err error
	if b.signer, err = jwtauth.NewSigner(jc); err != nil {
		return err
	}
	b.verifier, err = jwtauth.NewVerifier(jc)
	return err
}

// hybridConfig routes enterprise tenants to their own schema and every
// other tier to the shared tables under row-level security.
func hybridConfig(rls, schema isolation.Provider) isolation.HybridConfig {
	return isolation.HybridConfig{
		Tiers:   map[string]tenancy.Isolation{TierEnterprise: tenancy.IsolationSchema, TierStarter: tenancy.IsolationRLS},
		Default: tenancy.IsolationRLS,
		Providers: map[tenancy.Isolation]isolation.Provider{
			tenancy.IsolationRLS:    rls,
			tenancy.IsolationSchema: schema,
		},
	}
}

// openPostgres opens the two pools and the hybrid providers on each: the
// requests' on DATABASE_URL, migrations' and provisioning's on
// MIGRATION_DATABASE_URL.
func (b *backend) openPostgres(ctx context.Context) (tenancy.Store, isolation.Provider, migrate.Journal, error) {
	appPool, err := b.cfg.OpenAppPool(ctx, 4)
	if err != nil {
		return nil, nil, nil, err
	}
	b.closers = append(b.closers, appPool.Close)
	migPool, err := b.cfg.OpenMigrationPool(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	b.closers = append(b.closers, migPool.Close)

	// A statement held by a tenant move (tenants set-tier) rereads the
	// tenant's record, past every cache, to follow it to its new place.
	var records tenancy.Store
	pcfg := postgres.Config{Logger: b.logger, Reload: func(ctx context.Context, id string) (*tenancy.Tenant, error) {
		return records.Get(ctx, id)
	}}
	hybridOn := func(pool *pgxpool.Pool) (*isolation.Hybrid, string, error) {
		rls, err := postgres.NewRLS(ctx, pool, pcfg)
		if err != nil {
			return nil, "", err
		}
		schema, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{Config: pcfg})
		if err != nil {
			return nil, "", err
		}
		h, err := isolation.NewHybrid(hybridConfig(rls, schema))
		return h, rls.Role(), err
	}
	admin, role, err := hybridOn(migPool)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("isolation on MIGRATION_DATABASE_URL: %w", err)
	}
	if !b.readOnly {
		if err := service.GrantTenantRole(ctx, appPool, migPool, role); err != nil {
			return nil, nil, nil, err
		}
	}
	if b.hybrid, _, err = hybridOn(appPool); err != nil {
		return nil, nil, nil, fmt.Errorf("isolation on DATABASE_URL: %w", err)
	}
	b.provider = b.hybrid
	// The tenant store and the secrets run on the owner's pool: the token
	// endpoint reads secrets, the admin commands write them.
	ctl, err := b.cfg.OpenControl(ctx, migPool, b.readOnly, b.logger)
	if err != nil {
		return nil, nil, nil, err
	}
	b.seedMarker = ctl.Seed
	journal, store := ctl.Journal, ctl.Store
	records = store
	b.migPool, b.adminProvider = migPool, admin
	appUser := appPool.Config().ConnConfig.User
	b.migrateQueue = func(ctx context.Context) error {
		var grant []string
		if appUser != migPool.Config().ConnConfig.User {
			grant = []string{appUser}
		}
		return jobs.MigratePostgres(ctx, migPool, jobs.PostgresConfig{Role: role, Grant: grant})
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
		return postgres.Doctor(ctx, migPool, postgres.DoctorConfig{Role: role, AppRole: appUser})
	}
	b.appPool = appPool
	return store, admin, journal, nil
}

// openSQLite opens the embedded storage under DATA_DIR: a file per tenant,
// the migration journal, the tenant store and the job queue.
func (b *backend) openSQLite(ctx context.Context) (tenancy.Store, isolation.Provider, migrate.Journal, error) {
	provider, err := sqlite.New(sqlite.Config{Dir: b.cfg.DataDir})
	if err != nil {
		return nil, nil, nil, err
	}
	b.closers = append(b.closers, provider.Close)
	b.provider = provider
	journalDB, err := provider.Open(filepath.Join(b.cfg.DataDir, journalFile))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open migration journal: %w", err)
	}
	b.closers = append(b.closers, func() { _ = journalDB.Close() })
	journal, err := migrate.NewSQLiteJournal(ctx, journalDB)
	if err != nil {
		return nil, nil, nil, err
	}
	var store tenancy.Store = memstore.New()
	if b.cfg.TenantStore == service.StoreDB {
		s, err := sqlitestore.Open(ctx, filepath.Join(b.cfg.DataDir, tenantStoreFile), sqlitestore.Config{Logger: b.logger})
		if err != nil {
			return nil, nil, nil, err
		}
		b.closers = append(b.closers, func() { _ = s.Close() })
		store = s
		b.seedMarker = service.FileSeedMarker(filepath.Join(b.cfg.DataDir, seedMarkerFile))
	}
	queueDB, err := provider.Open(filepath.Join(b.cfg.DataDir, queueFile))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open job queue: %w", err)
	}
	b.closers = append(b.closers, func() { _ = queueDB.Close() })
	b.queueDB = queueDB
	b.migrateQueue = func(ctx context.Context) error { return jobs.MigrateSQLite(ctx, queueDB) }
	b.ready = func(ctx context.Context) error {
		if err := journalDB.PingContext(ctx); err != nil {
			return fmt.Errorf("open %s: %w", journalFile, err)
		}
		return nil
	}
	return store, provider, journal, nil
}

// openQueue builds River's client that works export jobs, on the queue's
// database: PostgreSQL as the application's role, or the queue's SQLite
// file, whose jobs arrive through the tenants' outboxes.
func (b *backend) openQueue(ctx context.Context, mw *jobs.Middleware, opts backendOptions) error {
	if !b.readOnly {
		if err := b.migrateQueue(ctx); err != nil {
			return fmt.Errorf("migrate the job queue: %w", err)
		}
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, b.worker)
	rc := &river.Config{
		Queues:      map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: max(b.cfg.JobWorkers, 1)}},
		Workers:     workers,
		Middleware:  []rivertype.Middleware{mw},
		RetryPolicy: opts.RetryPolicy,
		Logger:      b.logger,
	}
	var err error
	if b.cfg.Postgres() {
		rc.Schema = jobs.DefaultSchema
		client, cerr := river.NewClient(riverpgxv5.New(b.appPool), rc)
		if cerr != nil {
			return cerr
		}
		b.river = client
		b.queue, err = jobs.NewPostgresQueue(b.appPool, "")
		return err
	}
	rc.FetchPollInterval = 200 * time.Millisecond
	client, err := river.NewClient(riversqlite.New(b.queueDB), rc)
	if err != nil {
		return err
	}
	b.river = client
	if b.queue, err = jobs.NewSQLiteQueue(b.queueDB); err != nil {
		return err
	}
	b.enqueuer, err = jobs.NewEnqueuer(jobs.EnqueuerConfig{Provider: b.provider, Relay: client, Store: b.tenants, Logger: b.logger})
	return err
}

// startJobs starts working jobs, unless JOB_WORKERS is 0 (and, on SQLite,
// relaying outboxes to the queue); the returned function stops them.
func (b *backend) startJobs(ctx context.Context) (stop func(), err error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	working := b.cfg.JobWorkers > 0
	if working {
		if err := b.river.Start(runCtx); err != nil {
			cancel()
			return nil, fmt.Errorf("start jobs: %w", err)
		}
	}
	done := make(chan struct{})
	if b.enqueuer != nil {
		go func() {
			defer close(done)
			_ = b.enqueuer.Run(runCtx)
		}()
	} else {
		close(done)
	}
	return func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if working {
			if err := b.river.Stop(sctx); err != nil {
				b.logger.Warn("stop jobs", slog.Any("error", err))
			}
		}
		cancel()
		<-done
	}, nil
}

// close releases everything, last opened first.
func (b *backend) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}

// seed provisions the demo tenants, each with the secret "demo", when
// SEED_DEMO is on and the tenant store has not recorded doing so before:
// a demo tenant purged later stays gone.
func (b *backend) seed(ctx context.Context) error {
	if !b.cfg.SeedDemo {
		return nil
	}
	return b.seedMarker.Seed(ctx, seedTenants, b.tenants, b.lifecycle, b.logger, func(ctx context.Context, t *tenancy.Tenant, _ bool) error {
		return putDemoSecret(ctx, b.secrets, t)
	})
}

// putDemoSecret stores the hash of the demo secret for t, unless t has
// it already.
func putDemoSecret(ctx context.Context, secrets credential.Store, t *tenancy.Tenant) error {
	if _, err := secrets.GetSecret(ctx, t.ID, demoSecretID); err == nil {
		return nil
	} else if !errors.Is(err, credential.ErrSecretNotFound) {
		return err
	}
	s := credential.Secret{ID: demoSecretID, TenantID: t.ID, Hash: credential.Hash(namedSecret(demoSecret), credential.DefaultParams), CreatedAt: time.Now().UTC()}
	// No other secret is valid beyond the end of time: none changes.
	return secrets.PutSecret(ctx, s, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
}

// mover moves tenants' data between the shared tables and their own
// schemas when their tier changes (tenants set-tier): nil on SQLite, where
// every tier has a file of its own. The destination is created and
// migrated before any row is copied.
func (b *backend) mover() *move.Mover {
	if b.migPool == nil {
		return nil
	}
	return &move.Mover{
		Store: b.tenants, Provider: b.adminProvider, Journal: b.migPool,
		Prepare: func(ctx context.Context, t *tenancy.Tenant) error {
			if err := b.adminProvider.Initialize(ctx, t); err != nil {
				return err
			}
			_, err := b.migrator.UpTenant(ctx, t)
			return err
		},
		Logger: b.logger,
	}
}
