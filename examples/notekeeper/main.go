package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
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
			return setupConfig(cfg, c.DatabaseURL)
		},
		Commands: []*cobra.Command{
			serveCmd(ctx, config, stderr),
			healthcheckCmd(getenv, stdout),
			openapiCmd(stdout),
		},
		Default: "serve",
		Stdout:  stdout,
		Stderr:  stderr,
		Getenv:  getenv,
	}
	return app.Run(ctx, args)
}

// noArgs refuses arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return admin.UsageError(fmt.Errorf("%s: unexpected argument %q (usage: %s)", cmd.Name(), args[0], cmd.UseLine()))
	}
	return nil
}

func serveCmd(ctx context.Context, config func() (Config, error), stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "start the HTTP service (the default)",
		Long: `Start the HTTP service. Configuration comes from the environment: PORT,
DATA_DIR, DATABASE_URL, MIGRATION_DATABASE_URL, REDIS_URL, REDIS_PREFIX,
TENANT_STORE, MIGRATE_ON_START, SEED_DEMO, RATE_LIMIT_PER_MINUTE, LOG_LEVEL,
LOG_FORMAT and the OpenTelemetry variables (see README.md).`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := config()
			if err != nil {
				return err
			}
			logger := newLogger(cfg, stderr)
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				// After the first signal, a second one ends the process at once.
				<-ctx.Done()
				stop()
			}()
			return serve(ctx, cfg, logger)
		},
	}
}

// healthcheckCmd asks a running server whether it is ready: the image has
// no curl, so Docker's healthcheck runs the binary itself.
func healthcheckCmd(getenv func(string) string, stdout io.Writer) *cobra.Command {
	var (
		url     string
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "exit 0 when the server on PORT answers GET /readyz with 200",
		Long: `Ask the server on this machine whether it is ready: GET /readyz on
127.0.0.1:$PORT (default 8000) must answer 200 in time. For container
healthchecks, since the image has no shell and no curl.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				port := strings.TrimSpace(getenv("PORT"))
				if port == "" {
					port = "8000"
				}
				url = "http://127.0.0.1:" + port + "/readyz"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return admin.UsageError(errors.New("healthcheck: --url must be an http:// URL"))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck: %s answered %s", req.URL.Path, resp.Status)
			}
			fmt.Fprintln(stdout, "ok")
			return nil
		},
	}
	c.Flags().StringVar(&url, "url", "", "`URL` to check (default http://127.0.0.1:$PORT/readyz)")
	c.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return c
}

// openapiCmd prints the API's OpenAPI document, as /openapi.json serves it.
func openapiCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "openapi",
		Short: "print the OpenAPI 3.1 document of the API",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			api := newHumaAPI(http.NewServeMux(), &notesAPI{})
			b, err := json.MarshalIndent(api.OpenAPI(), "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		},
	}
}

// newLogger logs to w, adding tenant_id and tenant to every line logged
// with a request's context.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(tenancy.NewLogHandler(h))
}

// newRegistry returns the registry /metrics serves: the Go runtime and
// process collectors, to which the library's metrics are added.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// shutdownTimeout bounds how long in-flight requests may finish after
// SIGINT or SIGTERM.
const shutdownTimeout = 10 * time.Second

// serve runs the service until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg Config, logger *slog.Logger) error {
	reg := newRegistry()
	metrics, err := promtenancy.New(promtenancy.Config{Registerer: reg})
	if err != nil {
		return err
	}
	// The port first: a busy one is reported before anything is migrated
	// or seeded. Connections wait in the backlog until Serve.
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", cfg.Port, errors.Unwrap(err))
	}
	defer ln.Close()
	b, err := openBackend(ctx, cfg, backendOptions{Logger: logger, Metrics: metrics})
	if err != nil {
		return err
	}
	defer b.close()
	if cfg.MigrateOnStart {
		if err := b.migrateAll(ctx); err != nil {
			return b.needsOwner(fmt.Errorf("migrate: %w", err))
		}
	}
	if err := b.seed(ctx); err != nil {
		return err
	}

	srv := &http.Server{
		Handler: newHandler(handlerConfig{
			Notes:   b.notes,
			Tenants: b.tenants,
			Ready: func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				return b.ready(ctx)
			},
			Limiter:  b.limiter,
			Registry: reg,
			Metrics:  metrics,
			Logger:   logger,
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	storage := "sqlite"
	if cfg.Postgres() {
		storage = "postgres"
	}
	logger.Info("notekeeper listening",
		slog.String("addr", ln.Addr().String()),
		slog.String("storage", storage),
		slog.String("tenant_store", cfg.TenantStore),
		slog.Bool("redis", cfg.RedisURL != ""),
		slog.Bool("rate_limit", cfg.RateLimitPerMinute > 0))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
