package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// redisEnv is a Redis client with a prefix of the test's own.
type redisEnv struct {
	rdb    redis.UniversalClient
	prefix string
}

// sharedRedis returns the shared test server, with a random prefix whose
// keys are deleted when t ends.
func sharedRedis(t *testing.T) redisEnv { return sharedRedisB(t) }

// sharedRedisB is sharedRedis for tests and benchmarks.
func sharedRedisB(t testing.TB) redisEnv {
	t.Helper()
	rdb := testenv.Redis(t)
	prefix := testenv.RandomName("tenancy_cache_test_") + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return redisEnv{rdb: rdb, prefix: prefix}
}

// privateRedis starts a redis-server of the test's own, which it may stop
// and start, and a client on it with short timeouts.
func privateRedis(t *testing.T) (*testenv.RedisServer, redisEnv) {
	t.Helper()
	srv := testenv.StartRedisServer(t)
	rdb := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr,
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           200 * time.Millisecond,
		WriteTimeout:          200 * time.Millisecond,
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	return srv, redisEnv{rdb: rdb, prefix: testenv.RandomName("t") + ":"}
}

func (e redisEnv) config() Config { return Config{Redis: e.rdb, Prefix: e.prefix} }

// subscribed waits until c has (re)subscribed at least n times in all.
func subscribed(t *testing.T, c *Store, n int64) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("subscription #%d", n), func() bool {
		return c.redis.subscriptions.Load() >= n
	})
}

// twoInstances returns two caches over the same store and Redis, as two
// processes of one service would have, both subscribed.
func twoInstances(t *testing.T, st tenancy.Store, cfg Config) (a, b *Store) {
	t.Helper()
	a, _ = newCache(t, st, cfg)
	b, _ = newCache(t, st, cfg)
	subscribed(t, a, 1)
	subscribed(t, b, 1)
	return a, b
}

func TestRedisIsSharedBetweenInstances(t *testing.T) {
	t.Parallel()
	env := sharedRedis(t)
	st := newCountingStore()
	createTenant(t, st, "acme", "acme.example.com")
	cfg := env.config()
	a, _ := newCache(t, st, cfg)
	b, regB := newCache(t, st, cfg)
	ctx := t.Context()

	if _, err := a.GetByIdentifier(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	raw, err := env.rdb.Get(ctx, env.prefix+"tenant:identifier:acme").Bytes()
	if err != nil {
		t.Fatalf("L2 entry after a miss: %v", err)
	}
	var stored tenancy.Tenant
	if err := json.Unmarshal(raw, &stored); err != nil || stored.ID != "id-acme" {
		t.Fatalf("L2 entry = %s (%v), want acme's JSON", raw, err)
	}
	ttl, err := env.rdb.PTTL(ctx, env.prefix+"tenant:identifier:acme").Result()
	if err != nil || ttl <= 0 || ttl > DefaultRedisTTL {
		t.Errorf("L2 TTL = %v (%v), want within (0, %v]", ttl, err, DefaultRedisTTL)
	}

	got, err := b.GetByIdentifier(ctx, "acme")
	if err != nil || got.ID != "id-acme" {
		t.Fatalf("B: %v, %v", got, err)
	}
	if n := st.byIdent.Load(); n != 1 {
		t.Errorf("store lookups = %d, want 1: B must be served by Redis", n)
	}
	if hits := requests(t, regB, "l2", "hit"); hits != 1 {
		t.Errorf("B's l2 hits = %v, want 1", hits)
	}
	// Negative results stay in L1 only.
	_, _ = a.GetByIdentifier(ctx, "nobody")
	if n, _ := env.rdb.Exists(ctx, env.prefix+"tenant:identifier:nobody").Result(); n != 0 {
		t.Error("a negative result was written to Redis")
	}
}

func TestRedisEntriesExpireAfterRedisTTL(t *testing.T) {
	t.Parallel()
	env := sharedRedis(t)
	st := newCountingStore()
	createTenant(t, st, "acme")
	cfg := env.config()
	cfg.RedisTTL = 300 * time.Millisecond
	cfg.TTL = 50 * time.Millisecond
	c, _ := newCache(t, st, cfg)
	ctx := t.Context()
	k := env.prefix + "tenant:identifier:acme"

	_, _ = c.GetByIdentifier(ctx, "acme")
	if ttl := env.rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > 300*time.Millisecond {
		t.Fatalf("L2 TTL = %v, want within (0, 300ms]", ttl)
	}
	time.Sleep(100 * time.Millisecond) // L1 expired, L2 not yet
	_, _ = c.GetByIdentifier(ctx, "acme")
	if n := st.byIdent.Load(); n != 1 {
		t.Fatalf("store lookups = %d, want 1: L2 should still hold acme", n)
	}
	eventually(t, 3*time.Second, "the L2 entry expires", func() bool { return env.rdb.Exists(ctx, k).Val() == 0 })
	_, _ = c.GetByIdentifier(ctx, "acme")
	if n := st.byIdent.Load(); n != 2 {
		t.Errorf("store lookups = %d, want 2 after both levels expired", n)
	}
}

// TestWriteOnOneInstanceReachesTheOtherWithinASecond checks pitfall 10: B
// sees a write made on A within a second, far below B's 30s L1 TTL.
func TestWriteOnOneInstanceReachesTheOtherWithinASecond(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		write  func(ctx context.Context, a *Store, id string) error
		lookup string // "identifier", "old domain", "new domain", "old alias" or "new alias"
		want   string
	}{
		{"suspend", func(ctx context.Context, a *Store, id string) error {
			_, err := a.SetStatus(ctx, id, tenancy.StatusSuspended, "unpaid")
			return err
		}, "identifier", "suspended"},
		{"delete", func(ctx context.Context, a *Store, id string) error { _, err := a.Delete(ctx, id); return err }, "identifier", "deleted"},
		{"purge", func(ctx context.Context, a *Store, id string) error { return a.Purge(ctx, id) }, "identifier", "gone"},
		{"remove domain", func(ctx context.Context, a *Store, id string) error {
			return a.RemoveDomain(ctx, id, "old.example.com")
		}, "old domain", "gone"},
		{"verify domain", func(ctx context.Context, a *Store, id string) error {
			_, err := a.VerifyDomain(ctx, id, "new.example.com")
			return err
		}, "new domain", "active"},
		{"move alias: old", func(ctx context.Context, a *Store, id string) error {
			n := []string{"new-alias"}
			_, err := a.Update(ctx, id, tenancy.Update{Aliases: &n})
			return err
		}, "old alias", "gone"},
		{"move alias: new", func(ctx context.Context, a *Store, id string) error {
			n := []string{"new-alias"}
			_, err := a.Update(ctx, id, tenancy.Update{Aliases: &n})
			return err
		}, "new alias", "active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := sharedRedis(t)
			st := newCountingStore()
			tn := createTenant(t, st, "acme", "old.example.com", "old-alias")
			// Added behind the caches' back: unverified, so not found.
			if _, err := st.AddDomain(t.Context(), tn.ID, "new.example.com"); err != nil {
				t.Fatal(err)
			}
			a, b := twoInstances(t, st, env.config())
			ctx := t.Context()
			look := func() string {
				var got *tenancy.Tenant
				var err error
				switch tt.lookup {
				case "identifier":
					got, err = b.GetByIdentifier(ctx, "acme")
				case "old domain":
					got, err = b.GetByDomain(ctx, "old.example.com")
				case "new domain":
					got, err = b.GetByDomain(ctx, "new.example.com")
				case "old alias":
					got, err = b.GetByAlias(ctx, "old-alias")
				default:
					got, err = b.GetByAlias(ctx, "new-alias")
				}
				switch {
				case errors.Is(err, tenancy.ErrTenantNotFound):
					return "gone"
				case err != nil:
					return err.Error()
				}
				return string(got.Status)
			}
			before := look() // fills B's L1 and Redis
			if before == tt.want {
				t.Fatalf("B already sees %s before the write", before)
			}
			if err := tt.write(ctx, a, tn.ID); err != nil {
				t.Fatal(err)
			}
			for _, k := range a.Keys(tn) {
				if env.rdb.Exists(ctx, k).Val() != 0 {
					t.Errorf("Redis still holds %s after the write", k)
				}
			}
			took := eventually(t, time.Second, "B sees the write", func() bool { return look() == tt.want })
			t.Logf("B saw the write after %v", took)
		})
	}
}

func TestCreateOnOneInstanceClearsNegativeEntryOnOther(t *testing.T) {
	t.Parallel()
	env := sharedRedis(t)
	st := newCountingStore()
	a, b := twoInstances(t, st, env.config())
	ctx := t.Context()
	if _, err := b.GetByIdentifier(ctx, "newco"); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Fatalf("before create: %v", err)
	}
	if _, err := a.Create(ctx, &tenancy.Tenant{ID: "id-newco", Identifier: "newco", Name: "NewCo"}); err != nil {
		t.Fatal(err)
	}
	// A second is below the 2s negative TTL: only the broadcast can do it.
	eventually(t, time.Second, "B finds the new tenant", func() bool { return status(b, "newco") == "active" })
}

// TestStaleRedisFillIsRefused: a reader that read the store before an
// invalidation must not write its result into Redis after it.
func TestStaleRedisFillIsRefused(t *testing.T) {
	t.Parallel()
	env := sharedRedis(t)
	st := newCountingStore()
	tn := createTenant(t, st, "acme")
	c, _ := newCache(t, st, env.config())
	ctx := t.Context()
	k := key{kindIdentifier, "acme"}

	_, token := c.redis.get(ctx, k)
	if !token.ok {
		t.Fatal("no fill token after an L2 miss")
	}
	if err := c.Invalidate(ctx, tn); err != nil {
		t.Fatal(err)
	}
	c.redis.fill(ctx, k, tn, token.gen)
	if n := env.rdb.Exists(ctx, c.redisKey(k)).Val(); n != 0 {
		t.Fatal("a fill that began before the invalidation wrote to Redis")
	}

	_, token = c.redis.get(ctx, k)
	c.redis.fill(ctx, k, tn, token.gen)
	if n := env.rdb.Exists(ctx, c.redisKey(k)).Val(); n != 1 {
		t.Fatal("a fill with no invalidation in between did not write to Redis")
	}
}

func TestBadRedisEntryIsNotServed(t *testing.T) {
	t.Parallel()
	env := sharedRedis(t)
	st := newCountingStore()
	createTenant(t, st, "acme")
	other := createTenant(t, st, "other")
	c, reg := newCache(t, st, env.config())
	ctx := t.Context()
	b, _ := json.Marshal(other)
	for i, v := range [][]byte{b, []byte("{not json")} {
		env.rdb.Set(ctx, env.prefix+"tenant:identifier:acme", v, time.Minute)
		c.flushL1()
		got, err := c.GetByIdentifier(ctx, "acme")
		if err != nil || got.Identifier != "acme" {
			t.Fatalf("case %d: got %v, %v; want acme from the store", i, got, err)
		}
		if n := errorCount(t, reg, OpDecode); n != float64(i+1) {
			t.Errorf("case %d: decode errors = %v, want %d", i, n, i+1)
		}
	}
	// The fill replaced the bad entry.
	c.flushL1()
	before := st.byIdent.Load()
	_, _ = c.GetByIdentifier(ctx, "acme")
	if st.byIdent.Load() != before {
		t.Error("the bad entry was not replaced by the fill")
	}
}

func TestBadMessageFlushesL1(t *testing.T) {
	t.Parallel()
	env := sharedRedis(t)
	st := newCountingStore()
	createTenant(t, st, "acme")
	cfg := env.config()
	c, reg := newCache(t, st, cfg)
	subscribed(t, c, 1)
	ctx := t.Context()
	_, _ = c.GetByIdentifier(ctx, "acme")
	env.rdb.Del(ctx, c.Keys(&tenancy.Tenant{Identifier: "acme"})...)
	if err := env.rdb.Publish(ctx, env.prefix+"invalidate", "garbage").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "L1 flushed", func() bool {
		_, _ = c.GetByIdentifier(ctx, "acme")
		return st.byIdent.Load() == 2
	})
	if n := errorCount(t, reg, OpMessage); n != 1 {
		t.Errorf("message errors = %v, want 1", n)
	}
}

// TestInvalidationQueuedWhileRedisIsSkippedIsReplayed: a write made while
// the breaker is open still reaches Redis and the other instances, once
// Redis answers again.
func TestInvalidationQueuedWhileRedisIsSkippedIsReplayed(t *testing.T) {
	t.Parallel()
	env := sharedRedis(t)
	st := newCountingStore()
	tn := createTenant(t, st, "acme")
	a, b := twoInstances(t, st, env.config())
	ctx := t.Context()
	if got := status(b, "acme"); got != "active" {
		t.Fatal(got)
	}
	k := env.prefix + "tenant:identifier:acme"
	a.redis.openUntil.Store(time.Now().Add(time.Hour).UnixNano())
	if _, err := a.SetStatus(ctx, tn.ID, tenancy.StatusSuspended, "unpaid"); err != nil {
		t.Fatalf("write while Redis is skipped: %v", err)
	}
	if env.rdb.Exists(ctx, k).Val() != 1 {
		t.Fatal("the invalidation reached Redis although the breaker was open")
	}
	// A's probe finds Redis healthy within a second and replays.
	eventually(t, 3*time.Second, "B sees the suspension", func() bool { return status(b, "acme") == "suspended" })
	eventually(t, time.Second, "the queue is empty", func() bool {
		a.redis.mu.Lock()
		defer a.redis.mu.Unlock()
		return len(a.redis.pending) == 0
	})
}

// TestResubscribeFlushesL1: invalidations published while the subscription
// was down are lost, so L1 is dropped when it comes back.
func TestResubscribeFlushesL1(t *testing.T) {
	t.Parallel()
	srv, env := privateRedis(t)
	st := newCountingStore()
	tn := createTenant(t, st, "acme")
	c, reg := newCache(t, st, env.config())
	subscribed(t, c, 1)
	ctx := t.Context()
	if got := status(c, "acme"); got != "active" {
		t.Fatal(got)
	}
	// Another instance's write whose broadcast this one missed: the store
	// and Redis are up to date, this L1 is not.
	if _, err := st.SetStatus(ctx, tn.ID, tenancy.StatusSuspended, "unpaid"); err != nil {
		t.Fatal(err)
	}
	env.rdb.Del(ctx, c.Keys(tn)...)
	if got := status(c, "acme"); got != "active" {
		t.Fatalf("L1 should still hold active, got %s", got)
	}
	// Drop the subscriber's connection only; the client's own stays up.
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	subscribed(t, c, 2)
	if got := status(c, "acme"); got != "suspended" {
		t.Errorf("after resubscribing: %s, want suspended", got)
	}
	for _, op := range allOps {
		if n := errorCount(t, reg, op); n != 0 {
			t.Errorf("%s errors = %v: the flush must come from the resubscription", op, n)
		}
	}
}

// TestRedisOutage checks pitfall 11: with Redis stopped every operation
// succeeds from the store, the failure is counted, another instance still
// sees a suspension within a few seconds, and when Redis is back L2 and the
// broadcast work again without a restart.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	srv, env := privateRedis(t)
	st := newCountingStore()
	tn := createTenant(t, st, "acme")
	createTenant(t, st, "beta")
	cfg := env.config()
	var logA lockedBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logA, nil))
	a, regA := newCache(t, st, cfg)
	cfg.Logger = nil
	b, _ := newCache(t, st, cfg)
	subscribed(t, a, 1)
	subscribed(t, b, 1)
	ctx := t.Context()
	if got := status(b, "acme"); got != "active" {
		t.Fatal(got)
	}

	srv.Stop()
	if got := status(a, "beta"); got != "active" {
		t.Fatalf("lookup during the outage: %s", got)
	}
	if _, err := a.SetStatus(ctx, tn.ID, tenancy.StatusSuspended, "unpaid"); err != nil {
		t.Fatalf("write during the outage: %v", err)
	}
	if n := errorCount(t, regA, OpGet) + errorCount(t, regA, OpInvalidate); n < 1 {
		t.Errorf("errors counted during the outage = %v, want at least 1", n)
	}
	// The breaker spares Redis: many misses cost few failed calls.
	before := errorCount(t, regA, OpGet)
	for i := range 200 {
		if _, err := a.GetByIdentifier(ctx, fmt.Sprintf("unknown-%d", i)); !errors.Is(err, tenancy.ErrTenantNotFound) {
			t.Fatalf("lookup during the outage: %v", err)
		}
	}
	if n := errorCount(t, regA, OpGet) - before; n > 5 {
		t.Errorf("200 misses made %v failed Redis reads, want a handful", n)
	}
	// One line per logInterval, not one per request.
	if n := strings.Count(logA.String(), "level=WARN"); n < 1 || n > 2 {
		t.Errorf("A logged %d warnings during the outage, want 1 or 2:\n%s", n, logA.String())
	}
	// B cannot hear about the suspension, but it notices the outage and
	// keeps L1 entries for a second at most.
	took := eventually(t, 5*time.Second, "B sees the suspension during the outage", func() bool {
		return status(b, "acme") == "suspended"
	})
	t.Logf("B saw the suspension %v into the outage", took)
	// What B caches during the outage lives about a second, not the TTL.
	if _, err := a.SetStatus(ctx, tn.ID, tenancy.StatusActive, ""); err != nil {
		t.Fatalf("write during the outage: %v", err)
	}
	eventually(t, 3*time.Second, "B sees the reactivation during the outage", func() bool {
		return status(b, "acme") == "active"
	})

	srv.Start()
	subscribed(t, a, 2)
	subscribed(t, b, 2)
	eventually(t, 5*time.Second, "L2 is filled again", func() bool {
		a.flushL1()
		_, _ = a.GetByIdentifier(ctx, "beta")
		return env.rdb.Exists(ctx, env.prefix+"tenant:identifier:beta").Val() == 1
	})
	// Both caches now keep acme for the full TTL; a write reaches B through
	// the broadcast again.
	eventually(t, 3*time.Second, "A's probe closes the breaker", func() bool { return !a.redis.degraded.Load() })
	eventually(t, 3*time.Second, "B's probe closes the breaker", func() bool { return !b.redis.degraded.Load() })
	b.flushL1() // so that B's entry is a full-TTL one, not one from the outage
	if got := status(b, "acme"); got != "active" {
		t.Fatal(got)
	}
	if _, err := a.SetStatus(ctx, tn.ID, tenancy.StatusSuspended, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "B sees the suspension through the broadcast", func() bool {
		return status(b, "acme") == "suspended"
	})
}

func TestNewWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	srv, env := privateRedis(t)
	srv.Stop()
	st := newCountingStore()
	tn := createTenant(t, st, "acme")
	a, _ := newCache(t, st, env.config())
	b, _ := newCache(t, st, env.config())
	if got := status(a, "acme"); got != "active" {
		t.Fatalf("lookup with Redis down: %s", got)
	}
	srv.Start()
	subscribed(t, a, 1)
	subscribed(t, b, 1)
	eventually(t, 3*time.Second, "B's probe closes the breaker", func() bool { return !b.redis.degraded.Load() })
	if got := status(b, "acme"); got != "active" {
		t.Fatal(got)
	}
	if _, err := a.SetStatus(t.Context(), tn.ID, tenancy.StatusSuspended, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "B sees the suspension", func() bool { return status(b, "acme") == "suspended" })
}

func TestCloseStopsTheSubscriber(t *testing.T) {
	t.Parallel()
	env := sharedRedis(t)
	c := New(newCountingStore(), env.config())
	subscribed(t, c, 1)
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	n := env.rdb.PubSubNumSub(t.Context(), env.prefix+"invalidate").Val()[env.prefix+"invalidate"]
	if n != 0 {
		t.Errorf("%d subscribers left after Close", n)
	}
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
