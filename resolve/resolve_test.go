package resolve_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/jwtauth"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/golang-jwt/jwt/v5"
)

// want is the expected outcome of a resolution: a tenant ID, or an error
// that the result must wrap.
type want struct {
	id  string
	err error
}

func ok(id string) want    { return want{id: id} }
func fails(err error) want { return want{err: err} }

func check(t *testing.T, res resolve.Result, err error, w want) {
	t.Helper()
	if w.err != nil {
		if !errors.Is(err, w.err) {
			t.Fatalf("Resolve = %+v, %v; want error %v", res, err, w.err)
		}
		for _, s := range []error{tenancy.ErrNoTenant, tenancy.ErrInvalidIdentifier, tenancy.ErrTenantNotFound, tenancy.ErrTenantConflict, tenancy.ErrUnauthenticated} {
			if s != w.err && errors.Is(err, s) {
				t.Fatalf("error %v wraps %v too", err, s)
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if res.Tenant == nil || res.Tenant.ID != w.id {
		t.Fatalf("Resolve = %+v, want tenant %s", res.Tenant, w.id)
	}
}

func TestHeader(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	tests := []struct {
		name   string
		header string
		values []string
		w      want
	}{
		{"absent", "", nil, fails(tenancy.ErrNoTenant)},
		{"identifier", "", []string{"acme-corp"}, ok("t-acme")},
		{"suspended still resolves", "", []string{"initech"}, ok("t-initech")},
		{"unknown", "", []string{"nobody"}, fails(tenancy.ErrTenantNotFound)},
		{"alias is not an identifier", "", []string{"acme"}, fails(tenancy.ErrTenantNotFound)},
		{"repeated, same", "", []string{"globex", "globex"}, ok("t-globex")},
		{"repeated, different", "", []string{"globex", "acme-corp"}, fails(tenancy.ErrTenantConflict)},
		{"custom name", "x-org", []string{"globex"}, ok("t-globex")},
	}
	for _, v := range badIdentifiers {
		tests = append(tests, struct {
			name   string
			header string
			values []string
			w      want
		}{"bad " + v, "", []string{v}, fails(tenancy.ErrInvalidIdentifier)})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			if tt.values != nil {
				// Set raw, as a hostile client's bytes would arrive.
				r.Header[http.CanonicalHeaderKey(orDefault(tt.header, resolve.DefaultHeader))] = tt.values
			}
			res, err := resolve.Header{Name: tt.header, Lookup: strictLookup{t, store}}.Resolve(r)
			check(t, res, err, tt.w)
			if err == nil && res.Source != resolve.SourceHeader {
				t.Errorf("Source = %q", res.Source)
			}
		})
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestHost(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	const untrustedPeer, trustedPeer = "203.0.113.9:4321", "10.1.2.3:5555"
	tests := []struct {
		name    string
		base    string
		host    string
		peer    string
		fwd     []string
		noTrust bool
		w       want
	}{
		{"subdomain", "example.com", "acme-corp.example.com", "", nil, false, ok("t-acme")},
		{"uppercase", "example.com", "ACME-CORP.Example.COM", "", nil, false, ok("t-acme")},
		{"port", "example.com", "acme-corp.example.com:8443", "", nil, false, ok("t-acme")},
		{"trailing dot", "example.com", "acme-corp.example.com.", "", nil, false, ok("t-acme")},
		{"trailing dot and port", "example.com", "acme-corp.example.com.:80", "", nil, false, ok("t-acme")},
		{"base with dot and case", "Example.COM.", "acme-corp.example.com", "", nil, false, ok("t-acme")},
		{"alias", "example.com", "acme.example.com", "", nil, false, ok("t-acme")},
		{"alias not an identifier", "example.com", "ab.example.com", "", nil, false, ok("t-globex")},
		{"custom domain", "example.com", "app.acme.com", "", nil, false, ok("t-acme")},
		{"custom domain upper, port", "example.com", "APP.ACME.COM:443", "", nil, false, ok("t-acme")},
		{"custom domain without base", "", "app.acme.com", "", nil, false, ok("t-acme")},
		{"subdomain without base: a domain no tenant has", "", "acme-corp.example.com", "", nil, false, fails(tenancy.ErrTenantNotFound)},
		{"unverified custom domain", "example.com", "shop.globex.test", "", nil, false, fails(tenancy.ErrTenantNotFound)},
		{"localhost", "localhost", "acme-corp.localhost:8000", "", nil, false, ok("t-acme")},
		{"bare localhost", "localhost", "localhost:8000", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"bare base", "example.com", "example.com", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"outside base: a domain no tenant has", "example.com", "other.org", "", nil, false, fails(tenancy.ErrTenantNotFound)},
		{"suffix but not subdomain", "example.com", "acmeexample.com", "", nil, false, fails(tenancy.ErrTenantNotFound)},
		{"single label outside base", "example.com", "intranet:8080", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"alias is not a custom domain", "", "acme", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"two labels", "example.com", "www.acme-corp.example.com", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"unknown", "example.com", "nobody.example.com", "", nil, false, fails(tenancy.ErrTenantNotFound)},
		{"valid label, not an identifier, no alias", "example.com", strings.Repeat("a", 60) + ".example.com", "", nil, false, fails(tenancy.ErrTenantNotFound)},
		{"empty", "example.com", "", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"only port", "example.com", ":8080", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"bad port", "example.com", "acme-corp.example.com:x", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"IPv4", "example.com", "127.0.0.1", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"IPv4 port", "example.com", "127.0.0.1:8080", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"IPv4 trailing dot", "example.com", "127.0.0.1.", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"IPv6 port", "example.com", "[::1]:8000", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"IPv6 brackets", "example.com", "[::1]", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"IPv6 bare", "example.com", "::1", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"IPv6 zone", "example.com", "[fe80::1%25eth0]:80", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"Cyrillic label", "example.com", "аcme-corp.example.com", "", nil, false, fails(tenancy.ErrInvalidIdentifier)},
		{"fullwidth label", "example.com", "ａｃｍｅ.example.com", "", nil, false, fails(tenancy.ErrInvalidIdentifier)},
		{"64-byte label", "example.com", strings.Repeat("a", 64) + ".example.com", "", nil, false, fails(tenancy.ErrInvalidIdentifier)},
		{"injection label", "example.com", `a"; drop schema public; --.example.com`, "", nil, false, fails(tenancy.ErrInvalidIdentifier)},
		{"injection outside base", "example.com", `a"; drop schema public; --`, "", nil, false, fails(tenancy.ErrNoTenant)},
		{"underscore label", "example.com", "acme_corp.example.com", "", nil, false, fails(tenancy.ErrInvalidIdentifier)},
		{"underscore label, trailing dot", "example.com", "acme_corp.example.com.", "", nil, false, fails(tenancy.ErrInvalidIdentifier)},
		{"dot dot slash", "example.com", "../x", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"trailing newline", "example.com", "acme-corp.example.com\n", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"underscore service name", "example.com", "my_service:8080", "", nil, false, fails(tenancy.ErrNoTenant)},
		{"whitespace", "example.com", " ", "", nil, false, fails(tenancy.ErrNoTenant)},

		{"forwarded host from untrusted peer", "example.com", "example.com", untrustedPeer, []string{"acme-corp.example.com"}, false, fails(tenancy.ErrNoTenant)},
		{"forwarded host spoofing another tenant", "example.com", "globex.example.com", untrustedPeer, []string{"acme-corp.example.com"}, false, ok("t-globex")},
		{"forwarded host, no trusted proxies", "example.com", "globex.example.com", trustedPeer, []string{"acme-corp.example.com"}, true, ok("t-globex")},
		{"forwarded host from trusted peer", "example.com", "internal:8080", trustedPeer, []string{"acme-corp.example.com"}, false, ok("t-acme")},
		{"forwarded host list, the proxy's value wins", "example.com", "internal", trustedPeer, []string{"globex.example.com, acme-corp.example.com"}, false, ok("t-acme")},
		{"forwarded host repeated, the proxy's value wins", "example.com", "internal", trustedPeer, []string{"globex.example.com", "acme-corp.example.com"}, false, ok("t-acme")},
		{"forwarded host, IPv4-mapped trusted peer", "example.com", "internal", "[::ffff:10.1.2.3]:5555", []string{"acme-corp.example.com"}, false, ok("t-acme")},
		{"forwarded host, IPv6 trusted peer", "example.com", "internal", "[fd00::1]:5555", []string{"acme-corp.example.com"}, false, ok("t-acme")},
		{"forwarded host, empty, falls back to Host", "example.com", "globex.example.com", trustedPeer, []string{""}, false, ok("t-globex")},
		{"forwarded host, bad label", "example.com", "globex.example.com", trustedPeer, []string{"ACME_CORP.example.com"}, false, fails(tenancy.ErrInvalidIdentifier)},
		{"forwarded host, peer without port", "example.com", "internal", "10.1.2.3", []string{"acme-corp.example.com"}, false, ok("t-acme")},
		{"forwarded host, unparseable peer", "example.com", "internal", "@", []string{"acme-corp.example.com"}, false, fails(tenancy.ErrNoTenant)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.Host = tt.host
			if tt.peer != "" {
				r.RemoteAddr = tt.peer
			}
			if tt.fwd != nil {
				r.Header["X-Forwarded-Host"] = tt.fwd
			}
			h := resolve.Host{BaseDomain: tt.base, TrustedProxies: trusted, Lookup: strictLookup{t, store}}
			if tt.noTrust {
				h.TrustedProxies = nil
			}
			res, err := h.Resolve(r)
			check(t, res, err, tt.w)
			if err == nil && (res.Source != resolve.SourceHost || res.Path != "") {
				t.Errorf("Result = %+v", res)
			}
		})
	}
}

func TestPath(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	tests := []struct {
		name    string
		prefix  string
		target  string
		w       want
		path    string
		rawPath string
	}{
		{"bare", "", "/t/acme-corp", ok("t-acme"), "/", ""},
		{"slash", "", "/t/acme-corp/", ok("t-acme"), "/", ""},
		{"rest", "", "/t/acme-corp/notes/1?x=1", ok("t-acme"), "/notes/1", ""},
		{"escaped rest", "", "/t/acme-corp/files/a%2Fb", ok("t-acme"), "/files/a/b", "/files/a%2Fb"},
		{"custom prefix without slash", "/tenants", "/tenants/globex/x", ok("t-globex"), "/x", ""},
		{"custom prefix without leading slash", "org/", "/org/globex/x", ok("t-globex"), "/x", ""},
		{"root", "", "/", fails(tenancy.ErrNoTenant), "", ""},
		{"prefix without slash", "", "/t", fails(tenancy.ErrNoTenant), "", ""},
		{"other prefix", "", "/tx/acme-corp", fails(tenancy.ErrNoTenant), "", ""},
		{"uppercase prefix", "", "/T/acme-corp", fails(tenancy.ErrNoTenant), "", ""},
		{"not at start", "", "/api/t/acme-corp", fails(tenancy.ErrNoTenant), "", ""},
		{"empty identifier", "", "/t/", fails(tenancy.ErrInvalidIdentifier), "", ""},
		{"empty identifier with rest", "", "/t//x", fails(tenancy.ErrInvalidIdentifier), "", ""},
		{"uppercase", "", "/t/ACME-CORP/x", fails(tenancy.ErrInvalidIdentifier), "", ""},
		{"dot dot", "", "/t/../x", fails(tenancy.ErrInvalidIdentifier), "", ""},
		{"escaped newline", "", "/t/acme-corp%0A/x", fails(tenancy.ErrInvalidIdentifier), "", ""},
		{"escaped space", "", "/t/%20acme-corp", fails(tenancy.ErrInvalidIdentifier), "", ""},
		{"escaped identifier", "", "/t/%61cme-corp/x", fails(tenancy.ErrInvalidIdentifier), "", ""},
		{"escaped slash in identifier", "", "/t/acme-corp%2Fx/y", fails(tenancy.ErrInvalidIdentifier), "", ""},
		{"Cyrillic", "", "/t/%D0%B0cme-corp", fails(tenancy.ErrInvalidIdentifier), "", ""},
		{"injection", "", "/t/a%22;%20drop%20schema%20public;%20--", fails(tenancy.ErrInvalidIdentifier), "", ""},
		{"too long", "", "/t/" + strings.Repeat("a", 64), fails(tenancy.ErrInvalidIdentifier), "", ""},
		{"unknown", "", "/t/nobody/x", fails(tenancy.ErrTenantNotFound), "", ""},
		{"alias is not an identifier", "", "/t/acme/x", fails(tenancy.ErrTenantNotFound), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", tt.target, nil)
			res, err := resolve.Path{Prefix: tt.prefix, Lookup: strictLookup{t, store}}.Resolve(r)
			check(t, res, err, tt.w)
			if err != nil {
				return
			}
			if res.Path != tt.path || res.RawPath != tt.rawPath || res.Source != resolve.SourcePath {
				t.Errorf("Result = %+v, want Path %q RawPath %q", res, tt.path, tt.rawPath)
			}
		})
	}
}

var hmacKey = []byte("0123456789abcdef0123456789abcdef")

type jwtFixture struct {
	hs     *jwtauth.Verifier
	rs     *jwtauth.Verifier
	rsKey  *rsa.PrivateKey
	pubPEM []byte
}

var (
	jwtOnce sync.Once
	jwtFix  jwtFixture
)

func jwtSetup(t testing.TB) jwtFixture {
	t.Helper()
	jwtOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			panic(err)
		}
		hs, err := jwtauth.NewVerifier(jwtauth.Config{Algorithm: jwtauth.HS256, Key: hmacKey, Audience: "api"})
		if err != nil {
			panic(err)
		}
		rs, err := jwtauth.NewVerifier(jwtauth.Config{Algorithm: jwtauth.RS256, Key: &k.PublicKey, Audience: "api"})
		if err != nil {
			panic(err)
		}
		jwtFix = jwtFixture{hs: hs, rs: rs, rsKey: k, pubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
	})
	return jwtFix
}

// token signs claims for tenant with m and key; edit adjusts the claims.
func token(t testing.TB, m jwt.SigningMethod, key any, tenant any, edit func(jwt.MapClaims)) string {
	t.Helper()
	c := jwt.MapClaims{"sub": "user-1", "aud": "api", "exp": time.Now().Add(time.Hour).Unix()}
	if tenant != nil {
		c["tenant_id"] = tenant
	}
	if edit != nil {
		edit(c)
	}
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func TestJWT(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	fx := jwtSetup(t)
	hs := func(tenant any, edit func(jwt.MapClaims)) string {
		return token(t, jwt.SigningMethodHS256, hmacKey, tenant, edit)
	}
	good := hs("acme-corp", nil)
	tests := []struct {
		name     string
		rs       bool
		auth     []string
		optional bool
		w        want
	}{
		{"good", false, []string{"Bearer " + good}, false, ok("t-acme")},
		{"lowercase scheme", false, []string{"bearer " + good}, false, ok("t-acme")},
		{"extra spaces", false, []string{"Bearer   " + good}, false, ok("t-acme")},
		{"RS256 good", true, []string{"Bearer " + token(t, jwt.SigningMethodRS256, fx.rsKey, "globex", nil)}, false, ok("t-globex")},
		{"missing", false, nil, false, fails(tenancy.ErrUnauthenticated)},
		{"missing, optional", false, nil, true, fails(tenancy.ErrNoTenant)},
		{"basic scheme", false, []string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, false, fails(tenancy.ErrUnauthenticated)},
		{"basic scheme, optional", false, []string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, true, fails(tenancy.ErrNoTenant)},
		{"Bearerx scheme, optional", false, []string{"Bearerx " + good}, true, fails(tenancy.ErrNoTenant)},
		{"empty header", false, []string{""}, false, fails(tenancy.ErrUnauthenticated)},
		{"bearer without token", false, []string{"Bearer"}, true, fails(tenancy.ErrUnauthenticated)},
		{"bearer with blank token", false, []string{"Bearer   "}, true, fails(tenancy.ErrUnauthenticated)},
		{"two Authorization headers", false, []string{"Bearer " + good, "Bearer " + good}, true, fails(tenancy.ErrUnauthenticated)},
		{"garbage, optional", false, []string{"Bearer garbage"}, true, fails(tenancy.ErrUnauthenticated)},
		{"trailing newline", false, []string{"Bearer " + good + "\n"}, false, fails(tenancy.ErrUnauthenticated)},
		{"alg none", false, []string{"Bearer " + token(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "acme-corp", nil)}, true, fails(tenancy.ErrUnauthenticated)},
		{"HS/RS confusion", true, []string{"Bearer " + token(t, jwt.SigningMethodHS256, fx.pubPEM, "acme-corp", nil)}, true, fails(tenancy.ErrUnauthenticated)},
		{"expired", false, []string{"Bearer " + hs("acme-corp", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })}, true, fails(tenancy.ErrUnauthenticated)},
		{"no exp", false, []string{"Bearer " + hs("acme-corp", func(c jwt.MapClaims) { delete(c, "exp") })}, true, fails(tenancy.ErrUnauthenticated)},
		{"not yet valid", false, []string{"Bearer " + hs("acme-corp", func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })}, true, fails(tenancy.ErrUnauthenticated)},
		{"wrong audience", false, []string{"Bearer " + hs("acme-corp", func(c jwt.MapClaims) { c["aud"] = "other" })}, true, fails(tenancy.ErrUnauthenticated)},
		{"missing tenant claim", false, []string{"Bearer " + hs(nil, nil)}, true, fails(tenancy.ErrUnauthenticated)},
		{"uppercase tenant claim", false, []string{"Bearer " + hs("ACME-CORP", nil)}, true, fails(tenancy.ErrUnauthenticated)},
		{"injection tenant claim", false, []string{"Bearer " + hs(`a"; drop schema public; --`, nil)}, true, fails(tenancy.ErrUnauthenticated)},
		{"unknown tenant", false, []string{"Bearer " + hs("nobody", nil)}, false, fails(tenancy.ErrTenantNotFound)},
		{"suspended tenant resolves (middleware refuses it)", false, []string{"Bearer " + hs("initech", nil)}, false, ok("t-initech")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			if tt.auth != nil {
				r.Header["Authorization"] = tt.auth
			}
			v := fx.hs
			if tt.rs {
				v = fx.rs
			}
			res, err := resolve.JWT{Verifier: v, Lookup: strictLookup{t, store}, Optional: tt.optional}.Resolve(r)
			check(t, res, err, tt.w)
			if err != nil {
				if strings.Contains(err.Error(), "acme") || strings.Contains(err.Error(), "eyJ") {
					t.Errorf("error echoes the token: %v", err)
				}
				return
			}
			claims, ok := res.Claims.(*jwtauth.Claims)
			if res.Source != resolve.SourceJWT || !ok || claims.Tenant != res.Tenant.Identifier || claims.Subject != "user-1" {
				t.Errorf("Result = %+v", res)
			}
		})
	}
}

// fakeResolver returns a fixed result.
type fakeResolver struct {
	res resolve.Result
	err error
}

func (f fakeResolver) Resolve(*http.Request) (resolve.Result, error) { return f.res, f.err }

func TestChain(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	lookup := strictLookup{t, store}
	good := token(t, jwt.SigningMethodHS256, hmacKey, "acme-corp", nil)
	fx := jwtSetup(t)
	jwtR := resolve.JWT{Verifier: fx.hs, Lookup: lookup, Optional: true}
	header := resolve.Header{Lookup: lookup}
	host := resolve.Host{BaseDomain: "example.com", Lookup: lookup}
	path := resolve.Path{Lookup: lookup}
	boom := errors.New("store down")

	tests := []struct {
		name   string
		chain  resolve.Resolver
		target string
		host   string
		header string
		token  string
		w      want
		source string
		path   string
		claims bool
	}{
		{"nothing", resolve.Chain(jwtR, header, host), "/", "example.com", "", "", fails(tenancy.ErrNoTenant), "", "", false},
		{"empty chain", resolve.Chain(), "/", "", "", "", fails(tenancy.ErrNoTenant), "", "", false},
		{"header only", resolve.Chain(jwtR, header), "/", "", "acme-corp", "", ok("t-acme"), "header", "", false},
		{"token only", resolve.Chain(jwtR, header), "/", "", "", good, ok("t-acme"), "jwt", "", true},
		{"token and same header", resolve.Chain(jwtR, header), "/", "", "acme-corp", good, ok("t-acme"), "jwt", "", true},
		{"header first keeps claims of the token", resolve.Chain(header, jwtR), "/", "", "acme-corp", good, ok("t-acme"), "header", "", true},
		{"token and other header", resolve.Chain(jwtR, header), "/", "", "globex", good, fails(tenancy.ErrTenantConflict), "", "", false},
		{"header then other token", resolve.Chain(header, jwtR), "/", "", "globex", good, fails(tenancy.ErrTenantConflict), "", "", false},
		{"token and suspended header", resolve.Chain(jwtR, header), "/", "", "initech", good, fails(tenancy.ErrTenantConflict), "", "", false},
		{"token and unknown header is a conflict", resolve.Chain(jwtR, header), "/", "", "nobody", good, fails(tenancy.ErrTenantConflict), "", "", false},
		{"unknown header then token is a conflict", resolve.Chain(header, jwtR), "/", "", "nobody", good, fails(tenancy.ErrTenantConflict), "", "", false},
		{"unknown header alone", resolve.Chain(jwtR, header), "/", "", "nobody", "", fails(tenancy.ErrTenantNotFound), "", "", false},
		{"token and invalid header", resolve.Chain(jwtR, header), "/", "", "ACME", good, fails(tenancy.ErrInvalidIdentifier), "", "", false},
		{"bad token and header", resolve.Chain(jwtR, header), "/", "", "acme-corp", "garbage", fails(tenancy.ErrUnauthenticated), "", "", false},
		{"alias host and identifier header agree", resolve.Chain(host, header), "/", "acme.example.com", "acme-corp", "", ok("t-acme"), "host", "", false},
		{"custom domain and other header", resolve.Chain(host, header), "/", "app.acme.com", "globex", "", fails(tenancy.ErrTenantConflict), "", "", false},
		{"unknown domain and header: the header decides", resolve.Chain(host, header), "/", "api.internal.test", "globex", "", ok("t-globex"), "header", "", false},
		{"unverified domain and header: the header decides", resolve.Chain(host, header), "/", "shop.globex.test", "acme-corp", "", ok("t-acme"), "header", "", false},
		{"unknown domain alone in a chain", resolve.Chain(host, header), "/", "api.internal.test", "", "", fails(tenancy.ErrTenantNotFound), "", "", false},
		{"unknown domain and unknown header", resolve.Chain(host, header), "/", "api.internal.test", "nobody", "", fails(tenancy.ErrTenantNotFound), "", "", false},
		{"unknown subdomain and header is a conflict", resolve.Chain(host, header), "/", "nobody.example.com", "globex", "", fails(tenancy.ErrTenantConflict), "", "", false},
		{"host and token disagree", resolve.Chain(jwtR, host), "/", "globex.example.com", "", good, fails(tenancy.ErrTenantConflict), "", "", false},
		{"later path still strips its prefix", resolve.Chain(header, path), "/t/acme-corp/notes", "", "acme-corp", "", ok("t-acme"), "header", "/notes", false},
		{"path and other header", resolve.Chain(path, header), "/t/acme-corp/notes", "", "globex", "", fails(tenancy.ErrTenantConflict), "", "", false},
		{"error stops the chain", resolve.Chain(fakeResolver{err: boom}, header), "/", "", "acme-corp", "", fails(boom), "", "", false},
		{"absent fake is skipped", resolve.Chain(fakeResolver{err: tenancy.ErrNoTenant}, header), "/", "", "acme-corp", "", ok("t-acme"), "header", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", tt.target, nil)
			r.Host = tt.host
			if tt.header != "" {
				r.Header.Set("X-Tenant-ID", tt.header)
			}
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			res, err := tt.chain.Resolve(r)
			check(t, res, err, tt.w)
			if err != nil {
				return
			}
			if res.Source != tt.source || res.Path != tt.path || (res.Claims != nil) != tt.claims {
				t.Errorf("Result = %+v; want source %q path %q claims %v", res, tt.source, tt.path, tt.claims)
			}
		})
	}
}

func TestChainDoesNotAliasItsArguments(t *testing.T) {
	t.Parallel()
	rs := []resolve.Resolver{fakeResolver{err: tenancy.ErrNoTenant}}
	c := resolve.Chain(rs...)
	rs[0] = fakeResolver{err: errors.New("changed")}
	if _, err := c.Resolve(httptest.NewRequest("GET", "/", nil)); !errors.Is(err, tenancy.ErrNoTenant) {
		t.Fatalf("Resolve = %v", err)
	}
}

func TestMisconfiguredResolversFailClosed(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/t/acme-corp", nil)
	r.Host = "acme-corp.example.com"
	r.Header.Set("X-Tenant-ID", "acme-corp")
	r.Header.Set("Authorization", "Bearer x")
	store := newStore(t)
	for name, res := range map[string]resolve.Resolver{
		"header":          resolve.Header{},
		"host":            resolve.Host{BaseDomain: "example.com"},
		"path":            resolve.Path{},
		"jwt":             resolve.JWT{Verifier: jwtSetup(t).hs},
		"jwt no verifier": resolve.JWT{Lookup: store},
		"nil tenant":      resolve.Chain(fakeResolver{}),
	} {
		if got, err := res.Resolve(r); err == nil || got.Tenant != nil || errors.Is(err, tenancy.ErrNoTenant) {
			t.Errorf("%s: Resolve = %+v, %v; want a non-absent error", name, got, err)
		}
	}
}

func TestPathRequestURLUntouched(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/t/acme-corp/x", nil)
	before := *r.URL
	if _, err := (resolve.Path{Lookup: newStore(t)}).Resolve(r); err != nil {
		t.Fatal(err)
	}
	if *r.URL != before {
		t.Fatalf("URL changed: %v", r.URL)
	}
}
