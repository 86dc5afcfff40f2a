package cache

import (
	"slices"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
)

// TestForgetAndResidue: Residue names every entry of a tenant in L1 and
// Redis, Forget removes them from both and from another instance's L1, and
// the other tenant's entries stay.
func TestForgetAndResidue(t *testing.T) {
	t.Parallel()
	env := sharedRedis(t)
	st := newCountingStore()
	gone := createTenant(t, st, "acme", "acme.example.com")
	keep := createTenant(t, st, "beta", "beta.example.com")
	a, b := twoInstances(t, st, env.config())
	ctx := t.Context()
	for _, c := range []*Store{a, b} {
		for _, tn := range []*tenancy.Tenant{gone, keep} {
			if _, err := c.GetByIdentifier(ctx, tn.Identifier); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetByDomain(ctx, tn.Domains[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A "not found" remembered for a key the tenant has is no residue.
	if _, err := a.Get(ctx, "id-nobody"); err == nil {
		t.Fatal("found a tenant that does not exist")
	}

	left, err := a.Residue(ctx, gone)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cache entry by identifier acme", "cache entry by domain acme.example.com",
		"redis key " + env.prefix + "tenant:identifier:acme", "redis key " + env.prefix + "tenant:domain:acme.example.com",
	}
	slices.Sort(left)
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("Residue = %q, want %q", left, want)
	}

	if err := a.Forget(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if left, err := a.Residue(ctx, gone); err != nil || len(left) != 0 {
		t.Fatalf("after Forget: %q, %v", left, err)
	}
	eventually(t, 5*time.Second, "B drops its L1 entries", func() bool {
		left, err := b.Residue(ctx, gone)
		return err == nil && len(left) == 0
	})
	if left, err := a.Residue(ctx, keep); err != nil || len(left) != 4 {
		t.Fatalf("the other tenant's entries: %q, %v; want 4", left, err)
	}
	if err := a.Forget(ctx, gone); err != nil {
		t.Fatalf("forgetting twice: %v", err)
	}
}

// TestResidueWithRedisDown: a cache that cannot check Redis says so
// instead of reporting nothing left.
func TestResidueWithRedisDown(t *testing.T) {
	t.Parallel()
	srv, env := privateRedis(t)
	st := newCountingStore()
	tn := createTenant(t, st, "acme")
	c, _ := newCache(t, st, env.config())
	srv.Stop()
	if _, err := c.Residue(t.Context(), tn); err == nil {
		t.Fatal("Residue reported nothing left without reaching Redis")
	}
	if err := c.Forget(t.Context(), tn); err == nil {
		t.Fatal("Forget succeeded without reaching Redis")
	}
}
