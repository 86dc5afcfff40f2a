package service

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy/isolation/postgres"
)

// Tenant store kinds (TENANT_STORE).
const (
	// StoreMemory keeps tenants in the process's memory.
	StoreMemory = "memory"
	// StoreDB keeps tenants in the database: PostgreSQL, or a SQLite file
	// under DATA_DIR.
	StoreDB = "db"
)

// Config is the configuration every example app reads from the environment
// (see LoadConfig). An app with variables of its own reads them through the
// same Env, after LoadConfig.
type Config struct {
	// Name is the app's name (Defaults.Name), as its command is called.
	Name string
	// Port is the HTTP port (PORT). Default 8000.
	Port int
	// DataDir holds the SQLite files when DatabaseURL is empty (DATA_DIR).
	// Default ./data/<name>.
	DataDir string
	// DatabaseURL is the PostgreSQL DSN the requests use (DATABASE_URL).
	// Empty: embedded SQLite under DataDir. Default empty.
	DatabaseURL string
	// MigrationDatabaseURL is the DSN that migrations, provisioning and the
	// tenant store use (MIGRATION_DATABASE_URL): a role that may create
	// tables and roles. Default DatabaseURL.
	MigrationDatabaseURL string
	// DatabaseURLs maps each placement name to the request DSN (the role
	// of DATABASE_URL) of another PostgreSQL server tenants are placed on,
	// read from DATABASE_URLS: name=postgres://... entries separated by
	// commas or line breaks (see postgres.ParseServers), such as
	// "eu=postgres://app@db-eu/app". A "default" entry, if any, is
	// DATABASE_URL (and sets it when it is unset); it is not kept here. The
	// default server holds the tenant store, the migration journal and the
	// tenants without a placement. A tenant whose Placement names no
	// server is refused, never served from the default server. Default
	// none: one server.
	DatabaseURLs map[string]string
	// MigrationDatabaseURLs is DatabaseURLs for migrations and provisioning
	// (MIGRATION_DATABASE_URLS, in the same format): the migration role's
	// DSN on each of those servers, which it must name, no more, no less.
	// Default DatabaseURLs; required when MIGRATION_DATABASE_URL differs
	// from DATABASE_URL, so that no server is migrated as the request role.
	MigrationDatabaseURLs map[string]string
	// RedisURL enables the shared tenant cache and cross-instance
	// invalidation (REDIS_URL). Empty: in-process cache only. Default empty.
	RedisURL string
	// RedisPrefix starts every Redis key the service writes (REDIS_PREFIX),
	// so several services may share one Redis. Default "<name>:".
	RedisPrefix string
	// TenantStore is StoreMemory or StoreDB (TENANT_STORE). Default
	// Defaults.TenantStore.
	TenantStore string
	// MigrateOnStart runs the migrations at start (MIGRATE_ON_START).
	// Default true.
	MigrateOnStart bool
	// RateLimitPerMinute caps each tenant's requests per minute
	// (RATE_LIMIT_PER_MINUTE). Zero: no limit. Default zero.
	RateLimitPerMinute int
	// SeedDemo provisions the app's demo tenants (SEED_DEMO), once.
	// Default true with the in-memory tenant store or the embedded SQLite,
	// false on PostgreSQL with TENANT_STORE=db.
	SeedDemo bool
	// LogLevel is debug, info, warn or error (LOG_LEVEL). Default info.
	LogLevel slog.Level
	// LogFormat is text or json (LOG_FORMAT). Default text.
	LogFormat string
	// Tracing exports OpenTelemetry traces over OTLP: a span per request
	// and per tenant statement. Off unless OTEL_TRACES_EXPORTER=otlp or an
	// OTLP endpoint is set (see NewTracerProvider). Default false.
	Tracing bool

	// Pooler says what sits between DATABASE_URL and PostgreSQL
	// (DATABASE_POOLER): none, transaction (PgBouncer in transaction mode)
	// or transaction-prepared (PgBouncer 1.21+ with
	// max_prepared_statements). Default none.
	Pooler postgres.Pooler
	// RequestTimeout bounds each request's work (REQUEST_TIMEOUT, a Go
	// duration such as 10s; 0 for none): its context ends then, and what
	// waits on the database answers 504. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// StatementTimeout bounds each statement on DATABASE_URL
	// (STATEMENT_TIMEOUT; 0 for none): PostgreSQL cancels a statement that
	// runs longer (statement_timeout, set when the connection opens), and
	// the request answers 504. Through a transaction pooler, which refuses
	// start-up parameters, set it on the role instead (ALTER ROLE ... SET
	// statement_timeout); the request timeout still applies. Default
	// DefaultStatementTimeout.
	StatementTimeout time.Duration
	// MaxBodyBytes is the largest request body accepted (MAX_BODY_BYTES);
	// a larger one answers 413. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Server holds the HTTP server's timeouts (READ_HEADER_TIMEOUT,
	// READ_TIMEOUT, WRITE_TIMEOUT, IDLE_TIMEOUT, SHUTDOWN_TIMEOUT).
	Server ServerConfig
}

// Defaults of the limits, documented with their Config fields.
const (
	DefaultRequestTimeout   = 10 * time.Second
	DefaultStatementTimeout = 5 * time.Second
	DefaultMaxBodyBytes     = 1 << 20
)

// Postgres reports whether the service runs on PostgreSQL.
func (c Config) Postgres() bool { return c.DatabaseURL != "" }

// Defaults are an app's own defaults for the common configuration.
type Defaults struct {
	// Name is the app's name: DATA_DIR defaults to ./data/<Name> and
	// REDIS_PREFIX to "<Name>:". Required.
	Name string
	// TenantStore is TENANT_STORE's default. Default StoreMemory.
	TenantStore string
}

// LoadConfig reads the common configuration through env. Problems are
// collected in env, to be reported together by env.Err once the app has
// read its own variables too.
func LoadConfig(env *Env, d Defaults) Config {
	if d.TenantStore == "" {
		d.TenantStore = StoreMemory
	}
	c := Config{
		Name:        d.Name,
		DataDir:     env.String("DATA_DIR", "./data/"+d.Name),
		DatabaseURL: env.String("DATABASE_URL", ""),
		RedisURL:    env.String("REDIS_URL", ""),
		RedisPrefix: env.String("REDIS_PREFIX", d.Name+":"),
		TenantStore: env.String("TENANT_STORE", d.TenantStore),
		LogFormat:   env.String("LOG_FORMAT", "text"),
	}
	c.DatabaseURLs = serverMap(env, "DATABASE_URLS", "DATABASE_URL", &c.DatabaseURL)
	c.MigrationDatabaseURL = env.String("MIGRATION_DATABASE_URL", c.DatabaseURL)
	c.MigrationDatabaseURLs = serverMap(env, "MIGRATION_DATABASE_URLS", "MIGRATION_DATABASE_URL", &c.MigrationDatabaseURL)
	c.checkServers(env)
	c.Port = env.Int("PORT", 8000, func(n int) bool { return n >= 0 && n <= 65535 }, "a port number")
	c.MigrateOnStart = env.Bool("MIGRATE_ON_START", true)
	c.RateLimitPerMinute = env.Int("RATE_LIMIT_PER_MINUTE", 0, func(n int) bool { return n >= 0 }, "a whole number of requests, 0 for no limit")
	if c.TenantStore != StoreMemory && c.TenantStore != StoreDB {
		env.Fail(errors.New("TENANT_STORE must be memory or db"))
	}
	c.SeedDemo = env.Bool("SEED_DEMO", !(c.DatabaseURL != "" && c.TenantStore == StoreDB))
	if err := c.LogLevel.UnmarshalText([]byte(env.String("LOG_LEVEL", "info"))); err != nil {
		env.Fail(errors.New("LOG_LEVEL must be debug, info, warn or error"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		env.Fail(errors.New("LOG_FORMAT must be text or json"))
	}
	if _, set := env.Lookup("DATABASE_URL"); !set && c.DatabaseURL == "" {
		if _, set := env.Lookup("MIGRATION_DATABASE_URL"); set {
			env.Fail(errors.New("MIGRATION_DATABASE_URL needs DATABASE_URL"))
		}
	}
	// Only what the user set is named: MIGRATION_DATABASE_URL defaulted
	// from a bad DATABASE_URL is the same mistake, reported once.
	for _, name := range []string{"DATABASE_URL", "MIGRATION_DATABASE_URL"} {
		if v, set := env.Lookup(name); set && !IsPostgresURL(v) {
			env.Fail(fmt.Errorf("%s must be a postgres:// or postgresql:// URL", name))
		}
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		env.Fail(errors.New("REDIS_URL must be a redis:// or rediss:// URL"))
	}
	if c.DataDir == "" || strings.ContainsRune(c.DataDir, '?') {
		env.Fail(errors.New("DATA_DIR must be a directory path without '?'"))
	}
	c.Tracing = loadTracing(env)

	switch pooler := env.String("DATABASE_POOLER", "none"); pooler {
	case "none":
		c.Pooler = postgres.PoolerNone
	case "transaction":
		c.Pooler = postgres.PoolerTransaction
	case "transaction-prepared":
		c.Pooler = postgres.PoolerTransactionPrepared
	default:
		env.Fail(errors.New("DATABASE_POOLER must be none, transaction or transaction-prepared"))
	}
	c.RequestTimeout = env.Duration("REQUEST_TIMEOUT", DefaultRequestTimeout)
	c.StatementTimeout = env.Duration("STATEMENT_TIMEOUT", DefaultStatementTimeout)
	c.MaxBodyBytes = int64(env.Int("MAX_BODY_BYTES", DefaultMaxBodyBytes, func(n int) bool { return n > 0 }, "a positive number of bytes"))
	c.Server = ServerConfig{
		ReadHeaderTimeout: env.Duration("READ_HEADER_TIMEOUT", DefaultReadHeaderTimeout),
		ReadTimeout:       env.Duration("READ_TIMEOUT", DefaultReadTimeout),
		WriteTimeout:      env.Duration("WRITE_TIMEOUT", DefaultWriteTimeout),
		IdleTimeout:       env.Duration("IDLE_TIMEOUT", DefaultIdleTimeout),
		ShutdownTimeout:   env.Duration("SHUTDOWN_TIMEOUT", DefaultShutdownTimeout),
	}
	if c.Server.WriteTimeout > 0 && c.RequestTimeout > 0 && c.Server.WriteTimeout <= c.RequestTimeout {
		// The server would cut the connection before the handler could
		// answer 504.
		env.Fail(errors.New("WRITE_TIMEOUT must be longer than REQUEST_TIMEOUT"))
	}
	return c
}

// serverMap reads the server map in variable (DATABASE_URLS or
// MIGRATION_DATABASE_URLS) and returns its servers other than the default.
// Its default server is *def (the variable defaultVar): an entry naming it
// must match *def, and sets it when it is empty.
func serverMap(env *Env, variable, defaultVar string, def *string) map[string]string {
	v, set := env.Lookup(variable)
	if !set {
		return nil
	}
	servers, err := postgres.ParseServers(v)
	if err != nil && *def != "" {
		// No default entry: defaultVar is the default server.
		if withDefault, err2 := postgres.ParseServers(postgres.DefaultServer + "=" + *def + "\n" + v); err2 == nil {
			servers, err = withDefault, nil
		}
	}
	if err != nil {
		env.Fail(fmt.Errorf("%s: %w", variable, err))
		return nil
	}
	switch {
	case *def == "":
		*def = servers[""]
	case *def != servers[""]:
		env.Fail(fmt.Errorf("%s and the %q server of %s differ: set one of them", defaultVar, postgres.DefaultServer, variable))
	}
	delete(servers, "")
	if len(servers) == 0 {
		return nil
	}
	return servers
}

// checkServers checks that MIGRATION_DATABASE_URLS names the servers of
// DATABASE_URLS, and defaults it.
func (c *Config) checkServers(env *Env) {
	_, migSet := env.Lookup("MIGRATION_DATABASE_URLS")
	if !migSet {
		if len(c.DatabaseURLs) > 0 && c.MigrationDatabaseURL != c.DatabaseURL {
			env.Fail(errors.New("MIGRATION_DATABASE_URLS must list the migration role's URL on every server of DATABASE_URLS, as MIGRATION_DATABASE_URL does on the default server"))
		}
		c.MigrationDatabaseURLs = c.DatabaseURLs
		return
	}
	for _, name := range slices.Sorted(maps.Keys(c.MigrationDatabaseURLs)) {
		if _, ok := c.DatabaseURLs[name]; !ok {
			env.Fail(fmt.Errorf("MIGRATION_DATABASE_URLS names server %q, which DATABASE_URLS does not", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.DatabaseURLs)) {
		if _, ok := c.MigrationDatabaseURLs[name]; !ok {
			env.Fail(fmt.Errorf("MIGRATION_DATABASE_URLS does not name server %q of DATABASE_URLS", name))
		}
	}
}

// IsPostgresURL reports whether s is a postgres:// or postgresql:// URL. It
// checks the scheme only, so that an error message about it need not
// repeat the URL, which may hold a password.
func IsPostgresURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql")
}

// Env reads configuration variables and collects what is wrong with them,
// so that a user learns every mistake at once, each naming its variable and
// never repeating its value (which may be a secret). Values are trimmed; an
// empty value is unset.
type Env struct {
	getenv func(string) string
	errs   []error
}

// NewEnv returns an Env reading through getenv (os.Getenv in main).
func NewEnv(getenv func(string) string) *Env {
	return &Env{getenv: getenv}
}

// Lookup returns the variable's trimmed value, and whether it is set to a
// value that is not blank.
func (e *Env) Lookup(key string) (string, bool) {
	v := strings.TrimSpace(e.getenv(key))
	return v, v != ""
}

// String returns the variable's value, or def when it is unset.
func (e *Env) String(key, def string) string {
	if v, ok := e.Lookup(key); ok {
		return v
	}
	return def
}

// Bool returns the variable as a boolean (strconv.ParseBool), or def when it
// is unset. A value that is not one records "KEY must be true or false".
func (e *Env) Bool(key string, def bool) bool {
	v, ok := e.Lookup(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.Fail(fmt.Errorf("%s must be true or false", key))
		return def
	}
	return b
}

// Int returns the variable as a decimal integer, or def when it is unset.
// A value that is not an integer, or that valid (when not nil) refuses,
// records "KEY must be <want>".
func (e *Env) Int(key string, def int, valid func(int) bool, want string) int {
	v, ok := e.Lookup(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || valid != nil && !valid(n) {
		e.Fail(fmt.Errorf("%s must be %s", key, want))
		return def
	}
	return n
}

// Duration returns the variable as a Go duration (time.ParseDuration: 10s,
// 500ms, 2m; a bare 0 is zero), or def when it is unset. A negative value,
// or one that is not a duration, records "KEY must be a duration".
func (e *Env) Duration(key string, def time.Duration) time.Duration {
	v, ok := e.Lookup(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.Fail(fmt.Errorf("%s must be a duration such as 10s or 500ms (0 for none)", key))
		return def
	}
	return d
}

// Fail records a problem with the configuration. err should name the
// variable and say what it must be, without repeating its value.
func (e *Env) Fail(err error) {
	e.errs = append(e.errs, err)
}

// Err returns every problem recorded, in order, each on its own line
// prefixed "configuration: ", or nil.
func (e *Env) Err() error {
	if len(e.errs) == 0 {
		return nil
	}
	errs := make([]error, len(e.errs))
	for i, err := range e.errs {
		errs[i] = fmt.Errorf("configuration: %w", err)
	}
	return errors.Join(errs...)
}
