package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/go-tenancy/tenancy"
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
	// Projects keeps the tenants' data. Required.
	Projects Store
	// Projects' quota, for GET /tenant's limits. Required.
	Quota quotaLimits
	// Isolation names the strategy of a tenant's data. Required.
	Isolation func(t *tenancy.Tenant) string
	// Tenants finds tenants by identifier. Required.
	Tenants resolve.Lookup
	// Verifier verifies access tokens. Required.
	Verifier resolve.TokenVerifier
	// Token serves POST /auth/token. Required.
	Token *authAPI
	// Ready reports whether the database is reachable. Default: always.
	Ready func(context.Context) error
	// Limiter limits the API's request rates per tenant. Nil: no limit.
	Limiter *limit.Limiter
	// Registry is served on /metrics. Default: a new registry.
	Registry *prometheus.Registry
	// Metrics counts resolutions and requests. Nil: nothing.
	Metrics *promtenancy.Metrics
	// Logger logs requests and failures. Default slog.Default().
	Logger *slog.Logger
	// TracerProvider traces requests. Nil: no tracing.
	TracerProvider trace.TracerProvider
}

// newHandler returns the whole HTTP service: the examples' handler chain
// (see service.NewHandler) around Projectr's API. The tenant comes from
// the bearer token only; an X-Tenant-ID header naming another tenant is
// refused (403), never followed.
func newHandler(cfg handlerConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Token.logger = cfg.Logger
	p := &projectsAPI{store: cfg.Projects, quota: cfg.Quota, isolation: cfg.Isolation, logger: cfg.Logger}
	return service.NewHandler(service.HandlerConfig{
		Resolver: resolve.Chain(
			resolve.JWT{Verifier: cfg.Verifier, Lookup: cfg.Tenants},
			resolve.Header{Lookup: cfg.Tenants},
		),
		API:         projectrAPI(p, cfg.Token),
		PublicPaths: []string{"POST /auth/token"},
		Ready:       cfg.Ready,
		Limiter:     cfg.Limiter,
		Registry:    cfg.Registry,
		Metrics:     cfg.Metrics,
		Logger:      cfg.Logger,

		TracerProvider: cfg.TracerProvider,
	})
}
