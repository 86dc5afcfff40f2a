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
// line is the admin CLI's (package admin) with Invoicer's own commands:
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
		Name:  "invoicer",
		Short: "a multi-tenant invoicing service (run with no command to serve)",
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
			openAPICommand(getenv, stdout),
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
TENANT_STORE, MIGRATE_ON_START, SEED_DEMO, SEED_DEMO_DATA, BASE_DOMAIN,
HEADER_FALLBACK, TRUSTED_PROXIES, RATE_LIMIT_PER_MINUTE, LOG_LEVEL, LOG_FORMAT
and the OpenTelemetry variables (see README.md).`

func serveCmd(ctx context.Context, config func() (Config, error), stderr io.Writer) *cobra.Command {
	return service.ServeCommand(ctx, serveLong, func(ctx context.Context) error {
		cfg, err := config()
		if err != nil {
			return err
		}
		return serve(ctx, cfg, service.NewLogger(cfg.Config, stderr))
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
		sdk, err := service.NewTracerProvider(ctx, cfg.Config)
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
		Billing:        b.billing,
		Tenants:        b.tenants,
		BaseDomain:     cfg.BaseDomain,
		HeaderFallback: cfg.HeaderFallback,
		TrustedProxies: cfg.TrustedProxies,
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
		storage = "postgres"
	}
	logger.Info("invoicer listening",
		slog.String("addr", ln.Addr().String()),
		slog.String("storage", storage),
		slog.String("tenant_store", cfg.TenantStore),
		slog.String("base_domain", cfg.BaseDomain),
		slog.Bool("header_fallback", cfg.HeaderFallback),
		slog.Bool("redis", cfg.RedisURL != ""),
		slog.Bool("rate_limit", cfg.RateLimitPerMinute > 0),
		slog.Bool("tracing", cfg.Tracing))
	return service.Serve(ctx, ln, h, logger)
}

// openAPICommand prints the API description, with the X-Tenant-ID scheme
// when HEADER_FALLBACK allows it (the default).
func openAPICommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	header := service.NewEnv(getenv).Bool("HEADER_FALLBACK", true)
	return service.OpenAPICommand(stdout, invoicerAPI(&billingAPI{}, header))
}
