//go:build !race

package middleware_test

import "testing"

// TestHotPathAllocations holds the warm header path (L1 hit, no rate
// limiter) to its budget of 4 allocations per request. The race detector
// changes allocation counts, hence the build tag.
func TestHotPathAllocations(t *testing.T) {
	for name, public := range map[string][]string{"no public paths": nil, "public paths": {"GET /healthz", "/docs", "/static/"}} {
		h, r, w := hotPath(t, public...)
		if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); n > 4 {
			t.Errorf("%s: %v allocations per request, budget 4", name, n)
		}
	}
}
