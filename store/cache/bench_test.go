package cache

import (
	"testing"
)

// BenchmarkGetByIdentifierL1Hit measures the hot path: every request
// resolves its tenant, and almost every resolution is an L1 hit.
func BenchmarkGetByIdentifierL1Hit(b *testing.B) {
	st := newCountingStore()
	createTenant(b, st, "acme-corp")
	c, _ := newCache(b, st, Config{})
	ctx := b.Context()
	if _, err := c.GetByIdentifier(ctx, "acme-corp"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetByIdentifier(ctx, "acme-corp"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetByIdentifierL1HitParallel is the hot path from every CPU at
// once, as a busy server runs it.
func BenchmarkGetByIdentifierL1HitParallel(b *testing.B) {
	st := newCountingStore()
	createTenant(b, st, "acme-corp")
	c, _ := newCache(b, st, Config{})
	ctx := b.Context()
	if _, err := c.GetByIdentifier(ctx, "acme-corp"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetByIdentifier(ctx, "acme-corp"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGetByIdentifierRedisHit measures an L1 miss served by Redis: the
// L1 entry is dropped before every read (about 0.1µs of the figure), so
// every read is one GET, a JSON decode and an L1 fill.
func BenchmarkGetByIdentifierRedisHit(b *testing.B) {
	env := sharedRedisB(b)
	st := newCountingStore()
	createTenant(b, st, "acme-corp", "acme.example.com")
	c, reg := newCache(b, st, env.config())
	ctx := b.Context()
	if _, err := c.GetByIdentifier(ctx, "acme-corp"); err != nil {
		b.Fatal(err)
	}
	k := key{kindIdentifier, "acme-corp"}
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		c.l1.Invalidate(k)
		if _, err := c.GetByIdentifier(ctx, "acme-corp"); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.StopTimer()
	if got := st.byIdent.Load(); got != 1 {
		b.Fatalf("store lookups = %d, want 1: reads must come from Redis", got)
	}
	if hits := requests(b, reg, "l2", "hit"); hits != float64(n) {
		b.Fatalf("l2 hits = %v, want %d", hits, n)
	}
}

// BenchmarkGetByIdentifierStoreMiss measures a miss on both levels, for
// comparison: Redis GET, generation GET, memory store, Redis fill.
func BenchmarkGetByIdentifierStoreMiss(b *testing.B) {
	env := sharedRedisB(b)
	st := newCountingStore()
	tn := createTenant(b, st, "acme-corp")
	cfg := env.config()
	c, _ := newCache(b, st, cfg)
	ctx := b.Context()
	keys := c.Keys(tn)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		c.flushL1()
		env.rdb.Del(ctx, keys...)
		b.StartTimer()
		if _, err := c.GetByIdentifier(ctx, "acme-corp"); err != nil {
			b.Fatal(err)
		}
	}
}
