// Command tenancy administers what needs no application: tenant records
// (list, show, suspend, activate, delete) and the isolation doctor.
//
//	DATABASE_URL=postgres://... go run ./cmd/tenancy tenants list
//	go run ./cmd/tenancy --database-url sqlite:data/tenants.db tenants show acme-corp
//	go run ./cmd/tenancy doctor
//
// DATABASE_URL (or --database-url) names the tenant store: a postgres:// URL
// (the store's tables are created or brought up to date first, and the
// doctor inspects that database), or sqlite:PATH or a path ending in .db for
// an existing SQLite store. With REDIS_URL (or --redis-url) set, changes are
// announced through the tenant cache's Redis, so running servers see them at
// once; TENANCY_CACHE_PREFIX must then match their cache prefix (default
// "tenancy:").
//
// DATABASE_URLS lists the PostgreSQL servers tenants are placed on, as
// name=postgres://... entries separated by commas or line breaks (see
// postgres.ParseServers), such as "eu=postgres://app@db-eu/app". Its
// "default" entry, or DATABASE_URL, is the default server: it holds the
// tenant store and the tenants without a placement. The doctor then
// inspects every server, and reports tenants whose placement names none.
//
// TENANCY_APP_ROLE names the role the service's requests connect as, for
// the doctor to check (default: DATABASE_URL's user) and for setup, which
// prints the SQL that creates it, DATABASE_URL's user as the owner, the
// tenant role and the database.
//
// Commands that only read (tenants list and show, tenants domain list,
// doctor) change nothing in the database: DATABASE_URL may then name a role
// that cannot create the tenant store's tables.
//
// TENANCY_BASE_DOMAIN names the domain tenants get subdomains of, as the
// servers' host resolver has it (such as "example.com"): the tenants domain
// commands refuse custom domains under it, and need it set. tenants domain
// verify looks the challenge record up with the system's DNS resolver.
//
// Creating, purging and migrating tenants needs the application's own
// binary, which mounts the same commands with its storage and migrations
// (package admin). See "tenancy help" for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/pgstore"
	"github.com/go-tenancy/tenancy/store/sqlitestore"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := &admin.App{Name: "tenancy", Short: "administer a tenancy tenant store", Open: open, Setup: setupConfig}
	code := app.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// connectTimeout bounds each connection attempt when the URL sets none, so
// that an unreachable host fails in seconds rather than at the OS timeout.
const connectTimeout = 10 * time.Second

// open builds the environment from DATABASE_URL and REDIS_URL. Messages
// never repeat a URL: it may hold a password.
func open(ctx context.Context, c admin.Connect) (*admin.Env, error) {
	servers, err := serverMap(c.DatabaseURL, os.Getenv("DATABASE_URLS"))
	if err != nil {
		return nil, err
	}
	url := c.DatabaseURL
	if servers != nil {
		url = servers[""]
	}
	var env *admin.Env
	switch {
	case url == "":
		return nil, errors.New("set DATABASE_URL (a postgres:// URL, or sqlite:PATH) or pass --database-url")
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		env, err = openPostgres(ctx, url, servers, c.ReadOnly)
	case strings.HasPrefix(url, "sqlite:"):
		env, err = openSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//"))
	case strings.HasSuffix(url, ".db"):
		env, err = openSQLite(ctx, url)
	default:
		return nil, errors.New("DATABASE_URL must be a postgres:// URL, sqlite:PATH or a path ending in .db")
	}
	if err != nil {
		return nil, err
	}
	env.BaseDomain = os.Getenv("TENANCY_BASE_DOMAIN")
	if c.RedisURL != "" {
		if err := announceChanges(ctx, env, c.RedisURL); err != nil {
			env.Close()
			return nil, err
		}
	}
	return env, nil
}

// serverMap reads DATABASE_URLS, with databaseURL as its default server
// unless it names one itself. Nil when DATABASE_URLS is unset.
func serverMap(databaseURL, urls string) (map[string]string, error) {
	if strings.TrimSpace(urls) == "" {
		return nil, nil
	}
	servers, err := postgres.ParseServers(urls)
	if err != nil && databaseURL != "" {
		// No default entry: DATABASE_URL is the default server.
		withDefault, err2 := postgres.ParseServers(postgres.DefaultServer + "=" + databaseURL + "\n" + urls)
		if err2 == nil {
			return withDefault, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URLS: %w", err)
	}
	if databaseURL != "" && databaseURL != servers[""] {
		return nil, errors.New("DATABASE_URL and the default server of DATABASE_URLS differ: set one of them")
	}
	return servers, nil
}

func openPostgres(ctx context.Context, url string, servers map[string]string, readOnly bool) (*admin.Env, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("DATABASE_URL is not a valid PostgreSQL URL")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	// pgstore.Migrate holds one connection for goose and one for its lock.
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	// Commands that only read change nothing, so that they work as a
	// role that may not create the store's tables.
	if !readOnly {
		if err := pgstore.Migrate(ctx, pool, pgstore.Config{}); err != nil {
			pool.Close()
			return nil, err
		}
	}
	store, err := pgstore.New(ctx, pool, pgstore.Config{})
	if err != nil {
		pool.Close()
		return nil, err
	}
	doctorCfg := postgres.DoctorConfig{AppRole: os.Getenv("TENANCY_APP_ROLE")}
	doctor := func(ctx context.Context) (*postgres.Report, error) {
		return postgres.Doctor(ctx, pool, doctorCfg)
	}
	closeAll := pool.Close
	if len(servers) > 1 {
		others := make(map[string]string, len(servers)-1)
		for name, u := range servers {
			if name != "" {
				others[name] = u
			}
		}
		placed, err := openOthers(ctx, others)
		if err != nil {
			pool.Close()
			return nil, err
		}
		placed[""] = pool
		closeAll = placed.Close
		doctor = func(ctx context.Context) (*postgres.Report, error) {
			tenants, err := tenancy.ListAll(ctx, store, "")
			if err != nil {
				return nil, err
			}
			return postgres.DoctorServers(ctx, placed, doctorCfg, tenants)
		}
	}
	return &admin.Env{
		Store:      store,
		Persistent: true,
		Doctor:     doctor,
		Close:      closeAll,
	}, nil
}

func openSQLite(ctx context.Context, path string) (*admin.Env, error) {
	if path == "" {
		return nil, errors.New("DATABASE_URL names no SQLite file")
	}
	// The store would create a missing file: a typo would then list no
	// tenants instead of failing.
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("SQLite tenant store %q: %w", path, errors.Unwrap(err))
	}
	store, err := sqlitestore.Open(ctx, path, sqlitestore.Config{})
	if err != nil {
		return nil, err
	}
	return &admin.Env{Store: store, Persistent: true, Close: func() { _ = store.Close() }}, nil
}

// announceChanges puts the tenant cache in front of the store, so that
// every change is published on the cache's invalidation channel and running
// servers drop their cached copies at once rather than after their TTL.
func announceChanges(ctx context.Context, env *admin.Env, url string) error {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return errors.New("REDIS_URL is not a valid redis:// URL")
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 3*time.Second, 2*time.Second, 2*time.Second
	opts.MaxRetries = 1
	// go-redis logs dial failures itself; the error line says it once.
	redis.SetLogger(silent{})
	rdb := redis.NewClient(opts)
	// The cache would carry on without Redis; here that would leave every
	// server with a stale copy, so an unreachable Redis is an error.
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return fmt.Errorf("cannot reach Redis: %w", err)
	}
	cfg := cache.Config{Redis: rdb, Logger: slog.New(slog.DiscardHandler)}
	if p := os.Getenv("TENANCY_CACHE_PREFIX"); p != "" {
		cfg.Prefix = p
	}
	cached := cache.New(env.Store, cfg)
	closeStore := env.Close
	env.Store = tenancy.Store(cached)
	env.Close = func() {
		_ = cached.Close()
		_ = rdb.Close()
		if closeStore != nil {
			closeStore()
		}
	}
	return nil
}

// setupConfig is the setup command's configuration: DATABASE_URL's user owns the
// database, and TENANCY_APP_ROLE is the role the service's requests
// connect as.
func setupConfig(c admin.Connect) (postgres.SetupConfig, error) {
	app := os.Getenv("TENANCY_APP_ROLE")
	if app == "" {
		return postgres.SetupConfig{}, errors.New("set TENANCY_APP_ROLE to the role the service's requests connect as")
	}
	u, err := neturl.Parse(c.DatabaseURL)
	if err != nil || c.DatabaseURL == "" {
		return postgres.SetupConfig{}, errors.New("set DATABASE_URL to the owner's postgres:// URL")
	}
	appURL := *u
	appURL.User = neturl.User(app)
	return admin.SetupFromURLs(appURL.String(), c.DatabaseURL)
}

// silent drops go-redis's own log lines.
type silent struct{}

func (silent) Printf(context.Context, string, ...any) {}

// openOthers opens a pool on each server of DATABASE_URLS other than the
// default, each checked with a ping.
func openOthers(ctx context.Context, urls map[string]string) (postgres.Servers, error) {
	servers, err := postgres.OpenServers(ctx, urls, func(_ string, cfg *pgxpool.Config) {
		if cfg.ConnConfig.ConnectTimeout == 0 {
			cfg.ConnConfig.ConnectTimeout = connectTimeout
		}
		cfg.MaxConns = 2
	})
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URLS: %w", err)
	}
	if err := servers.Ping(ctx); err != nil {
		servers.Close()
		return nil, fmt.Errorf("DATABASE_URLS: %w", err)
	}
	return servers, nil
}
