// Package promtenancy counts what the tenancy toolkit does in Prometheus
// metrics. One *Metrics serves every package that takes a metrics hook:
//
//	m, err := promtenancy.New(promtenancy.Config{Registerer: reg})
//	// handle err: a conflicting collector is already registered
//	middleware.New(middleware.Config{Resolver: r, Metrics: m})
//	cache.New(store, cache.Config{Metrics: m})
//	limit.New(limit.Config{Default: rate, Metrics: m})
//
// The metrics, all counters:
//
//	tenancy_resolutions_total{tier, outcome}
//	    tenant resolutions; outcome is a middleware.Outcome* value
//	tenancy_cache_requests_total{level, result}
//	    tenant cache lookups; level l1 or l2, result hit, miss or negative_hit
//	tenancy_cache_errors_total{op}
//	    tenant cache failures (served from the store); op a cache.Op* value
//	tenancy_ratelimit_decisions_total{tier, outcome}
//	    rate-limit decisions; outcome allowed or rejected
//	tenancy_ratelimit_fallback_total
//	    rate-limit decisions made in-process because Redis failed
//	tenancy_http_requests_total{method, route, status_class, tier}
//	    finished HTTP requests (middleware.Observe)
//	tenancy_http_request_duration_seconds{method, route, status_class, tier}
//	    their latency, a histogram
//
// route is the ServeMux pattern that served the request ("GET
// /notes/{id}"), or "unmatched"; method one of the standard methods or
// "other"; status_class "2xx" to "5xx". None is ever taken from the request
// as sent, so no client can add series.
//
// The tier label is the tenant's tier, TierDefault for a tenant without one
// and TierNone when no tenant was resolved. Metrics are never labelled by
// tenant unless Config.TenantLabel asks for it: a label per tenant
// multiplies the series by the number of tenants.
//
// Every collector is registered by New. One policy holds for all of them:
// when the Registerer already holds a collector of the same description
// (another Metrics on the same registry, for a second cache, say), New uses
// that collector, so the counts of both add up in one series; any other
// conflict (the same name with other labels or help) is an error, and New
// leaves nothing of its own registered.
package promtenancy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var _ tenancy.Component = (*Metrics)(nil)

// Tier label values for a tenant without a tier and for a request whose
// tenant was not resolved. A tier named "none" would share a series with
// the latter.
const (
	TierDefault = "default"
	TierNone    = "none"
)

// Config configures Metrics.
type Config struct {
	// Registerer receives the collectors. Default
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	// TenantLabel adds a "tenant" label, the tenant's identifier, to
	// tenancy_resolutions_total and tenancy_ratelimit_decisions_total (empty
	// when no tenant was resolved; never a value taken from the request).
	// Each tenant then has series of its own, kept until the tenant is
	// forgotten (Forget: list the Metrics in lifecycle.Config.Components so
	// that a purge ends them). Default false: series by tier only. Metrics
	// with and without the label cannot share a registry.
	TenantLabel bool
}

// Metrics counts into Prometheus collectors. It implements
// middleware.Metrics, cache.Metrics and limit.Metrics, and
// tenancy.Component, for the per-tenant series of Config.TenantLabel. It is
// safe for concurrent use. A nil *Metrics counts nothing, so that a service
// without metrics can pass its nil pointer on.
type Metrics struct {
	tenantLabel bool

	resolutions   *prometheus.CounterVec
	decisions     *prometheus.CounterVec
	fallback      prometheus.Counter
	cacheRequests *prometheus.CounterVec
	cacheErrors   *prometheus.CounterVec
	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec

	// The children of the counters hit on every request, resolved once:
	// CounterVec.WithLabelValues hashes and allocates, which the request
	// path cannot afford.
	resolved counters
	decided  counters
	lookups  [2][3]prometheus.Counter // level, result
	errs     [len(ops)]prometheus.Counter
}

var (
	levels  = [2]string{"l1", "l2"}
	results = [3]string{"hit", "miss", "negative_hit"}
	ops     = [...]string{"get", "set", "invalidate", "ping", "decode", "message"}
)

// New registers the collectors on cfg.Registerer and returns the Metrics
// that count into them. It returns an error, having registered nothing,
// when the Registerer holds a conflicting collector.
func New(cfg Config) (*Metrics, error) {
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	labels := []string{"tier", "outcome"}
	if cfg.TenantLabel {
		labels = append(labels, "tenant")
	}
	m := &Metrics{tenantLabel: cfg.TenantLabel}
	r := registrar{reg: reg}
	m.resolutions = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenancy_resolutions_total",
		Help: "Tenant resolutions by tenant tier and outcome.",
	}, labels))
	m.decisions = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenancy_ratelimit_decisions_total",
		Help: "Rate limit decisions by tenant tier and outcome (allowed or rejected).",
	}, labels))
	m.fallback = register(&r, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tenancy_ratelimit_fallback_total",
		Help: "Rate limit decisions made in-process because Redis was unavailable.",
	}))
	m.cacheRequests = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenancy_cache_requests_total",
		Help: "Tenant cache lookups by level (l1, l2) and result (hit, miss, negative_hit).",
	}, []string{"level", "result"}))
	m.cacheErrors = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenancy_cache_errors_total",
		Help: "Tenant cache failures by operation; Redis failures fall back to the store.",
	}, []string{"op"}))
	httpLabels := []string{"method", "route", "status_class", "tier"}
	m.httpRequests = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenancy_http_requests_total",
		Help: "Finished HTTP requests by method, route pattern, status class and tenant tier.",
	}, httpLabels))
	m.httpDuration = register(&r, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tenancy_http_request_duration_seconds",
		Help:    "Latency of HTTP requests by method, route pattern, status class and tenant tier.",
		Buckets: prometheus.DefBuckets,
	}, httpLabels))
	if r.err != nil {
		r.undo()
		return nil, r.err
	}
	// Known label values start at zero, so that rates are defined from the
	// first scrape.
	for i, level := range levels {
		for j, result := range results {
			if level == "l2" && result == "negative_hit" {
				continue // negative results are not kept in Redis
			}
			m.lookups[i][j] = m.cacheRequests.WithLabelValues(level, result)
		}
	}
	for i, op := range ops {
		m.errs[i] = m.cacheErrors.WithLabelValues(op)
	}
	m.resolved.vec, m.decided.vec = m.resolutions, m.decisions
	return m, nil
}

// registrar registers collectors until the first error, and remembers the
// ones it registered so that a failed New can unregister them.
type registrar struct {
	reg   prometheus.Registerer
	added []prometheus.Collector
	err   error
}

func (r *registrar) undo() {
	for _, c := range r.added {
		r.reg.Unregister(c)
	}
}

// register registers c, or returns the collector of the same description
// already registered.
func register[C prometheus.Collector](r *registrar, c C) C {
	if r.err != nil {
		return c
	}
	err := r.reg.Register(c)
	if err == nil {
		r.added = append(r.added, c)
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	r.err = fmt.Errorf("promtenancy: register metrics: %w", err)
	return c
}

// counters caches the children of a vector labelled tier and outcome, both
// small sets. Per-tenant series are not cached: there may be many, and
// their number is what Config.TenantLabel asked for.
type counters struct {
	vec *prometheus.CounterVec
	mu  sync.RWMutex
	m   map[seriesKey]prometheus.Counter
}

type seriesKey struct{ tier, outcome, tenant string }

func (c *counters) inc(k seriesKey, tenantLabel bool) {
	if tenantLabel {
		c.vec.WithLabelValues(k.tier, k.outcome, k.tenant).Inc()
		return
	}
	c.mu.RLock()
	ctr, ok := c.m[k]
	c.mu.RUnlock()
	if !ok {
		c.mu.Lock()
		if ctr, ok = c.m[k]; !ok {
			ctr = c.vec.WithLabelValues(k.tier, k.outcome)
			if c.m == nil {
				c.m = make(map[seriesKey]prometheus.Counter)
			}
			c.m[k] = ctr
		}
		c.mu.Unlock()
	}
	ctr.Inc()
}

// key returns the series key of t; t may be nil.
func (m *Metrics) key(t *tenancy.Tenant, outcome string) seriesKey {
	k := seriesKey{tier: TierNone, outcome: outcome}
	if t != nil {
		k.tier = t.Tier
		if k.tier == "" {
			k.tier = TierDefault
		}
		if m.tenantLabel {
			k.tenant = t.Identifier
		}
	}
	return k
}

// Resolution implements middleware.Metrics.
func (m *Metrics) Resolution(_ context.Context, t *tenancy.Tenant, outcome string) {
	if m == nil {
		return
	}
	m.resolved.inc(m.key(t, outcome), m.tenantLabel)
}

// RateLimitDecision implements limit.Metrics.
func (m *Metrics) RateLimitDecision(_ context.Context, t *tenancy.Tenant, allowed, fallback bool) {
	if m == nil {
		return
	}
	outcome := "rejected"
	if allowed {
		outcome = "allowed"
	}
	m.decided.inc(m.key(t, outcome), m.tenantLabel)
	if fallback {
		m.fallback.Inc()
	}
}

// CacheLookup implements cache.Metrics.
func (m *Metrics) CacheLookup(_ context.Context, level, result string) {
	if m == nil {
		return
	}
	i := index(levels[:], level)
	j := index(results[:], result)
	if i >= 0 && j >= 0 && m.lookups[i][j] != nil {
		m.lookups[i][j].Inc()
		return
	}
	m.cacheRequests.WithLabelValues(level, result).Inc()
}

// CacheError implements cache.Metrics.
func (m *Metrics) CacheError(_ context.Context, op string) {
	if m == nil {
		return
	}
	if i := index(ops[:], op); i >= 0 {
		m.errs[i].Inc()
		return
	}
	m.cacheErrors.WithLabelValues(op).Inc()
}

// Request implements middleware.RequestMetrics.
func (m *Metrics) Request(_ context.Context, t *tenancy.Tenant, method, route string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	tier := m.key(t, "").tier
	if route == "" {
		route = "unmatched"
	}
	if index(httpMethods[:], method) < 0 {
		method = "other"
	}
	class := "other"
	if status >= 100 && status < 600 {
		class = statusClasses[status/100-1]
	}
	m.httpRequests.WithLabelValues(method, route, class, tier).Inc()
	m.httpDuration.WithLabelValues(method, route, class, tier).Observe(elapsed.Seconds())
}

var (
	httpMethods   = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
	statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}
)

func index(values []string, v string) int {
	for i, x := range values {
		if x == v {
			return i
		}
	}
	return -1
}

// Forget implements tenancy.Component: with Config.TenantLabel it deletes
// the series labelled with t's identifier, so that a purged tenant's series
// end; without, it does nothing. Other processes' series are theirs.
func (m *Metrics) Forget(_ context.Context, t *tenancy.Tenant) error {
	if m == nil || !m.tenantLabel || t == nil || t.Identifier == "" {
		return nil
	}
	only := prometheus.Labels{"tenant": t.Identifier}
	m.resolutions.DeletePartialMatch(only)
	m.decisions.DeletePartialMatch(only)
	return nil
}

// Residue implements tenancy.Component: it names the metrics that still
// have series labelled with t's identifier.
func (m *Metrics) Residue(_ context.Context, t *tenancy.Tenant) ([]string, error) {
	if m == nil || !m.tenantLabel || t == nil || t.Identifier == "" {
		return nil, nil
	}
	var left []string
	for name, vec := range map[string]*prometheus.CounterVec{
		"tenancy_resolutions_total":         m.resolutions,
		"tenancy_ratelimit_decisions_total": m.decisions,
	} {
		if n := seriesOf(vec, t.Identifier); n > 0 {
			left = append(left, fmt.Sprintf("%d %s series", n, name))
		}
	}
	slices.Sort(left)
	return left, nil
}

// seriesOf counts the series of vec labelled tenant.
func seriesOf(vec *prometheus.CounterVec, tenant string) int {
	ch := make(chan prometheus.Metric)
	go func() {
		vec.Collect(ch)
		close(ch)
	}()
	n := 0
	for metric := range ch {
		var pb dto.Metric
		if metric.Write(&pb) != nil {
			continue
		}
		for _, l := range pb.GetLabel() {
			if l.GetName() == "tenant" && l.GetValue() == tenant {
				n++
			}
		}
	}
	return n
}
