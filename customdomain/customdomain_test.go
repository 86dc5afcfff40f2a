package customdomain_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/customdomain"
	"github.com/go-tenancy/tenancy/store/memstore"
)

// fakeDNS answers TXT lookups from a map; a name it does not hold is
// NXDOMAIN, and err, when set, is returned for every lookup.
type fakeDNS struct {
	mu      sync.Mutex
	records map[string][]string
	err     error
	asked   []string
}

func (f *fakeDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, name)
	if f.err != nil {
		return nil, f.err
	}
	v, ok := f.records[name]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return v, nil
}

func (f *fakeDNS) publish(name string, values ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records[name] = values
}

type bundle struct {
	store *memstore.Store
	dns   *fakeDNS
	m     customdomain.Manager
	acme  *tenancy.Tenant
}

func setup(t *testing.T) *bundle {
	t.Helper()
	s := memstore.New()
	acme, err := s.Create(context.Background(), &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	dns := &fakeDNS{records: map[string][]string{}}
	return &bundle{store: s, dns: dns, acme: acme, m: customdomain.Manager{Store: s, BaseDomain: "Example.com.", Resolver: dns}}
}

func TestAddRefusesNamesUnderTheBaseDomain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, d := range []string{"example.com", "acme.example.com", "ACME.Example.COM.", "www.acme-corp.example.com", "acme", "10.0.0.1", "not a host"} {
		_, err := b.m.Add(t.Context(), b.acme.ID, d)
		var fe *tenancy.FieldError
		if !errors.As(err, &fe) || fe.Field != "domain" {
			t.Errorf("Add(%q) = %v, want a FieldError for domain", d, err)
		}
	}
	if l, _ := b.store.ListDomains(t.Context(), b.acme.ID); len(l) != 0 {
		t.Errorf("refused adds left domains: %+v", l)
	}
	// Names that merely end like the base domain are fine.
	for _, d := range []string{"notexample.com", "example.com.evil.test"} {
		if _, err := b.m.Add(t.Context(), b.acme.ID, d); err != nil {
			t.Errorf("Add(%q): %v", d, err)
		}
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setup(t)
	d, err := b.m.Add(ctx, b.acme.ID, "App.Acme.com")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "app.acme.com" || d.Verified() || d.Token == "" {
		t.Fatalf("Add = %+v", d)
	}
	unverified := func(what string) {
		t.Helper()
		if _, err := b.store.GetByDomain(ctx, "app.acme.com"); !errors.Is(err, tenancy.ErrTenantNotFound) {
			t.Errorf("%s: GetByDomain = %v, want not found", what, err)
		}
	}

	// No record.
	_, err = b.m.Verify(ctx, b.acme.ID, "app.acme.com")
	if !errors.Is(err, tenancy.ErrDomainNotVerified) {
		t.Errorf("without a record: %v, want ErrDomainNotVerified", err)
	}
	if len(b.dns.asked) != 1 || b.dns.asked[0] != "_tenancy-challenge.app.acme.com" {
		t.Errorf("looked up %q, want _tenancy-challenge.app.acme.com", b.dns.asked)
	}
	unverified("without a record")

	// A record with other values, one of them another claim's token.
	b.dns.publish("_tenancy-challenge.app.acme.com", "v=spf1 -all", "00000000000000000000000000000000")
	_, err = b.m.Verify(ctx, b.acme.ID, "app.acme.com")
	if !errors.Is(err, tenancy.ErrDomainNotVerified) {
		t.Errorf("with another token: %v, want ErrDomainNotVerified", err)
	}
	unverified("with another token")

	// The record at the domain itself, not at the challenge name, does not count.
	b.dns.publish("app.acme.com", d.Token)
	if _, err = b.m.Verify(ctx, b.acme.ID, "app.acme.com"); !errors.Is(err, tenancy.ErrDomainNotVerified) {
		t.Errorf("token at the domain, not the challenge name: %v", err)
	}

	// A DNS failure is not a verdict.
	b.dns.err = &net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}
	_, err = b.m.Verify(ctx, b.acme.ID, "app.acme.com")
	if err == nil || errors.Is(err, tenancy.ErrDomainNotVerified) {
		t.Errorf("DNS timeout: %v, want the resolver's error", err)
	}
	unverified("DNS timeout")
	b.dns.err = nil

	// The token, among other values.
	b.dns.publish("_tenancy-challenge.app.acme.com", "v=spf1 -all", " "+d.Token+" ")
	v, err := b.m.Verify(ctx, b.acme.ID, "APP.acme.com.")
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	if !v.Verified() || v.Token != d.Token {
		t.Errorf("Verify = %+v", v)
	}
	if got, err := b.store.GetByDomain(ctx, "app.acme.com"); err != nil || got.ID != b.acme.ID {
		t.Errorf("GetByDomain once verified = %v, %v", got, err)
	}

	// A failed check later does not take the domain offline.
	b.dns.publish("_tenancy-challenge.app.acme.com")
	if _, err := b.m.Verify(ctx, b.acme.ID, "app.acme.com"); !errors.Is(err, tenancy.ErrDomainNotVerified) {
		t.Errorf("recheck without the record: %v", err)
	}
	if _, err := b.store.GetByDomain(ctx, "app.acme.com"); err != nil {
		t.Errorf("a failed recheck unverified the domain: %v", err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setup(t)
	other, err := b.store.Create(ctx, &tenancy.Tenant{ID: "t-other", Identifier: "other", Name: "Other", Domains: []string{"other.test"}})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := b.store.ListDomains(ctx, other.ID)
	b.dns.publish("_tenancy-challenge.other.test", l[0].Token)
	// Another tenant's domain, even with its record in place.
	if _, err := b.m.Verify(ctx, b.acme.ID, "other.test"); !errors.Is(err, tenancy.ErrDomainNotFound) {
		t.Errorf("another tenant's domain: %v, want ErrDomainNotFound", err)
	}
	if _, err := b.m.Verify(ctx, "t-nobody", "other.test"); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Errorf("unknown tenant: %v, want ErrTenantNotFound", err)
	}
	if _, err := b.m.Verify(ctx, b.acme.ID, "not a host"); !errors.Is(err, tenancy.ErrDomainNotFound) {
		t.Errorf("invalid domain: %v, want ErrDomainNotFound", err)
	}
	// A domain under the base domain written to the store past the check
	// is never verified, record or not.
	bad, err := b.store.AddDomain(ctx, b.acme.ID, "acme.example.com")
	if err != nil {
		t.Fatal(err)
	}
	b.dns.publish("_tenancy-challenge.acme.example.com", bad.Token)
	var fe *tenancy.FieldError
	if _, err := b.m.Verify(ctx, b.acme.ID, "acme.example.com"); !errors.As(err, &fe) {
		t.Errorf("domain under the base domain: %v, want a FieldError", err)
	}
	if l, _ := b.store.ListDomains(ctx, b.acme.ID); len(l) != 1 || l[0].Verified() {
		t.Errorf("ListDomains = %+v", l)
	}
}

func TestManagerNeedsItsConfiguration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, m := range map[string]customdomain.Manager{
		"no base domain":  {Store: b.store, Resolver: b.dns},
		"base domain '.'": {Store: b.store, BaseDomain: ".", Resolver: b.dns},
		"no store":        {BaseDomain: "example.com", Resolver: b.dns},
	} {
		if _, err := m.Add(t.Context(), b.acme.ID, "app.acme.com"); err == nil {
			t.Errorf("%s: Add succeeded", name)
		}
		if _, err := m.Verify(t.Context(), b.acme.ID, "app.acme.com"); err == nil {
			t.Errorf("%s: Verify succeeded", name)
		}
	}
	if l, _ := b.store.ListDomains(t.Context(), b.acme.ID); len(l) != 0 {
		t.Errorf("misconfigured managers added %+v", l)
	}
}
