package service

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/oteltenancy"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
)

// HandlerConfig is what NewHandler needs. The app fills it from its
// backend; tests fill it with in-memory parts.
type HandlerConfig struct {
	// Resolver finds the tenant of a request: resolve.Header, resolve.Host,
	// a resolve.Chain, a JWT resolver. Required.
	Resolver resolve.Resolver
	// API is the app's API. Its Title is required.
	API API
	// PublicPaths are http.ServeMux patterns served without a tenant, in
	// addition to DefaultPublicPaths. Default none.
	PublicPaths []string
	// Identifier returns the tenant identifier a request asked for, for the
	// access log of a request refused before its tenant was found; it is
	// logged only when it is a valid identifier. Default: the X-Tenant-ID
	// header.
	Identifier func(*http.Request) string
	// Ready reports whether the database is reachable (GET /readyz).
	// Default: always.
	Ready func(context.Context) error
	// Limiter limits request rates per tenant. Nil: no limit.
	Limiter *limit.Limiter
	// Registry is served on /metrics. Default: a new registry.
	Registry *prometheus.Registry
	// Metrics counts the tenancy middleware's resolutions and the requests;
	// it should count into Registry. Nil: nothing is counted.
	Metrics *promtenancy.Metrics
	// Logger logs requests and failures. Default slog.Default().
	Logger *slog.Logger
	// TracerProvider, when set, traces every request: a server span
	// (otelhttp) named for its route, with the tenant's attributes
	// (oteltenancy). Nil: no request is traced.
	TracerProvider trace.TracerProvider
	// RequestTimeout is the deadline of each request's context, tenant
	// lookup included: database calls still waiting then fail, and the
	// request answers 504 (problem.SlugTimeout). Zero: no deadline (the
	// apps pass Config.RequestTimeout, whose default is 10s).
	RequestTimeout time.Duration
	// MaxBodyBytes is the largest request body read; a larger one answers
	// 413 without being read. Default DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
}

// DefaultPublicPaths are served without a tenant: health, metrics and the
// API description (huma serves the spec in four forms; /docs loads the
// YAML one).
var DefaultPublicPaths = []string{
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
	"GET /docs",
	"GET " + DocsAssetsPath,
	"GET /openapi.json",
	"GET /openapi.yaml",
	"GET /openapi-3.0.json",
	"GET /openapi-3.0.yaml",
}

// NewHandler returns the whole HTTP service:
//
//	trace (when TracerProvider is set) -> observe (access log, request
//	metrics, the tenant on the span) -> recover -> tenancy middleware
//	(resolve, check status, tenant into context) -> rate limit -> routes
//
// Public paths pass the tenancy middleware without a tenant. A path or
// method with no route is a 404 or 405 problem, like every other error.
func NewHandler(cfg HandlerConfig) http.Handler {
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Identifier == nil {
		cfg.Identifier = func(r *http.Request) string { return r.Header.Get(resolve.DefaultHeader) }
	}
	mux := http.NewServeMux()
	NewAPI(mux, cfg.API, cfg.Ready, cfg.Logger)
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{Registry: cfg.Registry}))

	var h http.Handler = middleware.Route(problemNotFound(mux))
	if cfg.Limiter != nil {
		h = cfg.Limiter.Middleware(h)
	}
	h = middleware.New(middleware.Config{
		Resolver:    cfg.Resolver,
		PublicPaths: append(append([]string{}, DefaultPublicPaths...), cfg.PublicPaths...),
		Logger:      cfg.Logger,
		Metrics:     resolutionMetrics(cfg.Metrics),
	})(h)
	h = limitRequest(cfg.RequestTimeout, cmp.Or(cfg.MaxBodyBytes, DefaultMaxBodyBytes), h)
	h = recoverPanics(cfg.Logger, h)
	done := accessLog(cfg.Logger, cfg.Identifier)
	if cfg.TracerProvider != nil {
		tr := oteltenancy.New(oteltenancy.Config{TracerProvider: cfg.TracerProvider})
		log := done
		done = func(r *http.Request, o *middleware.Observation) {
			tr.ObserveRequest(r, o)
			log(r, o)
		}
	}
	h = middleware.Observe(middleware.ObserveConfig{
		Metrics: requestMetrics(cfg.Metrics),
		Done:    done,
	})(h)
	if cfg.TracerProvider != nil {
		// Outermost, so that the span covers the whole request.
		h = otelhttp.NewHandler(h, "http", otelhttp.WithTracerProvider(cfg.TracerProvider))
	}
	return h
}

// requestMetrics and resolutionMetrics keep a nil *promtenancy.Metrics from
// becoming a non-nil interface.
func requestMetrics(m *promtenancy.Metrics) middleware.RequestMetrics {
	if m == nil {
		return nil
	}
	return m
}

func resolutionMetrics(m *promtenancy.Metrics) middleware.Metrics {
	if m == nil {
		return nil
	}
	return m
}

// quietPaths are logged at debug level: probes and scrapers call them all
// the time.
var quietPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// accessLog logs one line per request: method, path, status, size and
// duration, plus tenant_id and tenant (through tenancy.LogHandler) once the
// tenant is known, refused tenants too. A request refused before its tenant
// was found logs the identifier it asked for, when it is a valid one (an
// unknown tenant, 404), and the resolution's outcome: values that are not
// identifiers are never logged.
func accessLog(logger *slog.Logger, identifier func(*http.Request) string) func(*http.Request, *middleware.Observation) {
	return func(r *http.Request, o *middleware.Observation) {
		ctx := r.Context()
		attrs := make([]slog.Attr, 0, 8)
		attrs = append(attrs,
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", o.Status),
			slog.Int64("bytes", o.Bytes),
			slog.Duration("duration", o.Duration))
		if o.Tenant != nil {
			ctx = tenancy.WithTenant(ctx, o.Tenant)
		} else if id := identifier(r); id != "" && tenancy.ValidateIdentifier(id) == nil {
			attrs = append(attrs, slog.String("tenant", id))
		}
		if o.Outcome != "" && o.Outcome != middleware.OutcomeOK {
			attrs = append(attrs, slog.String("outcome", o.Outcome))
		}
		level := slog.LevelInfo
		switch {
		case o.Status >= 500:
			level = slog.LevelError
		case quietPaths[r.URL.Path] && o.Status < 400:
			level = slog.LevelDebug
		}
		logger.LogAttrs(ctx, level, "request", attrs...)
	}
}

// limitRequest puts the request timeout on the request's context and
// refuses bodies over maxBody bytes (413): at once when Content-Length says
// so, otherwise once maxBody+1 bytes were read.
func limitRequest(timeout time.Duration, maxBody int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			problem.Write(w, tooLarge())
			return
		}
		if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
			// Unknown length (chunked): read up to the limit first, since
			// the API would answer a read error with a 500. It reads the
			// whole body anyway.
			b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			_ = r.Body.Close()
			if err != nil {
				problem.Write(w, problem.Details{Type: "about:blank", Title: http.StatusText(http.StatusBadRequest),
					Status: http.StatusBadRequest, Detail: "The request body could not be read."})
				return
			}
			if int64(len(b)) > maxBody {
				problem.Write(w, tooLarge())
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}
		if timeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

// tooLarge is the answer to a body over the limit.
func tooLarge() problem.Details {
	return problem.Details{Type: "about:blank", Title: http.StatusText(http.StatusRequestEntityTooLarge),
		Status: http.StatusRequestEntityTooLarge, Detail: "The request body is too large."}
}

// recoverPanics answers a panicking handler with a 500 problem instead of a
// dropped connection, and logs the panic.
func recoverPanics(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			logger.ErrorContext(r.Context(), "handler panicked", slog.String("panic", fmt.Sprint(v)))
			problem.WriteError(w, errors.New("panic"))
		}()
		next.ServeHTTP(w, r)
	})
}

// problemNotFound turns http.ServeMux's plain-text 404 and 405 answers (a
// path or method with no route) into problem details, like every other
// error. Handlers' own responses pass through untouched: they are never
// text/plain errors.
func problemNotFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&notFoundWriter{ResponseWriter: w}, r)
	})
}

type notFoundWriter struct {
	http.ResponseWriter
	swallow bool
}

func (w *notFoundWriter) WriteHeader(code int) {
	h := w.Header()
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) && strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		w.swallow = true
		h.Del("Content-Length")
		problem.Write(w.ResponseWriter, problem.Details{Type: "about:blank", Title: http.StatusText(code), Status: code})
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *notFoundWriter) Write(b []byte) (int, error) {
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *notFoundWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
