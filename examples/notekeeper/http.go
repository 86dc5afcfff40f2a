package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// handlerConfig is what the HTTP layer needs; app.go fills it from the
// environment, the unit tests with in-memory parts.
type handlerConfig struct {
	// Notes keeps the notes. Required.
	Notes NoteStore
	// Tenants finds tenants by identifier (the cached tenant store). Required.
	Tenants resolve.Lookup
	// Ready reports whether the database is reachable. Default: always.
	Ready func(context.Context) error
	// Limiter limits request rates per tenant. Nil: no limit.
	Limiter *limit.Limiter
	// Registry is served on /metrics. Default: a new registry.
	Registry *prometheus.Registry
	// Metrics counts the tenancy middleware's resolutions; it should count
	// into Registry. Nil: nothing is counted.
	Metrics *promtenancy.Metrics
	// Logger logs requests and failures. Default slog.Default().
	Logger *slog.Logger
	// TracerProvider traces requests. Nil: no tracing.
	TracerProvider trace.TracerProvider
	// RequestTimeout and MaxBodyBytes: see service.HandlerConfig.
	RequestTimeout time.Duration
	MaxBodyBytes   int64
}

// newHandler returns the whole HTTP service: the examples' handler chain
// (see service.NewHandler) around the notes API, with the tenant named by
// the X-Tenant-ID header.
func newHandler(cfg handlerConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return service.NewHandler(service.HandlerConfig{
		Resolver: resolve.Header{Lookup: cfg.Tenants},
		API:      notekeeperAPI(&notesAPI{notes: cfg.Notes, logger: cfg.Logger}),
		Ready:    cfg.Ready,
		Limiter:  cfg.Limiter,
		Registry: cfg.Registry,
		Metrics:  cfg.Metrics,
		Logger:   cfg.Logger,

		TracerProvider: cfg.TracerProvider,
		RequestTimeout: cfg.RequestTimeout,
		MaxBodyBytes:   cfg.MaxBodyBytes,
	})
}
