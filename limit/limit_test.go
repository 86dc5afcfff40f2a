package limit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/redis/go-redis/v9"
)

var (
	acme   = &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Tier: "pro"}
	globex = &tenancy.Tenant{ID: "t-globex", Identifier: "globex", Tier: "pro"}
	free   = &tenancy.Tenant{ID: "t-free", Identifier: "freeloader", Tier: "free"}
	big    = &tenancy.Tenant{ID: "t-big", Identifier: "bigco", Tier: "enterprise"}
	plain  = &tenancy.Tenant{ID: "t-plain", Identifier: "plain"}
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// allowN calls Allow n times and returns how many were allowed and the last
// retry-after.
func allowN(t *testing.T, l *limit.Limiter, tn *tenancy.Tenant, n int) (int, time.Duration) {
	t.Helper()
	allowed, last := 0, time.Duration(0)
	for range n {
		ok, wait, err := l.Allow(context.Background(), tn)
		if err != nil {
			t.Fatalf("Allow: %v", err)
		}
		if ok {
			allowed++
			if wait != 0 {
				t.Fatalf("allowed with retry-after %v", wait)
			}
		} else {
			if wait <= 0 {
				t.Fatalf("rejected with retry-after %v", wait)
			}
			last = wait
		}
	}
	return allowed, last
}

// backends runs f against the in-process limiter and against real Redis.
func backends(t *testing.T, f func(t *testing.T, newLimiter func(limit.Config) *limit.Limiter)) {
	t.Run("in-process", func(t *testing.T) {
		t.Parallel()
		f(t, func(cfg limit.Config) *limit.Limiter {
			cfg.Logger = quiet
			return limit.New(cfg)
		})
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		rdb := testenv.Redis(t)
		prefix := testenv.RandomName("tenancy:test:") + ":"
		t.Cleanup(func() { cleanup(t, rdb, prefix) })
		f(t, func(cfg limit.Config) *limit.Limiter {
			cfg.Logger, cfg.Redis, cfg.Prefix = quiet, rdb, prefix
			return limit.New(cfg)
		})
	})
}

func cleanup(t *testing.T, rdb *redis.Client, prefix string) {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "rate:"+prefix+"*").Result()
	if err == nil && len(keys) > 0 {
		err = rdb.Del(ctx, keys...).Err()
	}
	if err != nil {
		t.Logf("clean up keys: %v", err)
	}
}

func TestLimitPerTenant(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, newLimiter func(limit.Config) *limit.Limiter) {
		l := newLimiter(limit.Config{Default: limit.Rate{Limit: 3, Period: time.Minute}})
		if n, wait := allowN(t, l, acme, 5); n != 3 || wait <= 0 || wait > 20*time.Second {
			t.Fatalf("acme: %d allowed, retry after %v; want 3 and at most 20s", n, wait)
		}
		// Another tenant on the same tier has its own budget.
		if n, _ := allowN(t, l, globex, 5); n != 3 {
			t.Fatalf("globex: %d allowed, want 3", n)
		}
	})
}

func TestTiers(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, newLimiter func(limit.Config) *limit.Limiter) {
		l := newLimiter(limit.Config{
			Default: limit.Rate{Limit: 2, Period: time.Minute},
			Tiers: map[string]limit.Rate{
				"pro":        {Limit: 5, Period: time.Minute},
				"free":       {Limit: 1, Period: time.Hour},
				"enterprise": {}, // unlimited
			},
		})
		for _, c := range []struct {
			t    *tenancy.Tenant
			want int
		}{{acme, 5}, {free, 1}, {big, 20}, {plain, 2}} {
			if n, _ := allowN(t, l, c.t, 20); n != c.want {
				t.Errorf("tier %q: %d of 20 allowed, want %d", c.t.Tier, n, c.want)
			}
		}
	})
}

func TestBurstAndRefill(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, newLimiter func(limit.Config) *limit.Limiter) {
		l := newLimiter(limit.Config{Default: limit.Rate{Limit: 10, Period: time.Second, Burst: 4}})
		n, wait := allowN(t, l, acme, 6)
		if n != 4 || wait > 100*time.Millisecond {
			t.Fatalf("%d allowed (want the burst, 4), retry after %v (want at most 100ms)", n, wait)
		}
		time.Sleep(wait + 20*time.Millisecond)
		if n, _ := allowN(t, l, acme, 1); n != 1 {
			t.Fatal("not allowed after waiting retry-after")
		}
	})
}

func TestUnlimitedByDefault(t *testing.T) {
	t.Parallel()
	l := limit.New(limit.Config{Logger: quiet})
	if n, _ := allowN(t, l, acme, 1000); n != 1000 {
		t.Fatalf("%d allowed without limits", n)
	}
	if keys := l.Keys(acme.ID); keys != nil {
		t.Fatalf("Keys without Redis = %v", keys)
	}
}

func TestTierChangeTakesNewRate(t *testing.T) {
	t.Parallel()
	l := limit.New(limit.Config{Logger: quiet, Tiers: map[string]limit.Rate{"free": {Limit: 1, Period: time.Hour}, "pro": {Limit: 3, Period: time.Hour}}})
	tn := &tenancy.Tenant{ID: "t-up", Identifier: "upgrader", Tier: "free"}
	if n, _ := allowN(t, l, tn, 3); n != 1 {
		t.Fatalf("free: %d allowed", n)
	}
	up := *tn
	up.Tier = "pro"
	if n, _ := allowN(t, l, &up, 5); n != 3 {
		t.Fatalf("after upgrade: %d allowed, want 3", n)
	}
}

func TestResetAndKeys(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, newLimiter func(limit.Config) *limit.Limiter) {
		l := newLimiter(limit.Config{Default: limit.Rate{Limit: 2, Period: time.Hour}})
		allowN(t, l, acme, 2)
		allowN(t, l, globex, 1)
		if n, _ := allowN(t, l, acme, 1); n != 0 {
			t.Fatal("budget not used up")
		}
		if err := l.Reset(context.Background(), acme.ID); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		if n, _ := allowN(t, l, acme, 3); n != 2 {
			t.Fatalf("after Reset: %d allowed, want 2", n)
		}
		if err := l.Reset(context.Background(), "bad id!"); err == nil {
			t.Fatal("Reset accepted an invalid ID")
		}
		if l.Keys("bad id!") != nil {
			t.Fatal("Keys of an invalid ID")
		}
	})
}

func TestRedisKeys(t *testing.T) {
	t.Parallel()
	rdb := testenv.Redis(t)
	prefix := testenv.RandomName("tenancy:test:") + ":"
	t.Cleanup(func() { cleanup(t, rdb, prefix) })
	l := limit.New(limit.Config{Default: limit.Rate{Limit: 5, Period: time.Minute}, Redis: rdb, Prefix: prefix, Logger: quiet})
	allowN(t, l, acme, 1)
	allowN(t, l, globex, 1)
	ctx := context.Background()
	keys := l.Keys(acme.ID)
	if len(keys) != 1 || !strings.Contains(keys[0], prefix) || !strings.HasSuffix(keys[0], acme.ID) {
		t.Fatalf("Keys = %v", keys)
	}
	all, err := rdb.Keys(ctx, "*"+prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("Redis holds %v, want one key per tenant", all)
	}
	// Deleting Keys, as a purge does, removes everything of the tenant.
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Exists(ctx, keys...).Result(); err != nil || n != 0 {
		t.Fatalf("key left after delete: %d, %v", n, err)
	}
	if err := l.Reset(ctx, globex.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, l.Keys(globex.ID)...).Result(); n != 0 {
		t.Fatal("Reset left the Redis key")
	}
}

// TestForgetAndResidue: Residue names the tenant's in-process bucket and
// Redis key, Forget removes both, and the other tenant's stay.
func TestForgetAndResidue(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, newLimiter func(limit.Config) *limit.Limiter) {
		ctx := context.Background()
		l := newLimiter(limit.Config{Default: limit.Rate{Limit: 5, Period: time.Minute}})
		// Without Redis the budget is an in-process bucket; with Redis, a key.
		if left, err := l.Residue(ctx, acme); err != nil || len(left) != 0 {
			t.Fatalf("before any request: %q, %v", left, err)
		}
		allowN(t, l, acme, 5)
		allowN(t, l, globex, 1)
		left, err := l.Residue(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		if keys := l.Keys(acme.ID); len(keys) == 1 {
			if !slices.Contains(left, "redis key "+keys[0]) {
				t.Errorf("Residue %q does not name the Redis key", left)
			}
		} else if !slices.Contains(left, "in-process rate-limit bucket") {
			t.Errorf("Residue %q does not name the in-process bucket", left)
		}
		if err := l.Forget(ctx, acme); err != nil {
			t.Fatal(err)
		}
		if left, err := l.Residue(ctx, acme); err != nil || len(left) != 0 {
			t.Fatalf("after Forget: %q, %v", left, err)
		}
		if n, _ := allowN(t, l, acme, 5); n != 5 {
			t.Errorf("after Forget %d of 5 allowed: the budget was not forgotten", n)
		}
		if left, err := l.Residue(ctx, globex); err != nil || len(left) == 0 {
			t.Errorf("the other tenant's budget: %q, %v", left, err)
		}
	})
}

func TestRedisSharedBudget(t *testing.T) {
	t.Parallel()
	rdb := testenv.Redis(t)
	prefix := testenv.RandomName("tenancy:test:") + ":"
	t.Cleanup(func() { cleanup(t, rdb, prefix) })
	cfg := limit.Config{Default: limit.Rate{Limit: 10, Period: time.Minute}, Redis: rdb, Prefix: prefix, Logger: quiet}
	a, b := limit.New(cfg), limit.New(cfg)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for _, l := range []*limit.Limiter{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				ok, _, err := l.Allow(context.Background(), acme)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 10 {
		t.Fatalf("two instances allowed %d of 40 together, want the shared 10", allowed)
	}
	// Another prefix is another budget.
	cfg.Prefix += "other:"
	if n, _ := allowN(t, limit.New(cfg), acme, 1); n != 1 {
		t.Fatal("a limiter with another prefix shares the budget")
	}
	t.Cleanup(func() { cleanup(t, rdb, cfg.Prefix) })
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	m := &recordingMetrics{}
	l := limit.New(limit.Config{Default: limit.Rate{Limit: 2, Period: time.Minute}, Metrics: m, Logger: quiet})
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	req := func(tn *tenancy.Tenant) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		if tn != nil {
			r = r.WithContext(tenancy.WithTenant(r.Context(), tn))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	for range 2 {
		if rec := req(acme); rec.Code != 200 {
			t.Fatalf("got %d", rec.Code)
		}
	}
	rec := req(acme)
	d := problem.FromError(&tenancy.RetryAfterError{Err: tenancy.ErrRateLimited, After: 30 * time.Second})
	var want bytes.Buffer
	_ = json.NewEncoder(&want).Encode(d)
	if rec.Code != 429 || rec.Body.String() != want.String() || rec.Header().Get("Content-Type") != problem.ContentType {
		t.Fatalf("got %d %q", rec.Code, rec.Body)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "30" {
		t.Fatalf("Retry-After = %q, want 30", ra)
	}
	for range 5 {
		if rec := req(nil); rec.Code != 200 {
			t.Fatalf("request without tenant: %d", rec.Code)
		}
	}
	// Requests without a tenant are not decisions; without Redis, none is a
	// fallback.
	wantDecisions := map[decision]int{{acme.ID, true, false}: 2, {acme.ID, false, false}: 1}
	if got := m.snapshot(); !maps.Equal(got, wantDecisions) {
		t.Errorf("decisions reported = %v, want %v", got, wantDecisions)
	}
}

// decision is one Metrics call, by tenant ID.
type decision struct {
	tenantID          string
	allowed, fallback bool
}

// recordingMetrics counts the decisions a Limiter reports.
type recordingMetrics struct {
	mu sync.Mutex
	m  map[decision]int
}

func (r *recordingMetrics) RateLimitDecision(_ context.Context, t *tenancy.Tenant, allowed, fallback bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[decision]int)
	}
	r.m[decision{t.ID, allowed, fallback}]++
}

func (r *recordingMetrics) snapshot() map[decision]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.m)
}

// fallbacks counts the decisions reported as fallbacks.
func (r *recordingMetrics) fallbacks() int {
	n := 0
	for d, c := range r.snapshot() {
		if d.fallback {
			n += c
		}
	}
	return n
}

func TestAllowNilTenant(t *testing.T) {
	t.Parallel()
	l := limit.New(limit.Config{Default: limit.Rate{Limit: 1}, Logger: quiet})
	if ok, _, err := l.Allow(context.Background(), nil); ok || err == nil {
		t.Fatalf("Allow(nil) = %v, %v", ok, err)
	}
}

// TestRateLimitFields: every limited response carries the draft's
// structured fields, and a refused one Retry-After beside them.
func TestRateLimitFields(t *testing.T) {
	t.Parallel()
	l := limit.New(limit.Config{
		Default: limit.Rate{Limit: 2, Period: time.Minute},
		Tiers:   map[string]limit.Rate{"pro": {Limit: 100, Period: time.Minute}},
	})
	h := l.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	send := func(tn *tenancy.Tenant) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		h.ServeHTTP(rec, r.WithContext(tenancy.WithTenant(r.Context(), tn)))
		return rec
	}
	starter := &tenancy.Tenant{ID: "t-1", Identifier: "acme", Tier: "starter"}
	for i, want := range []struct {
		status            int
		policy, current   string
		retryAfterNonZero bool
	}{
		{http.StatusOK, `"default";q=2;w=60`, `"default";r=1;t=30`, false},
		{http.StatusOK, `"default";q=2;w=60`, `"default";r=0;t=60`, false},
		{http.StatusTooManyRequests, `"default";q=2;w=60`, `"default";r=0;t=60`, true},
	} {
		rec := send(starter)
		if rec.Code != want.status || rec.Header().Get("RateLimit-Policy") != want.policy || rec.Header().Get("RateLimit") != want.current ||
			(rec.Header().Get("Retry-After") != "") != want.retryAfterNonZero {
			t.Errorf("request %d: %d, RateLimit-Policy %q, RateLimit %q, Retry-After %q; want %d, %q, %q",
				i+1, rec.Code, rec.Header().Get("RateLimit-Policy"), rec.Header().Get("RateLimit"), rec.Header().Get("Retry-After"),
				want.status, want.policy, want.current)
		}
	}
	rec := send(&tenancy.Tenant{ID: "t-2", Identifier: "bigco", Tier: "pro"})
	if rec.Header().Get("RateLimit-Policy") != `"pro";q=100;w=60` || rec.Header().Get("RateLimit") != `"pro";r=99;t=1` {
		t.Errorf("tier policy: %q, %q", rec.Header().Get("RateLimit-Policy"), rec.Header().Get("RateLimit"))
	}
}
