package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSoak drives Notekeeper on PostgreSQL with Redis with mixed reads and
// writes from 200 tenants for SOAK_DURATION (default 10s; CI runs 60s,
// the full soak is 10m: see BENCHMARKS.md), printing RSS, goroutines and
// the p99 latency per interval (a minute, or a sixth of a shorter run).
// No response may carry another tenant's data or fail, and once the load
// stops the server's goroutines go back to their baseline.
func TestSoak(t *testing.T) {
	t.Parallel()
	duration := 10 * time.Second
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("SOAK_DURATION must be a positive duration, got %q", v)
		}
		duration = d
	}
	interval := time.Minute
	if duration < 3*time.Minute {
		interval = duration / 6
	}
	bin := buildBinary(t)
	f := setupFaults(t, 200)
	s := startServer(t, bin, f.env)
	time.Sleep(500 * time.Millisecond)
	baseline := gauge(t, s, "go_goroutines")

	l := startLoad(t, loadOptions{url: s.url, tenants: f.tenants, workers: 8, timeout: 10 * time.Second, writes: 0.3})
	start := time.Now()
	t.Logf("soak: %v, 200 tenants, 8 clients; goroutines at rest %v", duration, baseline)
	t.Logf("%8s %10s %10s %10s %10s", "elapsed", "requests", "p99", "rss_mb", "goroutines")
	seen := 0
	for elapsed := interval; elapsed <= duration; elapsed += interval {
		time.Sleep(time.Until(start.Add(elapsed)))
		l.mu.Lock()
		rs := slices.Clone(l.results[seen:])
		seen = len(l.results)
		l.mu.Unlock()
		t.Logf("%8v %10d %10v %10.1f %10v", elapsed.Round(time.Second), len(rs), p99(rs).Round(100*time.Microsecond),
			gauge(t, s, "process_resident_memory_bytes")/(1<<20), gauge(t, s, "go_goroutines"))
	}
	rs := l.halt()
	t.Logf("%s", summary(rs))
	checkNoWrongTenant(t, rs)
	if failed := checkFailures(t, rs, func(result) bool { return false }); failed > 0 {
		t.Errorf("%d requests failed, want none", failed)
	}
	f.checkAckedWritesKept(t, l.ackedNotes())

	// The clients' connections are closed; the server's goroutines for
	// them end within the idle timeout's reach, here at once.
	deadline := time.Now().Add(15 * time.Second)
	var now float64
	for {
		now = gauge(t, s, "go_goroutines")
		if now <= baseline+2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if now > baseline+2 {
		t.Errorf("%v goroutines 15s after the load, %v before it", now, baseline)
	}
	s.checkNoPanic(t)
}

// gauge reads one unlabelled metric from /metrics.
func gauge(t *testing.T, s *server, name string) float64 {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("metric %q: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// p99 returns the 99th percentile latency of rs.
func p99(rs []result) time.Duration {
	if len(rs) == 0 {
		return 0
	}
	d := make([]time.Duration, len(rs))
	for i, r := range rs {
		d[i] = r.end.Sub(r.start)
	}
	slices.Sort(d)
	return d[(len(d)*99)/100]
}
