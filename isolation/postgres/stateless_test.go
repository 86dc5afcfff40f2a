package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/pgstore"
)

// TestPlacementChangeReachesEveryInstance: two instances of a service share
// the tenant store (on the default server) and Redis, each with its own
// cache and provider. A tenant's placement changed through one instance is
// routed to the new server by the other as soon as that one has received
// the invalidation, long before its cache's TTL (an hour here).
func TestPlacementChangeReachesEveryInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTwoServers(t)
	ensureSharedNotes(t, s.def)
	ensureSharedNotes(t, s.sec)
	storePool := testenv.Pool(t, s.def.super)
	if err := pgstore.Migrate(ctx, storePool, pgstore.Config{}); err != nil {
		t.Fatal(err)
	}
	store, err := pgstore.New(ctx, storePool, pgstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rdb := testenv.Redis(t)
	prefix := testenv.RandomName("tenancy_test_") + ":"
	instance := func() *cache.Store {
		c := cache.New(store, cache.Config{Redis: rdb, Prefix: prefix, TTL: time.Hour, RedisTTL: time.Hour})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	a, b := instance(), instance()
	// Both instances listen before anything is written.
	waitFor(t, "both instances subscribed", func() bool {
		n, err := rdb.PubSubNumSub(ctx, prefix+"invalidate").Result()
		return err == nil && n[prefix+"invalidate"] >= 2
	})
	provA, _ := openPlacedRLS(t, s, "app", nil, nil)
	provB, _ := openPlacedRLS(t, s, "app", nil, nil)

	created, err := a.Create(ctx, &tenancy.Tenant{Identifier: testenv.RandomName("t"), Name: "Moving"})
	if err != nil {
		t.Fatal(err)
	}
	seen, err := b.GetByIdentifier(ctx, created.Identifier) // now in B's cache
	if err != nil {
		t.Fatal(err)
	}
	insertNote(t, provB, seen, "before")
	if serverHolds(t, s.def, "public", created.ID) != 1 {
		t.Fatal("the note is not on the default server")
	}

	place := second
	moved, err := a.Update(ctx, created.ID, tenancy.Update{Placement: &place})
	if err != nil {
		t.Fatal(err)
	}
	insertNote(t, provA, moved, "through A")
	// B serves its cached copy until the invalidation arrives; wait for it.
	var now *tenancy.Tenant
	waitFor(t, "B receives the invalidation", func() bool {
		now, err = b.GetByIdentifier(ctx, created.Identifier)
		return err == nil && now.Placement == second
	})
	insertNote(t, provB, now, "through B")
	if got := serverHolds(t, s.sec, "public", created.ID); got != 2 {
		t.Fatalf("the second server holds %d of the tenant's notes, want 2 (A's and B's after the change)", got)
	}
	if got := serverHolds(t, s.def, "public", created.ID); got != 1 {
		t.Fatalf("the default server holds %d of the tenant's notes, want 1 (from before the change)", got)
	}
}

// waitFor polls cond until it holds, failing t after a minute: it waits for
// an event, and asserts no timing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
