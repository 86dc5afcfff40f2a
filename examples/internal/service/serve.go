package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewLogger logs to w at cfg.LogLevel, as text or JSON (cfg.LogFormat),
// adding tenant_id and tenant to every line logged with a request's context.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(tenancy.NewLogHandler(h))
}

// NewRegistry returns a registry for /metrics with the Go runtime and
// process collectors, to which the library's metrics are added.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Listen takes the port on every interface. Take it before migrating or
// seeding, so that a busy port is reported before anything changes;
// connections wait in the backlog until Serve.
func Listen(port int) (net.Listener, error) {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("listen on port %d: %w", port, errors.Unwrap(err))
	}
	return ln, nil
}

// ShutdownTimeout bounds how long in-flight requests may finish once the
// context of Serve ends.
const ShutdownTimeout = DefaultShutdownTimeout

// Defaults of ServerConfig.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultShutdownTimeout   = 10 * time.Second
)

// ServerConfig holds the HTTP server's timeouts. A zero field takes its
// default; there is no "none", since a server without them can be held
// open by slow clients.
type ServerConfig struct {
	// ReadHeaderTimeout bounds reading a request's headers
	// (READ_HEADER_TIMEOUT). Default DefaultReadHeaderTimeout (5s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included
	// (READ_TIMEOUT). Default DefaultReadTimeout (30s).
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of the request headers to
	// the end of the response (WRITE_TIMEOUT); keep it above the request
	// timeout. Default DefaultWriteTimeout (30s).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long
	// (IDLE_TIMEOUT). Default DefaultIdleTimeout (2m).
	IdleTimeout time.Duration
	// ShutdownTimeout is the grace period in-flight requests get to finish
	// once shutdown begins (SHUTDOWN_TIMEOUT); those still running then are
	// cut off. Default DefaultShutdownTimeout (10s).
	ShutdownTimeout time.Duration
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Serve serves h on ln until ctx ends, then shuts down gracefully: new
// connections are refused, and requests in flight get ShutdownTimeout to
// finish. It returns nil after a clean shutdown. It is ServeWith with the
// default ServerConfig.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	return ServeWith(ctx, ln, h, logger, ServerConfig{})
}

// ServeWith serves h on ln until ctx ends, with the timeouts of sc, then
// shuts down gracefully: the listener closes (new connections are
// refused), idle connections close, and requests in flight get
// sc.ShutdownTimeout to finish. It returns nil after a clean shutdown, and
// an error when requests were still running at the end of the grace
// period.
func ServeWith(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger, sc ServerConfig) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: orDefault(sc.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(sc.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      orDefault(sc.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDefault(sc.IdleTimeout, DefaultIdleTimeout),
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDefault(sc.ShutdownTimeout, DefaultShutdownTimeout))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// The grace period is over: cut off what is still running.
		_ = srv.Close()
		return fmt.Errorf("shutdown: requests still running after the grace period: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
