package cache_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/cache"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/redis/go-redis/v9"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type counter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *counter) CacheLookup(_ context.Context, r string) { c.add("lookup:" + r) }
func (c *counter) CacheError(_ context.Context, op string) { c.add("error:" + op) }
func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[k]++
}
func (c *counter) get(k string) int { c.mu.Lock(); defer c.mu.Unlock(); return c.counts[k] }

// backends open a cache of each kind; "redis" ones share one client and a
// prefix, as two instances of a service do.
var backends = []struct {
	name string
	open func(t *testing.T) func() *cache.Cache
}{
	{"in-process", func(t *testing.T) func() *cache.Cache {
		c, err := cache.New(cache.Config{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return func() *cache.Cache { return c }
	}},
	{"redis", func(t *testing.T) func() *cache.Cache {
		rdb := testenv.Redis(t)
		prefix := testenv.RandomName("cachetest")
		return func() *cache.Cache {
			c, err := cache.New(cache.Config{Redis: rdb, Prefix: prefix, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	}},
}

func tenantCtx(id string) context.Context {
	return tenancy.WithTenant(context.Background(), &tenancy.Tenant{ID: id, Identifier: "t-" + id})
}

func TestCache(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			c := b.open(t)()
			a, other := tenantCtx(testenv.RandomName("a")), tenantCtx(testenv.RandomName("b"))

			if _, _, err := c.Get(context.Background(), "k"); !errors.Is(err, tenancy.ErrNoTenant) {
				t.Fatalf("Get without a tenant: %v", err)
			}
			if err := c.Set(context.Background(), "k", []byte("v"), 0); !errors.Is(err, tenancy.ErrNoTenant) {
				t.Fatalf("Set without a tenant: %v", err)
			}
			must(t, c.Set(a, "user:1", []byte("alice"), 0))
			must(t, c.Set(a, "user:2", []byte("bob"), 0))
			must(t, c.Set(a, "post:1", []byte("hello"), 0))
			must(t, c.Set(other, "user:1", []byte("other"), 0))
			expect(t, c, a, "user:1", "alice")
			expect(t, c, other, "user:1", "other")

			must(t, c.Delete(a, "user:2"))
			expect(t, c, a, "user:2", "")
			must(t, c.InvalidatePrefix(a, "user:"))
			expect(t, c, a, "user:1", "")
			expect(t, c, a, "post:1", "hello")
			must(t, c.InvalidateTenant(a))
			expect(t, c, a, "post:1", "")
			expect(t, c, other, "user:1", "other")

			must(t, c.Set(a, "short", []byte("x"), 50*time.Millisecond))
			time.Sleep(150 * time.Millisecond)
			expect(t, c, a, "short", "")

			// Purge: every key of the tenant goes, the other's stay.
			must(t, c.Set(a, "again", []byte("x"), 0))
			ta, _ := tenancy.FromContext(a)
			to, _ := tenancy.FromContext(other)
			if left, err := c.Residue(context.Background(), ta); err != nil || len(left) == 0 {
				t.Fatalf("Residue before Forget = %v, %v", left, err)
			}
			must(t, c.Forget(context.Background(), ta))
			if left, err := c.Residue(context.Background(), ta); err != nil || len(left) != 0 {
				t.Fatalf("Residue after Forget = %v, %v", left, err)
			}
			if left, _ := c.Residue(context.Background(), to); len(left) == 0 {
				t.Fatal("Forget removed another tenant's keys")
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func expect(t *testing.T, c *cache.Cache, ctx context.Context, key, want string) {
	t.Helper()
	v, ok, err := c.Get(ctx, key)
	if err != nil || ok != (want != "") || string(v) != want {
		t.Fatalf("Get %s = %q, %v, %v; want %q", key, v, ok, err, want)
	}
}

func TestGetOrLoadCoalesces(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			c := b.open(t)()
			ctx := tenantCtx(testenv.RandomName("a"))
			var loads atomic.Int32
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					v, err := cache.GetOrLoad(ctx, c, "report", 0, func(context.Context) (int, error) {
						loads.Add(1)
						time.Sleep(100 * time.Millisecond)
						return 42, nil
					})
					if err != nil || v != 42 {
						t.Errorf("GetOrLoad = %d, %v", v, err)
					}
				})
			}
			wg.Wait()
			if n := loads.Load(); n != 1 {
				t.Fatalf("%d loads for 20 concurrent misses, want 1", n)
			}
			if v, err := cache.GetOrLoad(ctx, c, "report", 0, func(context.Context) (int, error) { return 0, errors.New("loaded again") }); err != nil || v != 42 {
				t.Fatalf("cached value: %d, %v", v, err)
			}
		})
	}
}

// TestInvalidationReachesEveryInstance: instance A writes the data and
// invalidates; once that returned, instance B never serves an older value.
func TestInvalidationReachesEveryInstance(t *testing.T) {
	t.Parallel()
	open := backends[1].open(t)
	a, b := open(), open()
	ctx := tenantCtx(testenv.RandomName("a"))
	var db, published atomic.Int64 // the data, and the version whose write has returned
	load := func(context.Context) (int64, error) { return db.Load(), nil }

	stop := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	wg.Go(func() {
		for v := int64(1); time.Now().Before(stop); v++ {
			db.Store(v)
			if v%2 == 0 {
				must(t, a.InvalidateTenant(ctx))
			} else {
				must(t, a.Delete(ctx, "counter"))
			}
			published.Store(v)
			time.Sleep(time.Millisecond)
		}
	})
	var reads atomic.Int64
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				floor := published.Load()
				got, err := cache.GetOrLoad(ctx, b, "counter", 0, load)
				if err != nil {
					t.Error(err)
					return
				}
				if got < floor {
					t.Errorf("instance B served version %d after version %d's invalidation returned", got, floor)
					return
				}
				reads.Add(1)
			}
		})
	}
	wg.Wait()
	if reads.Load() < 100 {
		t.Fatalf("only %d reads", reads.Load())
	}
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 50 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	m := &counter{}
	c, err := cache.New(cache.Config{Redis: rdb, Metrics: m, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx := tenantCtx("t1")
	must(t, c.Set(ctx, "k", []byte("v"), 0))
	expect(t, c, ctx, "k", "v")
	srv.Stop()

	expect(t, c, ctx, "k", "")
	v, err := cache.GetOrLoad(ctx, c, "k2", 0, func(context.Context) (string, error) { return "from the store", nil })
	if err != nil || v != "from the store" {
		t.Fatalf("GetOrLoad with Redis down = %q, %v; want the loaded value", v, err)
	}
	if err := c.Set(ctx, "k", []byte("v"), 0); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("Set with Redis down: %v", err)
	}
	if m.get("error:get") < 2 || m.get("error:set") < 1 || m.get("lookup:miss") < 2 {
		t.Fatalf("metrics %v: want the failures and misses counted", m.counts)
	}
	srv.Start()
	deadline := time.Now().Add(5 * time.Second)
	for c.Set(ctx, "k", []byte("back"), 0) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the cache did not come back with Redis")
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect(t, c, ctx, "k", "back")
}
