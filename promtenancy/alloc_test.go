//go:build !race

package promtenancy_test

import (
	"context"
	"testing"

	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/prometheus/client_golang/prometheus"
)

// TestNoAllocations: the calls made on every request allocate nothing once
// their series exist. The race detector changes allocation counts, hence
// the build tag.
func TestNoAllocations(t *testing.T) {
	m := newMetrics(t, prometheus.NewRegistry(), promtenancy.Config{})
	ctx := context.Background()
	for name, f := range map[string]func(){
		"Resolution":        func() { m.Resolution(ctx, acme, middleware.OutcomeOK) },
		"RateLimitDecision": func() { m.RateLimitDecision(ctx, acme, true, false) },
		"CacheLookup":       func() { m.CacheLookup(ctx, cache.LevelL1, cache.ResultHit) },
		"CacheError":        func() { m.CacheError(ctx, cache.OpGet) },
	} {
		f() // create the series
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}
