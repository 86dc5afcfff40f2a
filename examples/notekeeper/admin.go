package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/go-tenancy/tenancy/admin"
)

// runAdmin runs an admin subcommand (tenants, migrate, doctor) on the same
// storage the server uses, so that, with TENANT_STORE=db, a tenant created
// here is served by a running server at once.
func runAdmin(ctx context.Context, cfg Config, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	app := &admin.App{
		Name:   "notekeeper",
		Open:   func(ctx context.Context, c admin.Connect) (*admin.Env, error) { return openAdminEnv(ctx, cfg, c) },
		Stdout: stdout,
		Stderr: stderr,
		Getenv: getenv,
	}
	return app.Run(ctx, args)
}

// openAdminEnv opens the backend for one admin command. The command reports
// every outcome itself, so the library's own log lines are dropped.
func openAdminEnv(ctx context.Context, cfg Config, c admin.Connect) (*admin.Env, error) {
	if c.DatabaseURL != cfg.DatabaseURL {
		// --database-url names another database: use it for everything.
		if c.DatabaseURL != "" && !isPostgresURL(c.DatabaseURL) {
			return nil, errors.New("--database-url must be a postgres:// or postgresql:// URL")
		}
		cfg.DatabaseURL, cfg.MigrationDatabaseURL = c.DatabaseURL, c.DatabaseURL
	}
	cfg.RedisURL = c.RedisURL
	b, err := openBackend(ctx, cfg, backendOptions{
		Logger:             slog.New(slog.DiscardHandler),
		MigrateConcurrency: c.Concurrency,
		ReadOnly:           c.ReadOnly,
	})
	if err != nil {
		return nil, err
	}
	if cfg.TenantStore == storeMemory && cfg.SeedDemo {
		// A server's in-memory store holds exactly the seeds, active: show
		// them, so that list, show and migrate mean what they say. Writes
		// are refused (Persistent is false).
		for _, s := range seedTenants {
			if _, err := b.tenants.Create(ctx, &s); err != nil {
				b.close()
				return nil, err
			}
		}
	}
	return &admin.Env{
		Store:      b.tenants,
		Persistent: cfg.TenantStore == storeDB,
		Lifecycle:  b.lifecycle,
		Migrator:   b.migrator,
		Doctor:     b.doctor,
		Close:      b.close,
	}, nil
}
