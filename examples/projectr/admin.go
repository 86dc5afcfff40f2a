package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/spf13/cobra"
)

// openAdminEnv opens the backend for one admin command. The command reports
// every outcome itself, so the library's own log lines are dropped. River's
// tables are migrated with the rest by every command that may change
// anything (migrate among them).
func openAdminEnv(ctx context.Context, cfg Config, c admin.Connect) (*admin.Env, error) {
	if c.DatabaseURL != cfg.DatabaseURL {
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
		for _, s := range seedTenants {
			if _, err := b.tenants.Create(ctx, &s); err != nil {
				b.close()
				return nil, err
			}
		}
	}
	return &admin.Env{
		Store:      b.tenants,
		Persistent: cfg.TenantStore == service.StoreDB,
		Lifecycle:  b.lifecycle,
		Migrator:   b.migrator,
		Doctor:     b.doctor,
		Mover:      b.mover(),
		Close:      b.close,
	}, nil
}

// secretsCmd returns the secrets command: set, rotate and revoke a
// tenant's client secret. A new secret is printed once, on stdout, and
// stored only hashed.
func secretsCmd(ctx context.Context, config func() (Config, error), getenv func(string) string, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Set, rotate or revoke a tenant's client secret for POST /auth/token",
	}
	open := func(identifier string) (*backend, *tenancy.Tenant, error) {
		if err := tenancy.ValidateIdentifier(identifier); err != nil {
			return nil, nil, admin.UsageError(err)
		}
		cfg, err := config()
		if err != nil {
			return nil, nil, err
		}
		if cfg.TenantStore != service.StoreDB {
			return nil, nil, admin.UsageError(errors.New("secrets need TENANT_STORE=db: a secret set in this process's memory could never reach a server"))
		}
		cfg.RedisURL = getenv("REDIS_URL")
		b, err := openBackend(ctx, cfg, backendOptions{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, nil, err
		}
		t, err := b.tenants.GetByIdentifier(ctx, identifier)
		if err != nil {
			b.close()
			return nil, nil, err
		}
		return b, t, nil
	}
	set := &cobra.Command{
		Use:   "set IDENTIFIER",
		Short: "Give the tenant a new secret and revoke every other at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, t, err := open(args[0])
			if err != nil {
				return err
			}
			defer b.close()
			plain, _, err := b.auth.Set(ctx, t)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, plain)
			return err
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate IDENTIFIER",
		Short: "Give the tenant a new secret; the others stay valid for 24 hours",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, t, err := open(args[0])
			if err != nil {
				return err
			}
			defer b.close()
			plain, _, err := b.auth.Rotate(ctx, t)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, plain)
			return err
		},
	}
	var id string
	revoke := &cobra.Command{
		Use:   "revoke IDENTIFIER [--id SECRET_ID]",
		Short: "Revoke one of the tenant's secrets, or all of them",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, t, err := open(args[0])
			if err != nil {
				return err
			}
			defer b.close()
			if err := b.auth.Revoke(ctx, t, id); err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "revoked %s's secrets\n", t.Identifier)
			return err
		},
	}
	revoke.Flags().StringVar(&id, "id", "", "the secret's ID (its 16 hex digits after tcs_); default all")
	cmd.AddCommand(set, rotate, revoke)
	return cmd
}
