package resolve_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/store/memstore"
)

// Fixture tenants. acme-corp has the alias "acme" and the verified custom
// domain "app.acme.com"; globex has the alias "ab", which is a valid host
// label but not a valid identifier, and the custom domain
// "shop.globex.test", which newStore leaves unverified.
var fixture = []*tenancy.Tenant{
	{ID: "t-acme", Identifier: "acme-corp", Name: "Acme", Tier: "pro", Aliases: []string{"acme"}, Domains: []string{"app.acme.com"}},
	{ID: "t-globex", Identifier: "globex", Name: "Globex", Aliases: []string{"ab"}, Domains: []string{"shop.globex.test"}},
	{ID: "t-initech", Identifier: "initech", Name: "Initech", Status: tenancy.StatusSuspended},
	{ID: "t-umbrella", Identifier: "umbrella", Name: "Umbrella", Status: tenancy.StatusDeleted},
	{ID: "t-hooli", Identifier: "hooli", Name: "Hooli", Status: tenancy.StatusProvisioning},
	{ID: "t-piedpiper", Identifier: "pied-piper", Name: "Pied Piper", Status: tenancy.StatusFailed},
}

func newStore(t testing.TB) *memstore.Store {
	t.Helper()
	s := memstore.New()
	for _, f := range fixture {
		if _, err := s.Create(context.Background(), f); err != nil {
			t.Fatalf("create %s: %v", f.Identifier, err)
		}
	}
	if _, err := s.VerifyDomain(context.Background(), "t-acme", "app.acme.com"); err != nil {
		t.Fatal(err)
	}
	return s
}

// strictLookup fails the test when a resolver hands it anything unvalidated:
// an invalid identifier, or a domain that is not a normalized host name.
type strictLookup struct {
	t     testing.TB
	store tenancy.Store
}

func (l strictLookup) GetByIdentifier(ctx context.Context, id string) (*tenancy.Tenant, error) {
	if tenancy.ValidateIdentifier(id) != nil {
		l.t.Errorf("Lookup.GetByIdentifier got an invalid identifier %q", id)
	}
	return l.store.GetByIdentifier(ctx, id)
}

func (l strictLookup) GetByAlias(ctx context.Context, a string) (*tenancy.Tenant, error) {
	n, ok := tenancy.NormalizeAlias(a)
	if !ok || n != a {
		l.t.Errorf("Lookup.GetByAlias got an alias that is not normalized: %q", a)
	}
	return l.store.GetByAlias(ctx, a)
}

func (l strictLookup) GetByDomain(ctx context.Context, d string) (*tenancy.Tenant, error) {
	n, ok := tenancy.NormalizeDomain(d)
	if !ok || n != d {
		l.t.Errorf("Lookup.GetByDomain got a domain that is not a normalized custom domain: %q", d)
	}
	if _, err := netip.ParseAddr(d); err == nil {
		l.t.Errorf("Lookup.GetByDomain got an IP address %q", d)
	}
	return l.store.GetByDomain(ctx, d)
}

// Bad inputs from the issue, used as table cases and fuzz seeds.
var badIdentifiers = []string{
	"",
	" ",
	"\t",
	" acme-corp",
	"acme-corp ",
	"acme-corp\n",
	"ACME-CORP",
	"Acme-corp",
	"аcme-corp", // Cyrillic а
	"ａｃｍｅ-corp", // fullwidth
	"acme-corp\u200b",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", // 64
	`a"; drop schema public; --`,
	"../x",
	"../../etc",
	"acme%2dcorp",
	"acme-",
	"1acme",
	"ab",
	"acme_corp",
	"acme\x00corp",
}
