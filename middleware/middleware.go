// Package middleware resolves the tenant of every request, refuses requests
// whose tenant may not be served, and hands the rest to the next handler with
// the tenant in the request context (tenancy.FromContext) and, when the
// resolver verified a credential, its claims (tenancy.ClaimsFromContext, or
// typed: jwtauth.ClaimsFromContext for tokens). It is plain
// net/http (func(http.Handler) http.Handler), so it works under
// http.ServeMux, chi and anything else.
//
// Failures are answered as RFC 9457 problem details, mapped by the problem
// package: missing or malformed tenant 400, bad or missing token 401 (with
// WWW-Authenticate: Bearer), suspended or deleted tenant 403, conflicting
// sources 403, unknown tenant 404, provisioning or failed tenant 503 with
// Retry-After, anything else 500 (logged, detail withheld). No response
// echoes the request.
//
// With resolve.Path, the middleware must run before routing, because it
// rewrites the path the router sees ("/t/acme/notes" becomes "/notes"): wrap
// the whole http.ServeMux, or call Use on chi's root router (chi routes
// before the middleware of a Group or With runs). The request's URL is
// copied, never modified.
//
// Nothing is kept between requests: the tenant lives in the request's
// context only.
package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/go-tenancy/tenancy/resolve"
)

// DefaultRetryAfter is the Retry-After sent for tenants that are not ready.
const DefaultRetryAfter = 30 * time.Second

// Config configures the middleware.
type Config struct {
	// Resolver finds the tenant of a request. Required.
	Resolver resolve.Resolver
	// PublicPaths are http.ServeMux patterns ("GET /healthz", "/docs",
	// "/static/") of requests served without a tenant. They are matched by
	// an internal http.ServeMux exactly as ServeMux would route them: "/healthz"
	// is that path alone (not "/healthzfoo"), "/static/" is the whole subtree,
	// "GET /healthz" also admits HEAD, and a pattern may name a host. A
	// request ServeMux would redirect instead (an unclean path such as
	// "/x/../healthz", or "/docs" when only "/docs/" is listed) is not public.
	// Default none.
	PublicPaths []string
	// RetryAfter is the Retry-After sent for tenants that are provisioning or
	// failed. Default 30s.
	RetryAfter time.Duration
	// Logger logs store failures (500s). Default slog.Default().
	Logger *slog.Logger
	// Metrics counts resolutions by outcome; promtenancy.Metrics counts them
	// in Prometheus. Default nil: nothing is counted.
	Metrics Metrics
	// ErrorHandler writes a failed resolution. Default: problem.WriteError.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// Metrics receives the outcome of every tenant resolution. It is called on
// every request, so implementations must be safe for concurrent use and
// cheap: count, never block.
type Metrics interface {
	// Resolution is called once for every request that is not public, after
	// the tenant was resolved and its status checked: t is the tenant (nil
	// when none was resolved) and outcome one of the Outcome constants.
	Resolution(ctx context.Context, t *tenancy.Tenant, outcome string)
}

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) Resolution(context.Context, *tenancy.Tenant, string) {}

// Outcomes of a resolution, as passed to Metrics.
const (
	OutcomeOK              = "ok"
	OutcomeMissing         = "missing"
	OutcomeInvalid         = "invalid"
	OutcomeNotFound        = "not_found"
	OutcomeSuspended       = "suspended"
	OutcomeDeleted         = "deleted"
	OutcomeNotReady        = "not_ready"
	OutcomeConflict        = "conflict"
	OutcomeUnauthenticated = "unauthenticated"
	OutcomeError           = "error"
)

// New returns the middleware. It panics when cfg has no Resolver or when a
// public path is not a valid ServeMux pattern: programming errors, found at
// start-up.
func New(cfg Config) func(http.Handler) http.Handler {
	if cfg.Resolver == nil {
		panic("middleware: Config.Resolver is required")
	}
	m := &tenantMiddleware{
		resolver:   cfg.Resolver,
		retryAfter: cfg.RetryAfter,
		logger:     cfg.Logger,
		onError:    cfg.ErrorHandler,
		metrics:    cfg.Metrics,
	}
	if m.metrics == nil {
		m.metrics = noMetrics{}
	}
	if m.retryAfter <= 0 {
		m.retryAfter = DefaultRetryAfter
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	if m.onError == nil {
		m.onError = func(w http.ResponseWriter, _ *http.Request, err error) { problem.WriteError(w, err) }
	}
	if len(cfg.PublicPaths) > 0 {
		m.public = http.NewServeMux()
		for _, p := range cfg.PublicPaths {
			registerPublic(m.public, p)
			m.prefilter = append(m.prefilter, literalOf(p))
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.serve(next, w, r)
		})
	}
}

// publicHandler marks public patterns in the internal ServeMux. Only a
// match that returns it is public: ServeMux's redirect and 404/405 handlers
// are not.
type publicHandler struct{}

func (publicHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

func registerPublic(mux *http.ServeMux, pattern string) {
	defer func() {
		if v := recover(); v != nil {
			panic(fmt.Sprintf("middleware: public path %q: %v", pattern, v))
		}
	}()
	mux.Handle(pattern, publicHandler{})
}

type tenantMiddleware struct {
	resolver   resolve.Resolver
	public     *http.ServeMux
	prefilter  []literal
	retryAfter time.Duration
	logger     *slog.Logger
	onError    func(http.ResponseWriter, *http.Request, error)
	metrics    Metrics
}

// isPublic asks the internal ServeMux, but only for paths that could match
// one of its patterns: ServeMux.Handler allocates about ten times per call,
// which every tenant request would otherwise pay.
func (m *tenantMiddleware) isPublic(r *http.Request) bool {
	maybe := false
	for _, l := range m.prefilter {
		if l.exact && r.URL.Path == l.text || !l.exact && strings.HasPrefix(r.URL.Path, l.text) {
			maybe = true
			break
		}
	}
	if !maybe {
		return false
	}
	h, _ := m.public.Handler(r)
	_, ok := h.(publicHandler)
	return ok
}

// literal is the fixed start of a pattern's path: every path the pattern
// matches without a redirect is text itself (exact) or starts with it. A
// ServeMux match needs a clean path whose unescaped segments match the
// pattern's, so r.URL.Path (unescaped) starts with the literal too.
type literal struct {
	text  string
	exact bool
}

func literalOf(pattern string) literal {
	// "[METHOD ][HOST]/[PATH]": the path starts at the first '/'.
	i := strings.IndexByte(pattern, '/')
	if i < 0 || strings.IndexByte(pattern, '%') >= 0 {
		return literal{} // prefix "": always ask ServeMux
	}
	path := pattern[i:]
	if rest, ok := strings.CutSuffix(path, "{$}"); ok && !strings.Contains(rest, "{") {
		return literal{text: rest, exact: true}
	}
	if j := strings.IndexByte(path, '{'); j >= 0 {
		return literal{text: path[:j]}
	}
	return literal{text: path, exact: !strings.HasSuffix(path, "/")}
}

var errNilTenant = errors.New("middleware: resolver returned no tenant and no error")

func (m *tenantMiddleware) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	if m.public != nil && m.isPublic(r) {
		next.ServeHTTP(w, r)
		return
	}
	res, err := m.resolver.Resolve(r)
	if err == nil && res.Tenant == nil {
		err = errNilTenant
	}
	if err != nil {
		m.fail(w, r, nil, err)
		return
	}
	t := res.Tenant
	if err := t.CheckStatus(); err != nil {
		if errors.Is(err, tenancy.ErrTenantNotReady) {
			err = &tenancy.RetryAfterError{Err: err, After: m.retryAfter}
		}
		m.fail(w, r, t, fmt.Errorf("middleware: %w", err))
		return
	}
	m.metrics.Resolution(r.Context(), t, OutcomeOK)
	observe(r.Context(), t, OutcomeOK)

	ctx := tenancy.WithTenant(r.Context(), t)
	if res.Claims != nil {
		ctx = tenancy.WithClaims(ctx, res.Claims)
	}
	r = r.WithContext(ctx) // a shallow copy: r.URL is still the caller's
	if res.Path != "" {
		u := *r.URL
		u.Path, u.RawPath = res.Path, res.RawPath
		r.URL = &u
	}
	next.ServeHTTP(w, r)
}

// fail answers a refused request; t is the tenant when one was resolved.
func (m *tenantMiddleware) fail(w http.ResponseWriter, r *http.Request, t *tenancy.Tenant, err error) {
	o := outcome(err)
	m.metrics.Resolution(r.Context(), t, o)
	observe(r.Context(), t, o)
	if o == OutcomeError {
		// Resolvers and stores never put raw request input in errors, and the
		// request path and headers are left out on purpose.
		m.logger.ErrorContext(r.Context(), "tenancy: tenant resolution failed", slog.String("method", r.Method), slog.Any("error", err))
	}
	m.onError(w, r, err)
}

// outcome classifies err in the same order as problem.FromError.
func outcome(err error) string {
	switch {
	case errors.Is(err, tenancy.ErrNoTenant):
		return OutcomeMissing
	case errors.Is(err, tenancy.ErrInvalidIdentifier), errors.Is(err, tenancy.ErrInvalidID):
		return OutcomeInvalid
	case errors.Is(err, tenancy.ErrTenantNotFound):
		return OutcomeNotFound
	case errors.Is(err, tenancy.ErrTenantSuspended):
		return OutcomeSuspended
	case errors.Is(err, tenancy.ErrTenantDeleted):
		return OutcomeDeleted
	case errors.Is(err, tenancy.ErrTenantNotReady):
		return OutcomeNotReady
	case errors.Is(err, tenancy.ErrTenantConflict):
		return OutcomeConflict
	case errors.Is(err, tenancy.ErrUnauthenticated):
		return OutcomeUnauthenticated
	}
	return OutcomeError
}
