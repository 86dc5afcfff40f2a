package middleware

import (
	"context"
	"net/http"
	"time"

	"github.com/go-tenancy/tenancy"
)

// Observation is what Observe learns of one request: the response, the
// route, and the tenant the tenancy middleware resolved, even for requests
// it refused.
type Observation struct {
	// Method is the request's method.
	Method string
	// Route is the pattern of the http.ServeMux route that served the
	// request ("GET /notes/{id}"), as Route records it; empty when none
	// matched or Route does not wrap the mux.
	Route string
	// Status is the response's status code.
	Status int
	// Bytes is the size of the response body.
	Bytes int64
	// Duration is how long the request took to serve.
	Duration time.Duration
	// Tenant is the tenant the tenancy middleware resolved: nil when none
	// was (a public path, a missing or malformed identifier, an unknown
	// tenant), set also when the tenant was refused for its status.
	Tenant *tenancy.Tenant
	// Outcome is the resolution's outcome, one of the Outcome constants;
	// empty for public paths.
	Outcome string
}

// RequestMetrics counts finished requests. promtenancy.Metrics implements
// it with a counter and a latency histogram. It is called on every request,
// so implementations must be safe for concurrent use and cheap.
type RequestMetrics interface {
	// Request is called once per request after it was served: t is the
	// tenant resolved (nil when none), route the ServeMux pattern that
	// served it (empty when none matched), status the response's status.
	Request(ctx context.Context, t *tenancy.Tenant, method, route string, status int, elapsed time.Duration)
}

// ObserveConfig configures Observe.
type ObserveConfig struct {
	// Metrics counts every request. Default nil: nothing is counted.
	Metrics RequestMetrics
	// Done, when set, is called once per request after it was served and
	// counted, for access logs and trace spans. Default nil.
	Done func(r *http.Request, o *Observation)
}

type observationKey struct{}

// Observe returns middleware that observes every request it wraps: put it
// outside the tenancy middleware (New), which records the tenant it
// resolved, and wrap the ServeMux in Route, which records the route. Once
// the request was served, it reports it to cfg.Metrics and cfg.Done.
func Observe(cfg ObserveConfig) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			o := &Observation{Method: r.Method, Status: http.StatusOK}
			rec := &observedWriter{ResponseWriter: w, o: o}
			defer func() {
				// Also after a panic, which an outer handler may turn into
				// a response of its own.
				o.Duration = time.Since(start)
				if cfg.Metrics != nil {
					cfg.Metrics.Request(r.Context(), o.Tenant, o.Method, o.Route, o.Status, o.Duration)
				}
				if cfg.Done != nil {
					cfg.Done(r, o)
				}
			}()
			next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), observationKey{}, o)))
		})
	}
}

// ObservationFromContext returns the Observation of the request ctx
// belongs to, when Observe wraps it. Handlers may fill in what Observe
// cannot learn itself.
func ObservationFromContext(ctx context.Context) (*Observation, bool) {
	o, ok := ctx.Value(observationKey{}).(*Observation)
	return o, ok
}

// Route records the pattern of the route that next, an http.ServeMux,
// served the request with, in the request's Observation.
func Route(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		// ServeMux sets the pattern on the request it was given.
		if o, ok := ObservationFromContext(r.Context()); ok && r.Pattern != "" {
			o.Route = r.Pattern
		}
	})
}

// observe records the tenancy middleware's resolution.
func observe(ctx context.Context, t *tenancy.Tenant, outcome string) {
	if o, ok := ObservationFromContext(ctx); ok {
		o.Tenant, o.Outcome = t, outcome
	}
}

// observedWriter remembers the status and size of a response.
type observedWriter struct {
	http.ResponseWriter
	o           *Observation
	wroteHeader bool
}

func (w *observedWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.o.Status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *observedWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	n, err := w.ResponseWriter.Write(b)
	w.o.Bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *observedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
