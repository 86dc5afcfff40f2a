package isolation_test

import (
	"context"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
)

// recorder is a stand-in provider that records which tenant reached it; it
// tests routing only, never isolation.
type recorder struct {
	isolation.Provider
	dialect   isolation.Dialect
	got       []string
	destroyed []string
}

func (r *recorder) Destroy(_ context.Context, t *tenancy.Tenant) error {
	r.destroyed = append(r.destroyed, t.ID)
	return nil
}

func (r *recorder) Targets(tenants []*tenancy.Tenant) ([]isolation.Target, error) {
	var out []isolation.Target
	for _, t := range tenants {
		out = append(out, isolation.Target{Key: t.ID, Tenant: t})
	}
	return out, nil
}

func (r *recorder) Dialect() isolation.Dialect { return r.dialect }
func (r *recorder) Exec(_ context.Context, t *tenancy.Tenant, _ string, _ ...any) (int64, error) {
	r.got = append(r.got, t.ID)
	return 0, nil
}

func TestHybridRoutesByTierAndOverride(t *testing.T) {
	t.Parallel()
	rls := &recorder{dialect: isolation.Postgres}
	schema := &recorder{dialect: isolation.Postgres}
	h, err := isolation.NewHybrid(isolation.HybridConfig{
		Tiers:     map[string]tenancy.Isolation{"enterprise": tenancy.IsolationSchema, "starter": tenancy.IsolationRLS},
		Default:   tenancy.IsolationRLS,
		Providers: map[tenancy.Isolation]isolation.Provider{tenancy.IsolationRLS: rls, tenancy.IsolationSchema: schema},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range []*tenancy.Tenant{
		{ID: "ent", Tier: "enterprise"},
		{ID: "start", Tier: "starter"},
		{ID: "unknown-tier", Tier: "gold"},
		{ID: "ent-override", Tier: "enterprise", Isolation: tenancy.IsolationRLS},
		{ID: "start-override", Tier: "starter", Isolation: tenancy.IsolationSchema},
	} {
		if _, err := h.Exec(context.Background(), tn, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := rls.got; len(got) != 3 || got[0] != "start" || got[1] != "unknown-tier" || got[2] != "ent-override" {
		t.Errorf("RLS served %v", got)
	}
	if got := schema.got; len(got) != 2 || got[0] != "ent" || got[1] != "start-override" {
		t.Errorf("schema served %v", got)
	}
	// A tenant whose override has no provider is refused, not defaulted.
	if _, err := h.Exec(context.Background(), &tenancy.Tenant{ID: "db", Isolation: tenancy.IsolationDatabase}, "SELECT 1"); err == nil {
		t.Error("a tenant overriding to a strategy without a provider was served")
	}
}

func TestHybridConfigChecked(t *testing.T) {
	t.Parallel()
	pg := &recorder{dialect: isolation.Postgres}
	lite := &recorder{dialect: isolation.SQLite}
	bad := []isolation.HybridConfig{
		{Default: tenancy.IsolationRLS},
		{Default: "", Providers: map[tenancy.Isolation]isolation.Provider{tenancy.IsolationRLS: pg}},
		{Default: tenancy.IsolationRLS, Tiers: map[string]tenancy.Isolation{"x": tenancy.IsolationSchema},
			Providers: map[tenancy.Isolation]isolation.Provider{tenancy.IsolationRLS: pg}},
		{Default: tenancy.IsolationRLS,
			Providers: map[tenancy.Isolation]isolation.Provider{tenancy.IsolationRLS: pg, tenancy.IsolationDatabase: lite}},
	}
	for i, cfg := range bad {
		if _, err := isolation.NewHybrid(cfg); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
}

// TestHybridDestroysEverywhere: a tenant that changed tier may have data
// under its old strategy, so Destroy reaches every provider.
func TestHybridDestroysEverywhere(t *testing.T) {
	t.Parallel()
	rls := &recorder{dialect: isolation.Postgres}
	schema := &recorder{dialect: isolation.Postgres}
	h, err := isolation.NewHybrid(isolation.HybridConfig{
		Tiers:     map[string]tenancy.Isolation{"enterprise": tenancy.IsolationSchema},
		Default:   tenancy.IsolationRLS,
		Providers: map[tenancy.Isolation]isolation.Provider{tenancy.IsolationRLS: rls, tenancy.IsolationSchema: schema},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Destroy(context.Background(), &tenancy.Tenant{ID: "moved", Tier: "enterprise"}); err != nil {
		t.Fatal(err)
	}
	if len(rls.destroyed) != 1 || len(schema.destroyed) != 1 {
		t.Fatalf("destroyed in rls %v, schema %v", rls.destroyed, schema.destroyed)
	}
	// A tenant whose strategy has no provider is an error, not a silent skip.
	if _, err := h.Targets([]*tenancy.Tenant{{ID: "a", Tier: "enterprise"}, {ID: "b", Isolation: tenancy.IsolationDatabase}}); err == nil {
		t.Fatal("Targets skipped a tenant without a provider")
	}
	targets, err := h.Targets([]*tenancy.Tenant{{ID: "a", Tier: "enterprise"}, {ID: "b"}})
	if err != nil || len(targets) != 2 {
		t.Fatalf("targets %v, %v", targets, err)
	}
}
