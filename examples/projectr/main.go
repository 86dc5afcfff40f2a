package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code. The command
// line is the admin CLI's (package admin) with Projectr's own commands:
// serve (the default), secrets, healthcheck and openapi.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	config := func() (Config, error) {
		cfg, err := loadConfig(getenv)
		if err != nil {
			return Config{}, admin.UsageError(err)
		}
		return cfg, nil
	}
	app := &admin.App{
		Name:  "projectr",
		Short: "a multi-tenant project-management service (run with no command to serve)",
		Open: func(ctx context.Context, c admin.Connect) (*admin.Env, error) {
			cfg, err := config()
			if err != nil {
				return nil, err
			}
			return openAdminEnv(ctx, cfg, c)
		},
		Setup: func(c admin.Connect) (postgres.SetupConfig, error) {
			cfg, err := config()
			if err != nil {
				return postgres.SetupConfig{}, err
			}
			return admin.SetupFromURLs(c.DatabaseURL, cfg.MigrationDatabaseURL)
		},
		Commands: []*cobra.Command{
			serveCmd(ctx, config, stderr),
			secretsCmd(ctx, config, getenv, stdout),
			service.HealthcheckCommand(getenv, stdout),
			service.OpenAPICommand(stdout, projectrAPI(&projectsAPI{}, &authAPI{})),
		},
		Default: "serve",
		Stdout:  stdout,
		Stderr:  stderr,
		Getenv:  getenv,
	}
	return app.Run(ctx, args)
}

// serveLong is the serve command's help.
const serveLong = `Start the HTTP service. Configuration comes from the environment: PORT,
DATA_DIR, DATABASE_URL, MIGRATION_DATABASE_URL, REDIS_URL, REDIS_PREFIX,
TENANT_STORE, MIGRATE_ON_START, SEED_DEMO, RATE_LIMIT_PER_MINUTE,
AUTH_RATE_LIMIT_PER_MINUTE, JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE,
JWT_TTL_SECONDS, CACHE_TTL, JOB_WORKERS, LOG_LEVEL, LOG_FORMAT and the OpenTelemetry
variables (see README.md).`

func serveCmd(ctx context.Context, config func() (Config, error), stderr io.Writer) *cobra.Command {
	return service.ServeCommand(ctx, serveLong, func(ctx context.Context) error {
		cfg, err := config()
		if err != nil {
			return err
		}
		return serve(ctx, cfg, service.NewLogger(cfg.Config, stderr), backendOptions{})
	})
}

// serve runs the service until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg Config, logger *slog.Logger, opts backendOptions) error {
	reg := service.NewRegistry()
	metrics, err := promtenancy.New(promtenancy.Config{Registerer: reg})
	if err != nil {
		return err
	}
	ln, err := service.Listen(cfg.Port)
	if err != nil {
		return err
	}
	defer ln.Close()
	var tp trace.TracerProvider
	if cfg.Tracing {
		sdk, err := service.NewTracerProvider(ctx, cfg.Config)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := sdk.Shutdown(sctx); err != nil {
				logger.Warn("flush traces", slog.Any("error", err))
			}
		}()
		tp = sdk
	}
	opts.Logger, opts.Metrics = logger, metrics
	b, err := openBackend(ctx, cfg, opts)
	if err != nil {
		return err
	}
	defer b.close()
	if cfg.MigrateOnStart {
		if err := service.MigrateAll(ctx, b.migrator, b.logger); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	if err := b.seed(ctx); err != nil {
		return err
	}
	stopJobs, err := b.startJobs(ctx)
	if err != nil {
		return err
	}
	defer stopJobs()

	h := newHandler(handlerConfig{
		Projects:  b.projects,
		Quota:     b.quota,
		Isolation: b.isolationOf,
		Tenants:   b.tenants,
		Verifier:  b.verifier,
		Token:     &authAPI{auth: b.auth, signer: b.signer, limiter: b.authLimit},
		Ready: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return b.ready(ctx)
		},
		Limiter:        b.limiter,
		Registry:       reg,
		Metrics:        metrics,
		Logger:         logger,
		TracerProvider: tp,
	})
	storage := "sqlite"
	if cfg.Postgres() {
		storage = "postgres (hybrid: enterprise schema, starter rls)"
	}
	logger.Info("projectr listening",
		slog.String("addr", ln.Addr().String()),
		slog.String("storage", storage),
		slog.String("tenant_store", cfg.TenantStore),
		slog.Bool("redis", cfg.RedisURL != ""),
		slog.Bool("rate_limit", cfg.RateLimitPerMinute > 0),
		slog.Int("auth_rate_limit_per_minute", cfg.AuthRatePerMinute),
		slog.Duration("cache_ttl", cfg.CacheTTL),
		slog.Bool("tracing", cfg.Tracing))
	return service.Serve(ctx, ln, h, logger)
}

// isolationOf names the strategy that keeps t's data.
func (b *backend) isolationOf(t *tenancy.Tenant) string {
	if b.hybrid == nil {
		return "file"
	}
	return string(b.hybrid.Strategy(t))
}
