package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/store/memstore"
)

// fakeDNS answers TXT lookups from a map; other names are NXDOMAIN.
type fakeDNS struct {
	mu      sync.Mutex
	records map[string][]string
}

func (f *fakeDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.records[name]; ok {
		return v, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (f *fakeDNS) publish(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records[name] = []string{value}
}

// domainHarness runs the CLI over a memory store with acme-corp (alias
// "acme") and bravo, on the base domain example.com.
func domainHarness(t *testing.T, base string) (*harness, *memstore.Store, *fakeDNS) {
	t.Helper()
	store := memstore.New()
	seed(t, store,
		&tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme Corp", Aliases: []string{"acme"}},
		&tenancy.Tenant{ID: "t-bravo", Identifier: "bravo", Name: "Bravo"},
	)
	dns := &fakeDNS{records: map[string][]string{}}
	h := newHarness(t, func(context.Context, admin.Connect) (*admin.Env, error) {
		return &admin.Env{Store: store, Persistent: true, BaseDomain: base, DNS: dns}, nil
	})
	return h, store, dns
}

func TestDomainCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, store, dns := domainHarness(t, "example.com")

	// The takeover of the issue, through the CLI: refused.
	for _, d := range []string{"acme.example.com", "ACME.example.com.", "example.com", "www.acme.example.com"} {
		h.run("tenants", "domain", "add", "bravo", d).wantError(t, admin.ExitFailure, "a custom domain cannot be the base domain or a name under it")
	}
	h.run("tenants", "domain", "add", "bravo", "acme").wantError(t, admin.ExitUsage, `invalid custom domain "acme"`)
	h.run("tenants", "domain", "add", "bravo", "10.0.0.1").wantError(t, admin.ExitUsage, `invalid custom domain "10.0.0.1"`)
	h.run("tenants", "domain", "add", "nobody", "app.nobody.com").wantError(t, admin.ExitFailure, `tenant "nobody" not found`)

	r := h.run("tenants", "domain", "add", "acme-corp", "App.Acme.com")
	r.wantOK(t)
	l, err := store.ListDomains(ctx, "t-acme")
	if err != nil || len(l) != 1 || l[0].Verified() {
		t.Fatalf("ListDomains = %+v, %v", l, err)
	}
	token := l[0].Token
	want := "added app.acme.com to acme-corp, unverified: it resolves once verified\n" +
		"publish this DNS record, then run \"testcli tenants domain verify acme-corp app.acme.com\":\n" +
		"  _tenancy-challenge.app.acme.com. TXT \"" + token + "\"\n"
	if r.stdout != want {
		t.Errorf("domain add printed %q, want %q", r.stdout, want)
	}
	// Another tenant cannot claim it.
	h.run("tenants", "domain", "add", "bravo", "app.acme.com").wantError(t, admin.ExitFailure, `tenant domain "app.acme.com" is already taken`)

	// Verification fails until the record holds the token.
	h.run("tenants", "domain", "verify", "acme-corp", "app.acme.com").wantError(t, admin.ExitFailure, "no TXT record at _tenancy-challenge.app.acme.com")
	dns.publish("_tenancy-challenge.app.acme.com", "not-the-token")
	h.run("tenants", "domain", "verify", "acme-corp", "app.acme.com").wantError(t, admin.ExitFailure, "none of them the domain's token")
	if _, err := store.GetByDomain(ctx, "app.acme.com"); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Fatalf("GetByDomain before verification: %v", err)
	}
	h.run("tenants", "domain", "verify", "bravo", "app.acme.com").wantError(t, admin.ExitFailure, `tenant "bravo" has no custom domain app.acme.com`)
	dns.publish("_tenancy-challenge.app.acme.com", token)
	r = h.run("tenants", "domain", "verify", "acme-corp", "app.acme.com")
	r.wantOK(t)
	if r.stdout != "app.acme.com is verified for acme-corp\n" {
		t.Errorf("verify printed %q", r.stdout)
	}
	if got, err := store.GetByDomain(ctx, "app.acme.com"); err != nil || got.ID != "t-acme" {
		t.Fatalf("GetByDomain after verification = %v, %v", got, err)
	}

	// list, as a table and as JSON.
	if _, err := store.AddDomain(ctx, "t-acme", "shop.acme.io"); err != nil {
		t.Fatal(err)
	}
	r = h.run("tenants", "domain", "list", "acme-corp")
	r.wantOK(t)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "DOMAIN") ||
		!strings.HasPrefix(lines[1], "app.acme.com ") || !strings.Contains(lines[1], " verified ") ||
		!strings.HasPrefix(lines[2], "shop.acme.io ") || !strings.Contains(lines[2], " unverified ") ||
		!strings.Contains(lines[2], "_tenancy-challenge.shop.acme.io TXT \"") {
		t.Errorf("domain list:\n%s", r.stdout)
	}
	r = h.run("tenants", "domain", "list", "--json", "acme-corp")
	r.wantOK(t)
	var listed []tenancy.Domain
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 2 || !listed[0].Verified() || listed[0].Token != token || listed[1].Verified() {
		t.Errorf("domain list --json = %+v, %v", listed, err)
	}
	r = h.run("tenants", "domain", "list", "bravo")
	r.wantOK(t)
	if r.stdout != "bravo has no custom domains\n" {
		t.Errorf("domain list of a tenant without domains printed %q", r.stdout)
	}

	// remove.
	r = h.run("tenants", "domain", "remove", "acme-corp", "app.acme.com")
	r.wantOK(t)
	if r.stdout != "removed app.acme.com from acme-corp\n" {
		t.Errorf("remove printed %q", r.stdout)
	}
	if _, err := store.GetByDomain(ctx, "app.acme.com"); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Errorf("GetByDomain after remove: %v", err)
	}
	h.run("tenants", "domain", "remove", "acme-corp", "app.acme.com").wantError(t, admin.ExitFailure, `tenant "acme-corp" has no custom domain app.acme.com`)
}

func TestDomainCommandsRefused(t *testing.T) {
	t.Parallel()
	// Without a base domain nothing is added: the check could not run.
	h, store, _ := domainHarness(t, "")
	h.run("tenants", "domain", "add", "acme-corp", "app.acme.com").wantError(t, admin.ExitFailure, "custom domains need the service's base domain")
	h.run("tenants", "domain", "verify", "acme-corp", "app.acme.com").wantError(t, admin.ExitFailure, "custom domains need the service's base domain")
	if l, _ := store.ListDomains(context.Background(), "t-acme"); len(l) != 0 {
		t.Errorf("domains added without a base domain: %+v", l)
	}
	// A store in the CLI's memory takes no writes.
	mem := storeHarness(t, memstore.New(), false)
	mem.run("tenants", "domain", "add", "acme-corp", "app.acme.com").wantError(t, admin.ExitFailure, "the tenant store is in memory")
	mem.run("tenants", "alias", "add", "acme-corp", "acme").wantError(t, admin.ExitFailure, "the tenant store is in memory")
	// Usage errors.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tenants", "domain"}, "tenants domain: missing command"},
		{[]string{"tenants", "domain", "park", "acme-corp"}, `tenants domain: unknown command "park"`},
		{[]string{"tenants", "domain", "add", "acme-corp"}, "tenants domain add: missing DOMAIN"},
		{[]string{"tenants", "domain", "list", "acme-corp", "x.com"}, `unexpected argument "x.com"`},
		{[]string{"tenants", "domain", "add", "ACME", "x.com"}, `invalid tenant identifier "ACME"`},
		{[]string{"tenants", "alias", "add", "acme-corp", "a.b"}, `invalid alias "a.b"`},
		{[]string{"tenants", "alias", "drop", "acme-corp", "a"}, `tenants alias: unknown command "drop"`},
	} {
		h.run(c.args...).wantError(t, admin.ExitUsage, c.want)
	}
	r := h.run("help", "tenants")
	r.wantOK(t)
	if !strings.Contains(r.stdout, "\n  domain ") {
		t.Errorf("help tenants does not show the domain commands:\n%s", r.stdout)
	}
	r = h.run("tenants", "domain", "--help")
	r.wantOK(t)
	if !strings.Contains(r.stdout, "_tenancy-challenge.<domain>") {
		t.Errorf("tenants domain --help:\n%s", r.stdout)
	}
}

func TestAliasCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, store, _ := domainHarness(t, "example.com")
	// Bravo cannot take acme's alias or identifier.
	h.run("tenants", "alias", "add", "bravo", "ACME").wantError(t, admin.ExitFailure, `tenant alias "acme" is already taken`)
	h.run("tenants", "alias", "add", "bravo", "acme-corp").wantError(t, admin.ExitFailure, `tenant alias "acme-corp" is already taken`)
	h.run("tenants", "alias", "add", "bravo", "bravo").wantError(t, admin.ExitFailure, "an alias must differ from the tenant's identifier")

	r := h.run("tenants", "alias", "add", "bravo", "bv")
	r.wantOK(t)
	if r.stdout != "bravo answers to the alias bv\n" {
		t.Errorf("alias add printed %q", r.stdout)
	}
	h.run("tenants", "alias", "add", "bravo", "bv").wantOK(t) // already there
	if got, err := store.GetByAlias(ctx, "bv"); err != nil || got.ID != "t-bravo" {
		t.Fatalf("GetByAlias(bv) = %v, %v", got, err)
	}
	r = h.run("tenants", "alias", "remove", "--json", "bravo", "bv")
	r.wantOK(t)
	var out tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Aliases) != 0 {
		t.Errorf("alias remove --json = %+v, %v", out, err)
	}
	h.run("tenants", "alias", "remove", "bravo", "bv").wantError(t, admin.ExitFailure, `tenant "bravo" has no alias bv`)
	if got, err := store.GetByAlias(ctx, "acme"); err != nil || got.ID != "t-acme" {
		t.Errorf("GetByAlias(acme) = %v, %v", got, err)
	}
}
