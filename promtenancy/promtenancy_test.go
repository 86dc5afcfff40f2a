package promtenancy_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// One Metrics serves every package's hook.
var (
	_ middleware.Metrics = (*promtenancy.Metrics)(nil)
	_ cache.Metrics      = (*promtenancy.Metrics)(nil)
	_ limit.Metrics      = (*promtenancy.Metrics)(nil)
)

var (
	acme    = &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Tier: "pro"}
	globex  = &tenancy.Tenant{ID: "t-globex", Identifier: "globex"}
	initech = &tenancy.Tenant{ID: "t-initech", Identifier: "initech", Tier: "pro"}
)

func newMetrics(t *testing.T, reg prometheus.Registerer, cfg promtenancy.Config) *promtenancy.Metrics {
	t.Helper()
	cfg.Registerer = reg
	m, err := promtenancy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// series returns every series of the metric name in reg, as its labels
// ("k=v,k=v", sorted) mapped to its value.
func series(t *testing.T, reg prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(labels)
			out[strings.Join(labels, ",")] = m.GetCounter().GetValue()
		}
	}
	return out
}

func equal(t *testing.T, name string, got, want map[string]float64) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

func TestCounts(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := newMetrics(t, reg, promtenancy.Config{})
	ctx := context.Background()

	m.Resolution(ctx, acme, middleware.OutcomeOK)
	m.Resolution(ctx, initech, middleware.OutcomeOK)
	m.Resolution(ctx, globex, middleware.OutcomeSuspended)
	m.Resolution(ctx, nil, middleware.OutcomeNotFound)
	equal(t, "tenancy_resolutions_total", series(t, reg, "tenancy_resolutions_total"), map[string]float64{
		"outcome=ok,tier=pro":            2,
		"outcome=suspended,tier=default": 1,
		"outcome=not_found,tier=none":    1,
	})

	m.RateLimitDecision(ctx, acme, true, false)
	m.RateLimitDecision(ctx, acme, false, true)
	m.RateLimitDecision(ctx, globex, true, true)
	equal(t, "tenancy_ratelimit_decisions_total", series(t, reg, "tenancy_ratelimit_decisions_total"), map[string]float64{
		"outcome=allowed,tier=pro":     1,
		"outcome=rejected,tier=pro":    1,
		"outcome=allowed,tier=default": 1,
	})
	equal(t, "tenancy_ratelimit_fallback_total", series(t, reg, "tenancy_ratelimit_fallback_total"), map[string]float64{"": 2})

	m.CacheLookup(ctx, cache.LevelL1, cache.ResultHit)
	m.CacheLookup(ctx, cache.LevelL1, cache.ResultHit)
	m.CacheLookup(ctx, cache.LevelL1, cache.ResultNegativeHit)
	m.CacheLookup(ctx, cache.LevelL2, cache.ResultMiss)
	equal(t, "tenancy_cache_requests_total", series(t, reg, "tenancy_cache_requests_total"), map[string]float64{
		// Known label values are exported from the start, at zero.
		"level=l1,result=hit": 2, "level=l1,result=miss": 0, "level=l1,result=negative_hit": 1,
		"level=l2,result=hit": 0, "level=l2,result=miss": 1,
	})
	m.CacheError(ctx, cache.OpPing)
	m.CacheError(ctx, cache.OpDecode)
	m.CacheError(ctx, cache.OpDecode)
	equal(t, "tenancy_cache_errors_total", series(t, reg, "tenancy_cache_errors_total"), map[string]float64{
		"op=get": 0, "op=set": 0, "op=invalidate": 0, "op=ping": 1, "op=decode": 2, "op=message": 0,
	})
}

// TestTenantLabel: per-tenant series only when asked for, named by the
// identifier, and empty when no tenant was resolved.
func TestTenantLabel(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := newMetrics(t, reg, promtenancy.Config{TenantLabel: true})
	ctx := context.Background()
	m.Resolution(ctx, acme, middleware.OutcomeOK)
	m.Resolution(ctx, initech, middleware.OutcomeOK)
	m.Resolution(ctx, nil, middleware.OutcomeMissing)
	m.RateLimitDecision(ctx, acme, false, false)
	equal(t, "tenancy_resolutions_total", series(t, reg, "tenancy_resolutions_total"), map[string]float64{
		"outcome=ok,tenant=acme-corp,tier=pro": 1,
		"outcome=ok,tenant=initech,tier=pro":   1,
		"outcome=missing,tenant=,tier=none":    1, // Prometheus reads an empty label as none
	})
	equal(t, "tenancy_ratelimit_decisions_total", series(t, reg, "tenancy_ratelimit_decisions_total"), map[string]float64{
		"outcome=rejected,tenant=acme-corp,tier=pro": 1,
	})

	// A registry cannot hold both shapes of the metric.
	if _, err := promtenancy.New(promtenancy.Config{Registerer: reg}); err == nil {
		t.Fatal("metrics without the tenant label registered beside metrics with it")
	}
}

// TestShareOneRegistry: two caches, each with Metrics of its own on one
// registry, count into the same series.
func TestShareOneRegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	st := memstore.New()
	if _, err := st.Create(t.Context(), &tenancy.Tenant{Identifier: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	a := cache.New(st, cache.Config{Metrics: newMetrics(t, reg, promtenancy.Config{})})
	b := cache.New(st, cache.Config{Metrics: newMetrics(t, reg, promtenancy.Config{})})
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	ctx := t.Context()
	_, _ = a.GetByIdentifier(ctx, "acme")
	_, _ = a.GetByIdentifier(ctx, "acme")
	_, _ = b.GetByIdentifier(ctx, "acme")
	_, _ = b.GetByIdentifier(ctx, "nobody")
	_, _ = b.GetByIdentifier(ctx, "nobody")
	got := series(t, reg, "tenancy_cache_requests_total")
	for k, want := range map[string]float64{"level=l1,result=hit": 1, "level=l1,result=miss": 3, "level=l1,result=negative_hit": 1} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (all series: %v)", k, got[k], want, got)
		}
	}
}

// TestConflicts: a collector of the same name with another description, or
// of the same description but another kind, is an error, and New leaves
// none of its own collectors registered.
func TestConflicts(t *testing.T) {
	t.Parallel()
	for name, existing := range map[string]prometheus.Collector{
		"other help": prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenancy_cache_errors_total", Help: "Something else.",
		}, []string{"op"}),
		"same description, another kind": prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tenancy_ratelimit_fallback_total",
			Help: "Rate limit decisions made in-process because Redis was unavailable.",
		}, func() float64 { return 0 }),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			reg.MustRegister(existing)
			if m, err := promtenancy.New(promtenancy.Config{Registerer: reg}); err == nil || m != nil {
				t.Fatalf("New = %v, %v; want an error", m, err)
			}
			// Registered first, then undone: registering it again works.
			again := prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "tenancy_resolutions_total", Help: "Tenant resolutions by tenant tier and outcome.",
			}, []string{"tier", "outcome"})
			var are prometheus.AlreadyRegisteredError
			if err := reg.Register(again); errors.As(err, &are) {
				t.Fatal("a failed New left tenancy_resolutions_total registered")
			} else if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestNames: every metric follows the Prometheus conventions: the tenancy_
// namespace, snake case, counters ending in _total.
func TestNames(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := newMetrics(t, reg, promtenancy.Config{})
	ctx := context.Background()
	m.Resolution(ctx, acme, middleware.OutcomeOK)
	m.RateLimitDecision(ctx, acme, true, false)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if !strings.HasPrefix(mf.GetName(), "tenancy_") || !strings.HasSuffix(mf.GetName(), "_total") || strings.ToLower(mf.GetName()) != mf.GetName() {
			t.Errorf("metric %s breaks the naming conventions", mf.GetName())
		}
		if mf.GetHelp() == "" {
			t.Errorf("metric %s has no help", mf.GetName())
		}
	}
	want := []string{"tenancy_cache_errors_total", "tenancy_cache_requests_total", "tenancy_ratelimit_decisions_total", "tenancy_ratelimit_fallback_total", "tenancy_resolutions_total"}
	if !slices.Equal(names, want) {
		t.Errorf("metrics %v, want %v", names, want)
	}
}

// TestNilCountsNothing: a nil *Metrics passed as a hook is safe.
func TestNilCountsNothing(t *testing.T) {
	t.Parallel()
	var m *promtenancy.Metrics
	ctx := context.Background()
	m.Resolution(ctx, acme, middleware.OutcomeOK)
	m.RateLimitDecision(ctx, acme, true, true)
	m.CacheLookup(ctx, cache.LevelL1, cache.ResultHit)
	m.CacheError(ctx, cache.OpGet)
	l := limit.New(limit.Config{Default: limit.Rate{Limit: 1}, Metrics: m})
	if ok, _, err := l.Allow(ctx, acme); !ok || err != nil {
		t.Fatalf("Allow with nil metrics: %v, %v", ok, err)
	}
}

// TestForgetTenantSeries: with the tenant label, Forget ends the purged
// tenant's series and keeps the others; Residue names what is left.
func TestForgetTenantSeries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := newMetrics(t, reg, promtenancy.Config{TenantLabel: true})
	ctx := context.Background()
	m.Resolution(ctx, acme, middleware.OutcomeOK)
	m.Resolution(ctx, acme, middleware.OutcomeSuspended)
	m.RateLimitDecision(ctx, acme, true, false)
	m.Resolution(ctx, initech, middleware.OutcomeOK)

	left, err := m.Residue(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1 tenancy_ratelimit_decisions_total series", "2 tenancy_resolutions_total series"}
	if !slices.Equal(left, want) {
		t.Fatalf("Residue = %q, want %q", left, want)
	}
	if err := m.Forget(ctx, acme); err != nil {
		t.Fatal(err)
	}
	if left, err := m.Residue(ctx, acme); err != nil || len(left) != 0 {
		t.Fatalf("after Forget: %q, %v", left, err)
	}
	equal(t, "tenancy_resolutions_total", series(t, reg, "tenancy_resolutions_total"), map[string]float64{
		"outcome=ok,tenant=initech,tier=pro": 1,
	})

	// Without the label there is nothing per tenant to forget.
	plain := newMetrics(t, prometheus.NewRegistry(), promtenancy.Config{})
	plain.Resolution(ctx, acme, middleware.OutcomeOK)
	if left, err := plain.Residue(ctx, acme); err != nil || len(left) != 0 {
		t.Fatalf("without the tenant label: %q, %v", left, err)
	}
}

// TestHTTPRequests: requests are counted and timed by method, route,
// status class and tier, and nothing a client sends becomes a label.
func TestHTTPRequests(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := newMetrics(t, reg, promtenancy.Config{})
	ctx := context.Background()
	pro := &tenancy.Tenant{ID: "t-1", Identifier: "acme-corp", Tier: "pro"}
	m.Request(ctx, pro, "GET", "GET /notes/{id}", 200, 20*time.Millisecond)
	m.Request(ctx, pro, "GET", "GET /notes/{id}", 404, time.Millisecond)
	m.Request(ctx, nil, "BREW", "", 405, time.Millisecond)
	m.Request(ctx, nil, "GET", "", 429, time.Millisecond)

	want := `
# HELP tenancy_http_requests_total Finished HTTP requests by method, route pattern, status class and tenant tier.
# TYPE tenancy_http_requests_total counter
tenancy_http_requests_total{method="GET",route="GET /notes/{id}",status_class="2xx",tier="pro"} 1
tenancy_http_requests_total{method="GET",route="GET /notes/{id}",status_class="4xx",tier="pro"} 1
tenancy_http_requests_total{method="GET",route="unmatched",status_class="4xx",tier="none"} 1
tenancy_http_requests_total{method="other",route="unmatched",status_class="4xx",tier="none"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tenancy_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "tenancy_http_request_duration_seconds"); err != nil || n != 4 {
		t.Errorf("histogram series %d, %v; want 4", n, err)
	}
	var hist *dto.Histogram
	families, _ := reg.Gather()
	for _, mf := range families {
		if mf.GetName() == "tenancy_http_request_duration_seconds" {
			for _, s := range mf.GetMetric() {
				if s.GetLabel()[2].GetValue() == "2xx" {
					hist = s.GetHistogram()
				}
			}
		}
	}
	if hist == nil || hist.GetSampleCount() != 1 || hist.GetSampleSum() < 0.019 || hist.GetSampleSum() > 0.021 {
		t.Errorf("2xx histogram %v", hist)
	}
}
