package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/examples/invoicer/billing"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// handlerConfig is what the HTTP layer needs; app.go fills it from the
// environment, the unit tests with in-memory parts.
type handlerConfig struct {
	// Billing keeps customers and invoices. Required.
	Billing billing.Store
	// Tenants finds tenants by identifier, alias and verified custom
	// domain (the cached tenant store). Required.
	Tenants resolve.HostLookup
	// BaseDomain is the domain tenants get subdomains of. Default
	// "localhost".
	BaseDomain string
	// HeaderFallback accepts X-Tenant-ID besides the host; see
	// Config.HeaderFallback. Default false.
	HeaderFallback bool
	// TrustedProxies are the peers whose X-Forwarded-Host is read. Default
	// none.
	TrustedProxies []netip.Prefix
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
}

// newHandler returns the whole HTTP service: the examples' handler chain
// (see service.NewHandler) around the billing API, with the tenant named by
// the request's host (newResolver).
func newHandler(cfg handlerConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BaseDomain == "" {
		cfg.BaseDomain = "localhost"
	}
	return service.NewHandler(service.HandlerConfig{
		Resolver:   newResolver(cfg),
		Identifier: identifier(cfg.BaseDomain, cfg.HeaderFallback),
		API:        invoicerAPI(&billingAPI{store: cfg.Billing, logger: cfg.Logger}, cfg.HeaderFallback),
		Ready:      cfg.Ready,
		Limiter:    cfg.Limiter,
		Registry:   cfg.Registry,
		Metrics:    cfg.Metrics,
		Logger:     cfg.Logger,

		TracerProvider: cfg.TracerProvider,
	})
}

// newResolver finds a request's tenant by its host: a subdomain of the base
// domain names a tenant's identifier or alias (acme.localhost), any other
// host a verified custom domain. X-Forwarded-Host is read from trusted
// proxies only. With the header fallback, X-Tenant-ID names the tenant
// where the host names none (localhost:8000, 127.0.0.1:8000), and a request
// whose host and header name different tenants is refused (403): neither
// wins silently.
func newResolver(cfg handlerConfig) resolve.Resolver {
	host := resolve.Host{BaseDomain: cfg.BaseDomain, TrustedProxies: cfg.TrustedProxies, Lookup: cfg.Tenants}
	if !cfg.HeaderFallback {
		return host
	}
	return resolve.Chain(host, resolve.Header{Lookup: cfg.Tenants})
}

// identifier returns what a request asked for as its tenant, for the access
// log of a refused request: the label under the base domain, else the
// header (when accepted). The service logs it only when it is a valid
// identifier.
func identifier(base string, header bool) func(*http.Request) string {
	return func(r *http.Request) string {
		h := r.Host
		if name, _, err := net.SplitHostPort(h); err == nil {
			h = name
		}
		if label, ok := strings.CutSuffix(strings.ToLower(h), "."+base); ok && !strings.Contains(label, ".") {
			return label
		}
		if header {
			return r.Header.Get(resolve.DefaultHeader)
		}
		return ""
	}
}
