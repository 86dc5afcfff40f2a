package resolve_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/memstore"
)

// takeover is a store, behind the cache, with acme-corp (alias "acme") and
// bravo, a tenant that tries to take acme's subdomains.
type takeover struct {
	store *memstore.Store
	cache *cache.Store
	acme  *tenancy.Tenant
	bravo *tenancy.Tenant
}

func takeoverSetup(t *testing.T) *takeover {
	t.Helper()
	ctx := context.Background()
	s := memstore.New()
	acme, err := s.Create(ctx, &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme", Aliases: []string{"acme"}})
	if err != nil {
		t.Fatal(err)
	}
	bravo, err := s.Create(ctx, &tenancy.Tenant{ID: "t-bravo", Identifier: "bravo", Name: "Bravo"})
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(s, cache.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { _ = c.Close() })
	return &takeover{store: s, cache: c, acme: acme, bravo: bravo}
}

// TestHostTakeoverRefused is the reproduction of the issue and its
// variants: tenant B tries to answer for acme's subdomain by a custom
// domain, an alias or an identifier.
func TestHostTakeoverRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	x := takeoverSetup(t)
	host := resolve.Host{BaseDomain: "localhost", Lookup: x.cache}
	resolveHost := func(t *testing.T, h string) (resolve.Result, error) {
		t.Helper()
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = h
		return host.Resolve(r)
	}

	// B registers acme.localhost (and more under the base domain) as custom
	// domains straight in the store, past any admin check, and even marks
	// them verified: the resolver still answers with acme, or no one.
	for _, d := range []string{"acme.localhost", "acme-corp.localhost", "www.acme.localhost", "nobody.localhost"} {
		if _, err := x.cache.AddDomain(ctx, x.bravo.ID, d); err != nil {
			t.Fatalf("AddDomain(%s): %v", d, err)
		}
		if _, err := x.cache.VerifyDomain(ctx, x.bravo.ID, d); err != nil {
			t.Fatalf("VerifyDomain(%s): %v", d, err)
		}
	}
	for _, c := range []struct {
		host string
		w    want
	}{
		{"acme.localhost", ok("t-acme")},
		{"ACME.localhost.:8000", ok("t-acme")},
		{"acme-corp.localhost", ok("t-acme")},
		{"www.acme.localhost", fails(tenancy.ErrNoTenant)},
		{"nobody.localhost", fails(tenancy.ErrTenantNotFound)},
		{"bravo.localhost", ok("t-bravo")},
	} {
		res, err := resolveHost(t, c.host)
		check(t, res, err, c.w)
	}

	// B takes acme's alias as an alias: refused, acme keeps it.
	_, err := x.cache.Update(ctx, x.bravo.ID, tenancy.Update{Aliases: &[]string{"acme"}})
	wantDup(t, err, "alias", "acme")
	// B takes acme's identifier as an alias: refused.
	_, err = x.cache.Update(ctx, x.bravo.ID, tenancy.Update{Aliases: &[]string{"acme-corp"}})
	wantDup(t, err, "alias", "acme-corp")
	// A new tenant identified as acme's alias: refused.
	_, err = x.cache.Create(ctx, &tenancy.Tenant{Identifier: "acme", Name: "Impostor"})
	wantDup(t, err, "identifier", "acme")
	// A new tenant with acme's alias or identifier as its alias: refused.
	_, err = x.cache.Create(ctx, &tenancy.Tenant{Identifier: "impostor", Name: "Impostor", Aliases: []string{"ACME"}})
	wantDup(t, err, "alias", "acme")
	_, err = x.cache.Create(ctx, &tenancy.Tenant{Identifier: "impostor", Name: "Impostor", Aliases: []string{"acme-corp"}})
	wantDup(t, err, "alias", "acme-corp")
	for _, h := range []string{"acme.localhost", "acme-corp.localhost"} {
		res, err := resolveHost(t, h)
		check(t, res, err, ok("t-acme"))
	}
	if _, err := resolveHost(t, "impostor.localhost"); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Errorf("impostor.localhost: %v, want not found: no impostor was created", err)
	}
}

func wantDup(t *testing.T, err error, field, value string) {
	t.Helper()
	var dup *tenancy.DuplicateError
	if !errors.As(err, &dup) || dup.Field != field || dup.Value != value {
		t.Errorf("err = %v, want a DuplicateError for %s %q", err, field, value)
	}
}

// TestHostUnverifiedDomain checks that a custom domain answers exactly as an
// unknown host (404, the same body) until it is verified, and resolves at
// once when it is, through the cache that remembered "not found".
func TestHostUnverifiedDomain(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	x := takeoverSetup(t)
	if _, err := x.cache.AddDomain(ctx, x.bravo.ID, "app.bravo.test"); err != nil {
		t.Fatal(err)
	}
	host := resolve.Host{BaseDomain: "localhost", Lookup: x.cache}
	get := func(h string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Host = h
		return run(t, host, r)
	}
	unverified, unknown := get("app.bravo.test"), get("app.nobody.test")
	if unverified.Code != 404 {
		t.Errorf("unverified domain: status %d, want 404", unverified.Code)
	}
	expectError(t, unverified, tenancy.ErrTenantNotFound)
	if unverified.Code != unknown.Code || unverified.Body.String() != unknown.Body.String() {
		t.Errorf("unverified domain answers %d %q, an unknown one %d %q: want the same", unverified.Code, unverified.Body, unknown.Code, unknown.Body)
	}
	if _, err := x.cache.VerifyDomain(ctx, x.bravo.ID, "app.bravo.test"); err != nil {
		t.Fatal(err)
	}
	if rec := get("APP.bravo.test:443"); rec.Code != 200 || rec.Body.String() != "t-bravo /x" {
		t.Errorf("verified domain: %d %q, want t-bravo", rec.Code, rec.Body)
	}
	// Removed, it answers as an unknown host again.
	if err := x.cache.RemoveDomain(ctx, x.bravo.ID, "app.bravo.test"); err != nil {
		t.Fatal(err)
	}
	if rec := get("app.bravo.test"); rec.Code != unknown.Code || rec.Body.String() != unknown.Body.String() {
		t.Errorf("removed domain: %d %q, want the unknown host's answer", rec.Code, rec.Body)
	}
}
