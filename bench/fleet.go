package main

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A fleet mode is schema mode over many tenant schemas: schema-<n> for each
// n of Config.SchemaTenants. Over more tenants than Config.Active, requests
// follow a realistic pattern, schema-<n> (Active tenants active, picked by
// a Zipf law), and the worst case, schema-<n>-uniform (every tenant alike),
// is run beside it on the same schemas.
type fleetMode struct {
	name    string
	tenants int
	// active is how many tenants receive requests, by a Zipf law over
	// them; 0 means all, uniformly.
	active int
}

// uniformSuffix ends the name of a fleet mode that spreads its requests
// over all its tenants.
const uniformSuffix = "-uniform"

// fleetModes returns the fleet modes of c, in table order.
func (c *Config) fleetModes() []fleetMode {
	var out []fleetMode
	for _, n := range c.SchemaTenants {
		name := "schema-" + strconv.Itoa(n)
		if c.Active > 0 && n > c.Active {
			out = append(out, fleetMode{name: name, tenants: n, active: c.Active}, fleetMode{name: name + uniformSuffix, tenants: n})
			continue
		}
		out = append(out, fleetMode{name: name, tenants: n})
	}
	return out
}

// fleetMode returns the fleet mode named name.
func (c *Config) fleetMode(name string) (fleetMode, bool) {
	for _, m := range c.fleetModes() {
		if m.name == name {
			return m, true
		}
	}
	return fleetMode{}, false
}

// prefix is the tenant-schema prefix of a fleet mode: one per size, shared
// by its Zipf and uniform modes.
func (m fleetMode) prefix() string { return "f" + strconv.Itoa(m.tenants) + "_" }

// parseCounts parses a comma-separated list of tenant counts ("1000,10000";
// "" or "0": none).
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("schema-tenants: %q is not a tenant count", f)
		}
		if n > 0 && !containsInt(out, n) {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func formatCounts(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// access picks the tenant of each request: uniformly over tenants, or by a
// Zipf law (exponent 1) over active tenants spread evenly through them, so
// that the busy schemas are not neighbours in the catalog.
type access struct {
	tenants int
	// cdf holds the cumulative weights of ranks 0..active-1; nil means
	// uniform.
	cdf []float64
}

func newAccess(tenants, active int) access {
	a := access{tenants: tenants}
	if active <= 0 || active >= tenants {
		return a
	}
	a.cdf = make([]float64, active)
	sum := 0.0
	for k := range active {
		sum += 1 / float64(k+1)
		a.cdf[k] = sum
	}
	for k := range a.cdf {
		a.cdf[k] /= sum
	}
	return a
}

// pick returns a tenant index.
func (a access) pick(rng *rand.Rand) int {
	if a.cdf == nil {
		return rng.IntN(a.tenants)
	}
	k := sort.SearchFloat64s(a.cdf, rng.Float64())
	k = min(k, len(a.cdf)-1)
	return a.spread(k)
}

// spread maps rank k to a tenant index: a multiple of a stride prime to the
// tenant count, so that distinct ranks are distinct tenants.
func (a access) spread(k int) int {
	stride := 7919
	for gcd(stride, a.tenants) != 1 {
		stride += 2
	}
	return int((int64(k) * int64(stride)) % int64(a.tenants))
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Settling: how long a fresh server takes to reach its steady state.
const (
	// settleShare of the steady throughput counts as settled.
	settleShare = 0.9
	// settleStep is the resolution of the timeline; settleWindow the span
	// whose throughput must hold settleShare from the settle time on.
	settleStep   = 250 * time.Millisecond
	settleWindow = time.Second
)

// settleTime returns the first offset t (a multiple of settleStep) from
// which every settleWindow-long window of the timeline up to dur holds at
// least settleShare of steady requests per second, and false when none
// does. done holds when each request finished, from the start.
func settleTime(done []time.Duration, dur time.Duration, steady float64) (time.Duration, bool) {
	if steady <= 0 || dur < settleWindow {
		return 0, false
	}
	steps := int(dur / settleStep)
	counts := make([]int, steps)
	for _, t := range done {
		if i := int(t / settleStep); i >= 0 && i < steps {
			counts[i]++
		}
	}
	per := int(settleWindow / settleStep)
	need := settleShare * steady * settleWindow.Seconds()
	// ok[i]: the window starting at step i holds.
	last := steps - per
	settled := -1
	for i := last; i >= 0; i-- {
		sum := 0
		for _, c := range counts[i : i+per] {
			sum += c
		}
		if float64(sum) < need {
			break
		}
		settled = i
	}
	if settled < 0 {
		return 0, false
	}
	return time.Duration(settled) * settleStep, true
}
