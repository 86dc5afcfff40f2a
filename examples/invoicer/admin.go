package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/examples/internal/service"
)

// openAdminEnv opens the backend for one admin command. The command reports
// every outcome itself, so the library's own log lines are dropped.
func openAdminEnv(ctx context.Context, cfg Config, c admin.Connect) (*admin.Env, error) {
	if c.DatabaseURL != cfg.DatabaseURL {
		// --database-url names another database: use it for everything.
		if c.DatabaseURL != "" && !service.IsPostgresURL(c.DatabaseURL) {
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
	if cfg.TenantStore == service.StoreMemory && cfg.SeedDemo {
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
		BaseDomain: cfg.BaseDomain,
		Persistent: cfg.TenantStore == service.StoreDB,
		Lifecycle:  b.lifecycle,
		Migrator:   b.migrator,
		Doctor:     b.doctor,
		Close:      b.close,
	}, nil
}
