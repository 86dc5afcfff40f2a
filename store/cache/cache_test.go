package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-tenancy/tenancy"
)

func TestReadThroughCachesEachKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		get     func(c tenancy.Store) (*tenancy.Tenant, error)
		counter func(st *countingStore) int64
	}{
		{"id", func(c tenancy.Store) (*tenancy.Tenant, error) { return c.Get(t.Context(), "id-acme") },
			func(st *countingStore) int64 { return st.byID.Load() }},
		{"identifier", func(c tenancy.Store) (*tenancy.Tenant, error) { return c.GetByIdentifier(t.Context(), "acme") },
			func(st *countingStore) int64 { return st.byIdent.Load() }},
		{"domain", func(c tenancy.Store) (*tenancy.Tenant, error) { return c.GetByDomain(t.Context(), "acme.example.com") },
			func(st *countingStore) int64 { return st.byDomain.Load() }},
		{"domain, other case and trailing dot", func(c tenancy.Store) (*tenancy.Tenant, error) {
			return c.GetByDomain(t.Context(), "ACME.Example.com.")
		}, func(st *countingStore) int64 { return st.byDomain.Load() }},
		{"alias", func(c tenancy.Store) (*tenancy.Tenant, error) { return c.GetByAlias(t.Context(), "acme-co") },
			func(st *countingStore) int64 { return st.byAlias.Load() }},
		{"alias, other case", func(c tenancy.Store) (*tenancy.Tenant, error) { return c.GetByAlias(t.Context(), "ACME-CO.") },
			func(st *countingStore) int64 { return st.byAlias.Load() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newCountingStore()
			createTenant(t, st, "acme", "acme.example.com", "acme-co")
			c, reg := newCache(t, st, Config{})
			first, err := tt.get(c)
			if err != nil {
				t.Fatalf("first lookup: %v", err)
			}
			second, err := tt.get(c)
			if err != nil {
				t.Fatalf("second lookup: %v", err)
			}
			if first.ID != "id-acme" || second != first {
				t.Errorf("lookups returned %+v and %+v, want the same cached acme", first, second)
			}
			if n := tt.counter(st); n != 1 {
				t.Errorf("store lookups = %d, want 1", n)
			}
			if hits := requests(t, reg, "l1", "hit"); hits != 1 {
				t.Errorf("l1 hits = %v, want 1", hits)
			}
		})
	}
}

func TestInvalidKeysAreRefusedBeforeAnyCache(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		get  func(c *Store) error
		want error
	}{
		{"uppercase identifier", func(c *Store) error { _, err := c.GetByIdentifier(t.Context(), "ACME"); return err }, tenancy.ErrInvalidIdentifier},
		{"identifier with newline", func(c *Store) error { _, err := c.GetByIdentifier(t.Context(), "acme\n"); return err }, tenancy.ErrInvalidIdentifier},
		{"empty identifier", func(c *Store) error { _, err := c.GetByIdentifier(t.Context(), ""); return err }, tenancy.ErrInvalidIdentifier},
		{"injection", func(c *Store) error {
			_, err := c.GetByIdentifier(t.Context(), `a"; DROP SCHEMA public; --`)
			return err
		}, tenancy.ErrInvalidIdentifier},
		{"redis key injection", func(c *Store) error {
			_, err := c.GetByIdentifier(t.Context(), "acme:id:x")
			return err
		}, tenancy.ErrInvalidIdentifier},
		{"empty ID", func(c *Store) error { _, err := c.Get(t.Context(), ""); return err }, tenancy.ErrInvalidID},
		{"path ID", func(c *Store) error { _, err := c.Get(t.Context(), "../../etc"); return err }, tenancy.ErrInvalidID},
		{"empty domain", func(c *Store) error { _, err := c.GetByDomain(t.Context(), ""); return err }, tenancy.ErrTenantNotFound},
		{"domain with colon", func(c *Store) error { _, err := c.GetByDomain(t.Context(), "a:b"); return err }, tenancy.ErrTenantNotFound},
		{"single-label domain", func(c *Store) error { _, err := c.GetByDomain(t.Context(), "acme"); return err }, tenancy.ErrTenantNotFound},
		{"alias with a dot", func(c *Store) error { _, err := c.GetByAlias(t.Context(), "acme.example.com"); return err }, tenancy.ErrTenantNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newCountingStore()
			c, reg := newCache(t, st, Config{})
			for range 3 {
				if err := tt.get(c); !errors.Is(err, tt.want) {
					t.Fatalf("error = %v, want %v", err, tt.want)
				}
			}
			if n := st.lookups(); n != 0 {
				t.Errorf("store lookups = %d, want 0", n)
			}
			c.l1.CleanUp()
			if n := c.l1.EstimatedSize(); n != 0 {
				t.Errorf("L1 holds %d entries, want none", n)
			}
			if misses := requests(t, reg, "l1", "miss"); misses != 0 {
				t.Errorf("l1 misses = %v, want 0: the cache was consulted", misses)
			}
		})
	}
}

func TestNotFoundIsCachedForNegativeTTL(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := newCountingStore()
		c := New(st, Config{})
		defer c.Close()
		ctx := t.Context()

		for range 100 {
			if _, err := c.GetByIdentifier(ctx, "nobody"); !errors.Is(err, tenancy.ErrTenantNotFound) {
				t.Fatalf("error = %v, want not found", err)
			}
		}
		if n := st.byIdent.Load(); n != 1 {
			t.Fatalf("store lookups for one unknown identifier = %d, want 1", n)
		}

		// Hammering many random identifiers costs one store call each, not one
		// per request.
		for round := range 3 {
			for i := range 500 {
				if _, err := c.GetByIdentifier(ctx, fmt.Sprintf("random-%d", i)); !errors.Is(err, tenancy.ErrTenantNotFound) {
					t.Fatalf("round %d: error = %v, want not found", round, err)
				}
			}
		}
		if n := st.byIdent.Load(); n != 501 {
			t.Fatalf("store lookups = %d, want 501", n)
		}

		// The margins allow for the L1 clock's resolution.
		time.Sleep(DefaultNegativeTTL - 5*clockResolution)
		_, _ = c.GetByIdentifier(ctx, "nobody")
		if n := st.byIdent.Load(); n != 501 {
			t.Fatalf("store lookups just before the negative TTL = %d, want 501", n)
		}
		time.Sleep(10 * clockResolution)
		_, _ = c.GetByIdentifier(ctx, "nobody")
		if n := st.byIdent.Load(); n != 502 {
			t.Fatalf("store lookups after the negative TTL = %d, want 502", n)
		}
	})
}

func TestFoundTenantExpiresAfterTTL(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := newCountingStore()
		tn := createTenant(t, st, "acme")
		c := New(st, Config{})
		defer c.Close()

		if got := status(c, "acme"); got != "active" {
			t.Fatalf("status = %s, want active", got)
		}
		// A change behind the cache's back is seen only once the entry expires.
		if _, err := st.SetStatus(t.Context(), tn.ID, tenancy.StatusSuspended, "test"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(DefaultTTL - 5*clockResolution)
		if got := status(c, "acme"); got != "active" {
			t.Fatalf("status just before the TTL = %s, want the cached active", got)
		}
		time.Sleep(10 * clockResolution)
		if got := status(c, "acme"); got != "suspended" {
			t.Fatalf("status after the TTL = %s, want suspended", got)
		}
	})
}

func TestConfiguredTTLs(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := newCountingStore()
		createTenant(t, st, "acme")
		c := New(st, Config{TTL: time.Minute, NegativeTTL: 10 * time.Second})
		defer c.Close()
		_, _ = c.GetByIdentifier(t.Context(), "acme")
		_, _ = c.GetByIdentifier(t.Context(), "nobody")
		time.Sleep(59 * time.Second)
		_, _ = c.GetByIdentifier(t.Context(), "acme")
		_, _ = c.GetByIdentifier(t.Context(), "nobody")
		if n := st.byIdent.Load(); n != 3 {
			t.Fatalf("store lookups = %d, want 3: acme still cached, nobody expired after 10s", n)
		}
	})
}

func TestConcurrentMissesMakeOneStoreCall(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	createTenant(t, st, "acme")
	st.gate = make(chan struct{})
	c, reg := newCache(t, st, Config{})

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			tn, err := c.GetByIdentifier(t.Context(), "acme")
			if err == nil && tn.Identifier != "acme" {
				err = fmt.Errorf("got %s", tn.Identifier)
			}
			errs <- err
		})
	}
	// Every caller has missed L1; give the last ones time to join the flight.
	eventually(t, 5*time.Second, "all callers miss L1", func() bool { return requests(t, reg, "l1", "miss") == n })
	time.Sleep(50 * time.Millisecond)
	close(st.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("lookup: %v", err)
		}
	}
	if got := st.byIdent.Load(); got != 1 {
		t.Errorf("store lookups = %d, want 1", got)
	}
}

func TestCancelledCallerDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	createTenant(t, st, "acme")
	st.gate = make(chan struct{})
	c, _ := newCache(t, st, Config{})

	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := c.GetByIdentifier(ctx, "acme")
		first <- err
	}()
	eventually(t, 5*time.Second, "the first load reaches the store", func() bool { return st.byIdent.Load() == 1 })
	second := make(chan error, 1)
	go func() {
		_, err := c.GetByIdentifier(t.Context(), "acme")
		second <- err
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: error = %v, want context.Canceled", err)
	}
	close(st.gate)
	if err := <-second; err != nil {
		t.Fatalf("second caller failed with the first one's cancellation: %v", err)
	}
	// The second caller usually joins the first load; when it is scheduled
	// only after that load ended, it loads once more. Either way the first
	// caller's cancellation reached no one else.
	if got := status(c, "acme"); got != "active" || st.byIdent.Load() > 2 {
		t.Errorf("status %s after %d store lookups, want active from at most 2", got, st.byIdent.Load())
	}
}

func TestStoreErrorsAreNotCached(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	createTenant(t, st, "acme")
	c, _ := newCache(t, st, Config{})
	boom := errors.New("database is down")
	st.err.Store(&boom)
	for range 3 {
		if _, err := c.GetByIdentifier(t.Context(), "acme"); !errors.Is(err, boom) {
			t.Fatalf("error = %v, want the store's", err)
		}
	}
	st.err.Store(nil)
	if got := status(c, "acme"); got != "active" {
		t.Fatalf("status after recovery = %s", got)
	}
	if n := st.byIdent.Load(); n != 4 {
		t.Errorf("store lookups = %d, want 4 (errors are not cached)", n)
	}
}

func TestWritesInvalidateEveryKey(t *testing.T) {
	t.Parallel()
	name := "Acme Renamed"
	tests := []struct {
		name  string
		write func(ctx context.Context, c *Store, id string) error
		want  string // status or name seen afterwards, "gone" for not found
	}{
		{"SetStatus", func(ctx context.Context, c *Store, id string) error {
			_, err := c.SetStatus(ctx, id, tenancy.StatusSuspended, "unpaid")
			return err
		}, "suspended"},
		{"Delete", func(ctx context.Context, c *Store, id string) error { _, err := c.Delete(ctx, id); return err }, "deleted"},
		{"Update", func(ctx context.Context, c *Store, id string) error {
			_, err := c.Update(ctx, id, tenancy.Update{Name: &name})
			return err
		}, name},
		{"Purge", func(ctx context.Context, c *Store, id string) error { return c.Purge(ctx, id) }, "gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newCountingStore()
			tn := createTenant(t, st, "acme", "acme.example.com", "acme-co")
			c, _ := newCache(t, st, Config{})
			ctx := t.Context()
			lookups := map[string]func() (*tenancy.Tenant, error){
				"id":         func() (*tenancy.Tenant, error) { return c.Get(ctx, tn.ID) },
				"identifier": func() (*tenancy.Tenant, error) { return c.GetByIdentifier(ctx, "acme") },
				"domain":     func() (*tenancy.Tenant, error) { return c.GetByDomain(ctx, "acme.example.com") },
				"alias":      func() (*tenancy.Tenant, error) { return c.GetByAlias(ctx, "acme-co") },
			}
			for by, get := range lookups {
				if _, err := get(); err != nil {
					t.Fatalf("prime by %s: %v", by, err)
				}
			}
			if err := tt.write(ctx, c, tn.ID); err != nil {
				t.Fatalf("write: %v", err)
			}
			for by, get := range lookups {
				got, err := get()
				var seen string
				switch {
				case errors.Is(err, tenancy.ErrTenantNotFound):
					seen = "gone"
				case err != nil:
					t.Fatalf("lookup by %s: %v", by, err)
				case tt.want == name:
					seen = got.Name
				default:
					seen = string(got.Status)
				}
				if seen != tt.want {
					t.Errorf("by %s after %s: %q, want %q", by, tt.name, seen, tt.want)
				}
			}
		})
	}
}

func TestUpdateAliasesDropsOldAndNewAliases(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	tn := createTenant(t, st, "acme", "old")
	c, _ := newCache(t, st, Config{})
	ctx := t.Context()
	if _, err := c.GetByAlias(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetByAlias(ctx, "new"); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Fatalf("new alias before the update: %v, want not found", err)
	}
	aliases := []string{"new"}
	if _, err := c.Update(ctx, tn.ID, tenancy.Update{Aliases: &aliases}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetByAlias(ctx, "old"); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Errorf("old alias after the update: %v, want not found", err)
	}
	if got, err := c.GetByAlias(ctx, "new"); err != nil || got.ID != tn.ID {
		t.Errorf("new alias after the update: %v, %v; want acme (the negative entry must be gone)", got, err)
	}
}

// TestDomainWritesDropEntries checks that every domain write through the
// cache takes effect at once: a verified domain resolves although "not
// found" was cached for it, a removed one stops resolving although its
// tenant was cached, and the tenant's own entries show its new Domains.
func TestDomainWritesDropEntries(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	tn := createTenant(t, st, "acme", "old.example.com")
	c, _ := newCache(t, st, Config{})
	ctx := t.Context()
	// prime fills L1 with the tenant, the old domain and, while it does not
	// resolve, "not found" for the new one.
	prime := func(newResolves bool) {
		t.Helper()
		if _, err := c.GetByIdentifier(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetByDomain(ctx, "old.example.com"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetByDomain(ctx, "new.example.com"); (err == nil) != newResolves {
			t.Fatalf("new domain: %v, want resolving %v", err, newResolves)
		}
	}
	prime(false)
	added, err := c.AddDomain(ctx, tn.ID, "new.example.com")
	if err != nil || added.Verified() {
		t.Fatalf("AddDomain = %+v, %v", added, err)
	}
	if got, err := c.GetByIdentifier(ctx, "acme"); err != nil || fmt.Sprint(got.Domains) != "[new.example.com old.example.com]" {
		t.Errorf("tenant after AddDomain: %v, %v; want both domains", got, err)
	}
	if _, err := c.GetByDomain(ctx, "new.example.com"); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Errorf("unverified domain through the cache: %v, want not found", err)
	}

	prime(false)
	if _, err := c.VerifyDomain(ctx, tn.ID, "new.example.com"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetByDomain(ctx, "new.example.com"); err != nil || got.ID != tn.ID {
		t.Errorf("verified domain: %v, %v; want acme at once (the negative entry must be gone)", got, err)
	}

	prime(true)
	if err := c.RemoveDomain(ctx, tn.ID, "old.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetByDomain(ctx, "old.example.com"); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Errorf("removed domain: %v, want not found at once", err)
	}
	if got, err := c.GetByIdentifier(ctx, "acme"); err != nil || fmt.Sprint(got.Domains) != "[new.example.com]" {
		t.Errorf("tenant after RemoveDomain: %v, %v", got, err)
	}
	if l, err := c.ListDomains(ctx, tn.ID); err != nil || len(l) != 1 || !l[0].Verified() {
		t.Errorf("ListDomains = %+v, %v", l, err)
	}
}

func TestCreateDropsNegativeEntries(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	c, _ := newCache(t, st, Config{})
	ctx := t.Context()
	lookups := []func() error{
		func() error { _, err := c.Get(ctx, "id-newco"); return err },
		func() error { _, err := c.GetByIdentifier(ctx, "newco"); return err },
		func() error { _, err := c.GetByAlias(ctx, "newco-alias"); return err },
	}
	for i, get := range lookups {
		if err := get(); !errors.Is(err, tenancy.ErrTenantNotFound) {
			t.Fatalf("lookup %d before create: %v", i, err)
		}
	}
	if _, err := c.Create(ctx, &tenancy.Tenant{ID: "id-newco", Identifier: "newco", Name: "NewCo", Aliases: []string{"newco-alias"}}); err != nil {
		t.Fatal(err)
	}
	for i, get := range lookups {
		if err := get(); err != nil {
			t.Errorf("lookup %d after create: %v, want the new tenant", i, err)
		}
	}
}

func TestFailedWritesLeaveCacheAlone(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	createTenant(t, st, "acme")
	other := createTenant(t, st, "other")
	c, _ := newCache(t, st, Config{})
	ctx := t.Context()
	_, _ = c.GetByIdentifier(ctx, "acme")
	if _, err := c.Create(ctx, &tenancy.Tenant{ID: "id-x", Identifier: "acme", Name: "Dup"}); !errors.Is(err, tenancy.ErrDuplicate) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := c.SetStatus(ctx, "id-missing", tenancy.StatusSuspended, ""); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Fatalf("set status of a missing tenant: %v", err)
	}
	bad := []string{"Bad Alias!"}
	if _, err := c.Update(ctx, other.ID, tenancy.Update{Aliases: &bad}); !errors.Is(err, tenancy.ErrInvalidTenant) {
		t.Fatalf("invalid update: %v", err)
	}
	if _, err := c.VerifyDomain(ctx, "id-acme", "not-held.example.com"); !errors.Is(err, tenancy.ErrDomainNotFound) {
		t.Fatalf("verify a domain not held: %v", err)
	}
	if err := c.RemoveDomain(ctx, "id-acme", "not-held.example.com"); !errors.Is(err, tenancy.ErrDomainNotFound) {
		t.Fatalf("remove a domain not held: %v", err)
	}
	if _, err := c.AddDomain(ctx, "id-acme", "Bad Domain!"); !errors.Is(err, tenancy.ErrInvalidTenant) {
		t.Fatalf("add an invalid domain: %v", err)
	}
	before := st.byIdent.Load()
	_, _ = c.GetByIdentifier(ctx, "acme")
	if st.byIdent.Load() != before {
		t.Error("a write that changed nothing dropped acme from L1")
	}
	if _, err := c.Create(ctx, nil); !errors.Is(err, tenancy.ErrInvalidTenant) {
		t.Errorf("create nil: %v, want ErrInvalidTenant", err)
	}
}

// TestLoadStartedBeforeWriteDoesNotFillL1 is the stale-fill race: a read that
// began before a write returns after the write's invalidation. It may answer
// its own caller with what it read, but must not keep it for the TTL.
func TestLoadStartedBeforeWriteDoesNotFillL1(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	tn := createTenant(t, st, "acme")
	st.gate = make(chan struct{})
	c, _ := newCache(t, st, Config{})
	ctx := t.Context()

	done := make(chan string, 1)
	go func() { done <- status(c, "acme") }()
	eventually(t, 5*time.Second, "the load has read the store", func() bool { return st.byIdent.Load() == 1 })

	if _, err := c.SetStatus(ctx, tn.ID, tenancy.StatusSuspended, "unpaid"); err != nil {
		t.Fatal(err)
	}
	close(st.gate) // releases the slow load
	if got := <-done; got != "active" {
		t.Fatalf("the slow load returned %s, want what it read: active", got)
	}
	if got := status(c, "acme"); got != "suspended" {
		t.Errorf("after the write: %s, want suspended (the slow load refilled L1 with stale data)", got)
	}
}

func TestGetByIdentifierL1HitAllocatesNothing(t *testing.T) {
	st := newCountingStore()
	createTenant(t, st, "acme")
	_, _ = st.Create(t.Context(), &tenancy.Tenant{ID: "x", Identifier: "acme-corp", Name: "x"})
	c, _ := newCache(t, st, Config{})
	ctx := t.Context()
	_, _ = c.GetByIdentifier(ctx, "acme")
	_, _ = c.GetByIdentifier(ctx, "nobody")
	for _, id := range []string{"acme", "nobody"} {
		allocs := testing.AllocsPerRun(1000, func() { _, _ = c.GetByIdentifier(ctx, id) })
		if allocs != 0 {
			t.Errorf("GetByIdentifier(%q) L1 hit: %v allocations, want 0", id, allocs)
		}
	}
}

func TestL1IsBounded(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	c, _ := newCache(t, st, Config{Size: 100})
	for i := range 1000 {
		_, _ = c.GetByIdentifier(t.Context(), fmt.Sprintf("t-%d", i))
	}
	c.l1.CleanUp()
	if n := c.l1.EstimatedSize(); n > 100 {
		t.Errorf("L1 holds %d entries, want at most 100", n)
	}
}

func TestKeysCarryTheTenant(t *testing.T) {
	t.Parallel()
	c, _ := newCache(t, newCountingStore(), Config{Prefix: "p:"})
	tn := &tenancy.Tenant{ID: "id-1", Identifier: "acme", Aliases: []string{"acme-co", "bad.alias"}, Domains: []string{"acme.example.com", "Bad Domain!", "acme"}}
	want := []string{"p:tenant:id:id-1", "p:tenant:identifier:acme", "p:tenant:alias:acme-co", "p:tenant:domain:acme.example.com"}
	if got := c.Keys(tn); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Keys = %q, want %q", got, want)
	}
	if got := c.Keys(nil); len(got) != 0 {
		t.Errorf("Keys(nil) = %q, want none", got)
	}
	if got := c.Keys(&tenancy.Tenant{}); len(got) != 0 {
		t.Errorf("Keys of an empty tenant = %q, want none", got)
	}
	if err := c.Invalidate(t.Context(), &tenancy.Tenant{}); !errors.Is(err, tenancy.ErrNoTenant) {
		t.Errorf("Invalidate of an empty tenant: %v, want ErrNoTenant", err)
	}
}

func TestRedisKeyWithoutTenantPanics(t *testing.T) {
	t.Parallel()
	c, _ := newCache(t, newCountingStore(), Config{})
	for _, k := range []key{{kindIdentifier, ""}, {kindID, ""}, {kindDomain, ""}, {0, "acme"}, {9, "acme"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("redisKey(%+v) did not panic", k)
				}
			}()
			_ = c.redisKey(k)
		}()
	}
}

// TestMetricsCountEveryLookup: each lookup reports its L1 result, and
// only misses report an L2 result.
func TestMetricsCountEveryLookup(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	createTenant(t, st, "acme")
	c, m := newCache(t, st, Config{})
	ctx := t.Context()
	_, _ = c.GetByIdentifier(ctx, "acme")
	_, _ = c.GetByIdentifier(ctx, "acme")
	_, _ = c.GetByIdentifier(ctx, "nobody")
	_, _ = c.GetByIdentifier(ctx, "nobody")
	for _, tt := range []struct {
		level, result string
		want          float64
	}{
		{LevelL1, ResultHit, 1}, {LevelL1, ResultMiss, 2}, {LevelL1, ResultNegativeHit, 1},
		{LevelL2, ResultHit, 0}, {LevelL2, ResultMiss, 0}, // no Redis
	} {
		if got := requests(t, m, tt.level, tt.result); got != tt.want {
			t.Errorf("%s %s = %v, want %v", tt.level, tt.result, got, tt.want)
		}
	}
}
