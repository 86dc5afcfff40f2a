package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `Usage:
  notekeeper [serve]    start the HTTP service (the default)
  notekeeper <command>  run an admin command (listed below)

Configuration comes from the environment: PORT, DATA_DIR, DATABASE_URL,
MIGRATION_DATABASE_URL, REDIS_URL, REDIS_PREFIX, TENANT_STORE,
MIGRATE_ON_START, RATE_LIMIT_PER_MINUTE, LOG_LEVEL, LOG_FORMAT (see README.md).
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "notekeeper:", err)
		return 2
	}
	logger := newLogger(cfg, stderr)
	if len(args) > 0 {
		switch {
		case args[0] == "serve" && len(args) == 1:
		case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
			fmt.Fprint(stdout, usage+"\n")
			return runAdmin(ctx, cfg, args, getenv, stdout, stderr)
		case admin.IsCommand(args[0]):
			return runAdmin(ctx, cfg, args, getenv, stdout, stderr)
		default:
			fmt.Fprint(stderr, usage)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("notekeeper stopped", slog.Any("error", err))
		return 1
	}
	return 0
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
	b, err := openBackend(ctx, cfg, backendOptions{Logger: logger, Metrics: metrics})
	if err != nil {
		return err
	}
	defer b.close()
	if cfg.MigrateOnStart {
		if err := b.migrateAll(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
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
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
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
