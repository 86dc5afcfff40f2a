package cache

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Operations counted in tenancy_cache_errors_total.
const (
	opGet        = "get"        // L2 read
	opSet        = "set"        // L2 fill
	opInvalidate = "invalidate" // L2 delete and broadcast
	opPing       = "ping"       // health probe
	opDecode     = "decode"     // undecodable or mismatched L2 entry
	opMessage    = "message"    // undecodable invalidation message
)

var errorOps = []string{opGet, opSet, opInvalidate, opPing, opDecode, opMessage}

// metrics holds the counters, resolved once so that the hot path only adds.
type metrics struct {
	l1Hit, l1Miss, l1Negative prometheus.Counter
	l2Hit, l2Miss             prometheus.Counter
	errors                    map[string]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, logger *slog.Logger) *metrics {
	requests := register(reg, logger, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenancy_cache_requests_total",
		Help: "Tenant cache lookups by level (l1, l2) and result (hit, miss, negative_hit).",
	}, []string{"level", "result"}))
	errs := register(reg, logger, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenancy_cache_errors_total",
		Help: "Tenant cache failures by operation; Redis failures fall back to the store.",
	}, []string{"op"}))
	m := &metrics{
		l1Hit:      requests.WithLabelValues("l1", "hit"),
		l1Miss:     requests.WithLabelValues("l1", "miss"),
		l1Negative: requests.WithLabelValues("l1", "negative_hit"),
		l2Hit:      requests.WithLabelValues("l2", "hit"),
		l2Miss:     requests.WithLabelValues("l2", "miss"),
		errors:     make(map[string]prometheus.Counter, len(errorOps)),
	}
	for _, op := range errorOps {
		m.errors[op] = errs.WithLabelValues(op)
	}
	return m
}

// register registers c with reg, or returns the collector already registered
// under the same name, so that several caches can share one registry.
func register(reg prometheus.Registerer, logger *slog.Logger, c *prometheus.CounterVec) *prometheus.CounterVec {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing
		}
	}
	// A conflicting metric of another shape: count anyway, unexported.
	logger.Warn("tenancy cache: metrics not registered", slog.Any("error", err))
	return c
}
