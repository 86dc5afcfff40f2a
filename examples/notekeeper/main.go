package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

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
// line is the admin CLI's (package admin) with Notekeeper's own commands:
// serve (the default), healthcheck and openapi.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	config := func() (Config, error) {
		cfg, err := loadConfig(getenv)
		if err != nil {
			return Config{}, admin.UsageError(err)
		}
		return cfg, nil
	}
	app := &admin.App{
		Name:  "notekeeper",
		Short: "a multi-tenant note-taking service (run with no command to serve)",
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
			return cfg.SetupConfig(c.DatabaseURL)
		},
		Commands: []*cobra.Command{
			serveCmd(ctx, config, stderr),
			service.HealthcheckCommand(getenv, stdout),
			service.OpenAPICommand(stdout, notekeeperAPI(&notesAPI{})),
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
TENANT_STORE, MIGRATE_ON_START, SEED_DEMO, RATE_LIMIT_PER_MINUTE, LOG_LEVEL,
LOG_FORMAT, DATABASE_POOLER, REQUEST_TIMEOUT, STATEMENT_TIMEOUT,
MAX_BODY_BYTES, READ_HEADER_TIMEOUT, READ_TIMEOUT, WRITE_TIMEOUT,
IDLE_TIMEOUT, SHUTDOWN_TIMEOUT and the OpenTelemetry variables (see
README.md).`

func serveCmd(ctx context.Context, config func() (Config, error), stderr io.Writer) *cobra.Command {
	return service.ServeCommand(ctx, serveLong, func(ctx context.Context) error {
		cfg, err := config()
		if err != nil {
			return err
		}
		return serve(ctx, cfg, service.NewLogger(cfg, stderr))
	})
}

// serve runs the service until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg Config, logger *slog.Logger) error {
	reg := service.NewRegistry()
	metrics, err := promtenancy.New(promtenancy.Config{Registerer: reg})
	if err != nil {
		return err
	}
	// The port first: a busy one is reported before anything is migrated
	// or seeded.
	ln, err := service.Listen(cfg.Port)
	if err != nil {
		return err
	}
	defer ln.Close()
	var tp trace.TracerProvider
	if cfg.Tracing {
		sdk, err := service.NewTracerProvider(ctx, cfg)
		if err != nil {
			return err
		}
		defer func() {
			// Flush the spans still buffered, however the server ended.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := sdk.Shutdown(sctx); err != nil {
				logger.Warn("flush traces", slog.Any("error", err))
			}
		}()
		tp = sdk
	}
	b, err := openBackend(ctx, cfg, backendOptions{Logger: logger, Metrics: metrics, TracerProvider: tp})
	if err != nil {
		return err
	}
	defer b.close()
	if cfg.MigrateOnStart {
		if err := service.MigrateAll(ctx, b.migrator, b.logger); err != nil {
			return b.cfg.NeedsOwner(fmt.Errorf("migrate: %w", err))
		}
	}
	if err := b.seed(ctx); err != nil {
		return err
	}

	h := newHandler(handlerConfig{
		Notes:   b.notes,
		Tenants: b.tenants,
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
		RequestTimeout: cfg.RequestTimeout,
		MaxBodyBytes:   cfg.MaxBodyBytes,
	})
	storage := "sqlite"
	if cfg.Postgres() {
		storage = "postgres"
	}
	logger.Info("notekeeper listening",
		slog.String("addr", ln.Addr().String()),
		slog.String("storage", storage),
		slog.String("tenant_store", cfg.TenantStore),
		slog.Bool("redis", cfg.RedisURL != ""),
		slog.Bool("rate_limit", cfg.RateLimitPerMinute > 0),
		slog.Bool("tracing", cfg.Tracing),
		slog.String("pooler", cfg.Pooler.String()),
		slog.Duration("request_timeout", cfg.RequestTimeout),
		slog.Duration("statement_timeout", cfg.StatementTimeout))
	return service.ServeWith(ctx, ln, h, logger, cfg.Server)
}
