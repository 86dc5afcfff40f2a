package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// Tenant store kinds (TENANT_STORE).
const (
	storeMemory = "memory"
	storeDB     = "db"
)

// Config is the service's configuration, read from the environment. Only
// the example reads environment variables; the library packages take
// Config structs.
type Config struct {
	// Port is the HTTP port (PORT). Default 8000.
	Port int
	// DataDir holds the SQLite files when DatabaseURL is empty (DATA_DIR):
	// one per tenant, plus _migrations.db and, with TENANT_STORE=db,
	// _tenants.db. Default ./data/notekeeper.
	DataDir string
	// DatabaseURL is the PostgreSQL DSN the requests use (DATABASE_URL).
	// Empty: embedded SQLite under DataDir. Default empty.
	DatabaseURL string
	// MigrationDatabaseURL is the DSN that migrations, provisioning and the
	// tenant store use (MIGRATION_DATABASE_URL): a role that may create
	// tables and roles. Default DatabaseURL.
	MigrationDatabaseURL string
	// RedisURL enables the shared tenant cache and cross-instance
	// invalidation (REDIS_URL). Empty: in-process cache only. Default empty.
	RedisURL string
	// RedisPrefix starts every Redis key the service writes (REDIS_PREFIX),
	// so several services may share one Redis. Default "notekeeper:".
	RedisPrefix string
	// TenantStore is "memory" or "db" (TENANT_STORE). Default "memory".
	TenantStore string
	// MigrateOnStart runs the migrations at start (MIGRATE_ON_START).
	// Default true.
	MigrateOnStart bool
	// RateLimitPerMinute caps each tenant's requests per minute
	// (RATE_LIMIT_PER_MINUTE). Zero: no limit. Default zero.
	RateLimitPerMinute int
	// SeedDemo provisions the demo tenants acme-corp and globex
	// (SEED_DEMO), once: a persisted tenant store remembers that it did, so
	// that a demo tenant deleted or purged later is not created again.
	// Default true with the in-memory tenant store or the embedded SQLite,
	// false on PostgreSQL with TENANT_STORE=db.
	SeedDemo bool
	// LogLevel is debug, info, warn or error (LOG_LEVEL). Default info.
	LogLevel slog.Level
	// LogFormat is text or json (LOG_FORMAT). Default text.
	LogFormat string
}

// Postgres reports whether the service runs on PostgreSQL.
func (c Config) Postgres() bool { return c.DatabaseURL != "" }

// loadConfig reads the configuration through getenv (os.Getenv in main).
func loadConfig(getenv func(string) string) (Config, error) {
	env := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		DataDir:     env("DATA_DIR", "./data/notekeeper"),
		DatabaseURL: env("DATABASE_URL", ""),
		RedisURL:    env("REDIS_URL", ""),
		RedisPrefix: env("REDIS_PREFIX", "notekeeper:"),
		TenantStore: env("TENANT_STORE", storeMemory),
		LogFormat:   env("LOG_FORMAT", "text"),
	}
	c.MigrationDatabaseURL = env("MIGRATION_DATABASE_URL", c.DatabaseURL)
	var errs []error
	var err error
	if c.Port, err = strconv.Atoi(env("PORT", "8000")); err != nil || c.Port < 0 || c.Port > 65535 {
		errs = append(errs, errors.New("PORT must be a port number"))
	}
	if c.MigrateOnStart, err = strconv.ParseBool(env("MIGRATE_ON_START", "true")); err != nil {
		errs = append(errs, errors.New("MIGRATE_ON_START must be true or false"))
	}
	if v := env("RATE_LIMIT_PER_MINUTE", ""); v != "" {
		if c.RateLimitPerMinute, err = strconv.Atoi(v); err != nil || c.RateLimitPerMinute < 0 {
			errs = append(errs, errors.New("RATE_LIMIT_PER_MINUTE must be a whole number of requests, 0 for no limit"))
		}
	}
	if c.TenantStore != storeMemory && c.TenantStore != storeDB {
		errs = append(errs, errors.New("TENANT_STORE must be memory or db"))
	}
	c.SeedDemo = !(c.DatabaseURL != "" && c.TenantStore == storeDB)
	if v := env("SEED_DEMO", ""); v != "" {
		if c.SeedDemo, err = strconv.ParseBool(v); err != nil {
			errs = append(errs, errors.New("SEED_DEMO must be true or false"))
		}
	}
	if err := c.LogLevel.UnmarshalText([]byte(env("LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, errors.New("LOG_LEVEL must be debug, info, warn or error"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, errors.New("LOG_FORMAT must be text or json"))
	}
	if c.DatabaseURL == "" && getenv("MIGRATION_DATABASE_URL") != "" {
		errs = append(errs, errors.New("MIGRATION_DATABASE_URL needs DATABASE_URL"))
	}
	// Only what the user set is named: MIGRATION_DATABASE_URL defaulted
	// from a bad DATABASE_URL is the same mistake, reported once.
	for _, name := range []string{"DATABASE_URL", "MIGRATION_DATABASE_URL"} {
		if v := strings.TrimSpace(getenv(name)); v != "" && !isPostgresURL(v) {
			errs = append(errs, fmt.Errorf("%s must be a postgres:// or postgresql:// URL", name))
		}
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		errs = append(errs, errors.New("REDIS_URL must be a redis:// or rediss:// URL"))
	}
	if c.DataDir == "" || strings.ContainsRune(c.DataDir, '?') {
		errs = append(errs, errors.New("DATA_DIR must be a directory path without '?'"))
	}
	if len(errs) > 0 {
		// One line each, every one saying what it is about.
		for i, e := range errs {
			errs[i] = fmt.Errorf("configuration: %w", e)
		}
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

// isPostgresURL checks the scheme only: the error message must not repeat
// the URL, which may hold a password.
func isPostgresURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql")
}
