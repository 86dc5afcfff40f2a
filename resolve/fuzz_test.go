package resolve_test

// Fuzz targets: each drives one resolver through the real middleware with a
// Lookup that fails the test when handed anything unvalidated, and checks
// the response against a model: the documented status, and a problem+json
// body equal byte for byte to the canonical one, so no input is echoed.
// Their seeds (f.Add) run in every go test; explore further with, e.g.,
//
//	go test -run '^$' -fuzz '^FuzzHeader$' -fuzztime 30s ./resolve

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/golang-jwt/jwt/v5"
)

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// echo answers 200 with the tenant ID and the path the handler saw.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	t, ok := tenancy.FromContext(r.Context())
	if !ok {
		http.Error(w, "no tenant in context", 500)
		return
	}
	_, _ = io.WriteString(w, t.ID+" "+r.URL.Path)
})

func run(t *testing.T, res resolve.Resolver, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	middleware.New(middleware.Config{Resolver: res, Logger: discardLogger})(echo).ServeHTTP(rec, r)
	return rec
}

// expectError checks that rec is exactly the problem details of want.
func expectError(t *testing.T, rec *httptest.ResponseRecorder, want error) {
	t.Helper()
	d := problem.FromError(want)
	if rec.Code != d.Status {
		t.Fatalf("status %d, want %d (%s); body %s", rec.Code, d.Status, d.Type, rec.Body)
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(d)
	if !bytes.Equal(rec.Body.Bytes(), buf.Bytes()) {
		t.Fatalf("body %s, want %s", rec.Body, buf.Bytes())
	}
	if rec.Header().Get("Content-Type") != problem.ContentType {
		t.Fatalf("Content-Type %q", rec.Header().Get("Content-Type"))
	}
	for k := range d.Header {
		if rec.Header().Get(k) != d.Header.Get(k) {
			t.Fatalf("%s = %q, want %q", k, rec.Header().Get(k), d.Header.Get(k))
		}
	}
}

// expectTenant checks the outcome for a valid identifier: the model looks
// the tenant up in the store and applies the status rules.
func expectTenant(t *testing.T, rec *httptest.ResponseRecorder, store tenancy.Store, identifier, path string) {
	t.Helper()
	tn, err := store.GetByIdentifier(t.Context(), identifier)
	if err == nil {
		err = tn.CheckStatus()
	}
	switch {
	case err == nil:
		if want := tn.ID + " " + path; rec.Code != 200 || rec.Body.String() != want {
			t.Fatalf("got %d %q, want 200 %q", rec.Code, rec.Body, want)
		}
	case errors.Is(err, tenancy.ErrTenantNotReady):
		expectError(t, rec, &tenancy.RetryAfterError{Err: err, After: middleware.DefaultRetryAfter})
	default:
		expectError(t, rec, err)
	}
}

// slugErrors maps a problem type back to the error it documents.
var slugErrors = map[string]error{
	problem.TypeBase + problem.SlugTenantMissing:   tenancy.ErrNoTenant,
	problem.TypeBase + problem.SlugTenantInvalid:   tenancy.ErrInvalidIdentifier,
	problem.TypeBase + problem.SlugTenantNotFound:  tenancy.ErrTenantNotFound,
	problem.TypeBase + problem.SlugTenantSuspended: tenancy.ErrTenantSuspended,
	problem.TypeBase + problem.SlugTenantDeleted:   tenancy.ErrTenantDeleted,
	problem.TypeBase + problem.SlugTenantNotReady:  &tenancy.RetryAfterError{Err: tenancy.ErrTenantNotReady, After: middleware.DefaultRetryAfter},
	problem.TypeBase + problem.SlugTenantConflict:  tenancy.ErrTenantConflict,
	problem.TypeBase + problem.SlugUnauthenticated: tenancy.ErrUnauthenticated,
}

// expectDocumented checks that rec is a 200 for a known tenant or one of the
// documented problems, exactly.
func expectDocumented(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code == 200 {
		id, _, _ := strings.Cut(rec.Body.String(), " ")
		for _, f := range fixture {
			if f.ID == id {
				return
			}
		}
		t.Fatalf("200 with unknown tenant: %q", rec.Body)
	}
	var d problem.Details
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatalf("status %d, body not JSON: %q", rec.Code, rec.Body)
	}
	want, ok := slugErrors[d.Type]
	if !ok {
		t.Fatalf("undocumented problem %d %q", rec.Code, d.Type)
	}
	expectError(t, rec, want)
}

func FuzzHeader(f *testing.F) {
	for _, s := range append(badIdentifiers, "acme-corp", "globex", "initech", "umbrella", "hooli", "pied-piper", "nobody", "acme") {
		f.Add(s)
	}
	store := newStore(f)
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header["X-Tenant-Id"] = []string{value}
		rec := run(t, resolve.Header{Lookup: strictLookup{t, store}}, r)
		if tenancy.ValidateIdentifier(value) != nil {
			expectError(t, rec, tenancy.ErrInvalidIdentifier)
			return
		}
		expectTenant(t, rec, store, value, "/x")
	})
}

func FuzzPath(f *testing.F) {
	for _, s := range badIdentifiers {
		f.Add("/t/" + s + "/x")
		f.Add("/t/" + s)
	}
	for _, s := range []string{"", "/", "/t", "/t/", "/t//", "/T/acme-corp", "t/acme-corp", "/t/acme-corp", "/t/acme-corp/", "/t/acme-corp/a/b", "/t/initech/x", "/t/hooli", "/t/nobody/x", "/t/acme-corp\n/x", "/t/../x", "/t/acme-corp/../../x"} {
		f.Add(s)
	}
	store := newStore(f)
	f.Fuzz(func(t *testing.T, path string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path, r.URL.RawPath = path, ""
		rec := run(t, resolve.Path{Lookup: strictLookup{t, store}}, r)
		rest, ok := strings.CutPrefix(path, "/t/")
		if !ok {
			expectError(t, rec, tenancy.ErrNoTenant)
			return
		}
		ident, tail, found := strings.Cut(rest, "/")
		tail = "/" + tail
		if !found {
			tail = "/"
		}
		if tenancy.ValidateIdentifier(ident) != nil {
			expectError(t, rec, tenancy.ErrInvalidIdentifier)
			return
		}
		expectTenant(t, rec, store, ident, tail)
	})
}

func FuzzHost(f *testing.F) {
	hosts := []string{
		"", " ", "\t", "acme-corp.example.com", "acme-corp.example.com\n", "ACME-CORP.EXAMPLE.COM", "Acme-Corp.example.com",
		"acme-corp.example.com:8080", "acme-corp.example.com.", "acme-corp.example.com.:443", "acme-corp.example.com..",
		"acme.example.com", "ab.example.com", "app.acme.com", "APP.ACME.COM.", "example.com", "example.com.", "other.org",
		"www.acme-corp.example.com", "initech.example.com", "hooli.example.com", "umbrella.example.com", "nobody.example.com",
		"аcme-corp.example.com", "ａｃｍｅ.example.com", strings.Repeat("a", 64) + ".example.com", strings.Repeat("a", 57) + ".example.com",
		`a"; drop schema public; --.example.com`, "../x", "../x.example.com", "acme-corp.example.com/../x",
		"127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:8000", "::1", "[fe80::1%eth0]:80", "[::ffff:127.0.0.1]:80", ":80",
		"acme-corp.example.com:", "acme-corp.example.com:x", "acme_corp.example.com", "-acme.example.com", "acme-.example.com",
	}
	for _, h := range hosts {
		f.Add(h, "", false)
		f.Add("example.com", h, false) // spoofed X-Forwarded-Host from an untrusted peer
		f.Add("internal:8080", h, true)
	}
	f.Add("example.com", "acme-corp.example.com, globex.example.com", true)
	f.Add("globex.example.com", "acme-corp.example.com", false)
	store := newStore(f)
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, host, fwd string, fromProxy bool) {
		res := resolve.Host{BaseDomain: "example.com", TrustedProxies: trusted, Lookup: strictLookup{t, store}}
		req := func(host, fwd, peer string) *httptest.ResponseRecorder {
			r := httptest.NewRequest("GET", "/x", nil)
			r.Host, r.RemoteAddr = host, peer
			if fwd != "" {
				r.Header["X-Forwarded-Host"] = []string{fwd}
			}
			return run(t, res, r)
		}
		peer := "203.0.113.7:1234"
		if fromProxy {
			peer = "10.0.0.7:1234"
		}
		rec := req(host, fwd, peer)
		expectDocumented(t, rec)

		// The model for X-Forwarded-Host: from an untrusted peer it changes
		// nothing; from a trusted one (with no X-Forwarded-For: no other
		// proxy) its last value, the one the peer added, stands for the Host.
		var same *httptest.ResponseRecorder
		last := fwd[strings.LastIndexByte(fwd, ',')+1:]
		last = strings.Trim(last, " \t")
		switch {
		case !fromProxy || last == "":
			same = req(host, "", "203.0.113.7:1234")
		default:
			same = req(last, "", "203.0.113.7:1234")
		}
		if rec.Code != same.Code || rec.Body.String() != same.Body.String() {
			t.Fatalf("X-Forwarded-Host (trusted %v) changed the outcome: %d %q vs %d %q", fromProxy, rec.Code, rec.Body, same.Code, same.Body)
		}
	})
}

func FuzzForwarded(f *testing.F) {
	for _, s := range []string{
		"", "for=203.0.113.9;host=acme-corp.example.com", `for="[2001:db8::1]:80";host="acme-corp.example.com"`,
		"for=203.0.113.9;host=globex.example.com, for=10.0.0.1;host=acme-corp.example.com", "host=acme-corp.example.com;host=x",
		`for="unterminated`, `host="a\"b"`, ",,,", ";;", "for=10.0.0.1, for=10.0.0.2;host=acme-corp.example.com", "host=" + strings.Repeat("a", 70),
		"for=203.0.113.9;host=acme-corp.example.com\n", "for = x", "=x", "for=\x00",
	} {
		f.Add(s)
	}
	store := newStore(f)
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, fwd string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Host, r.RemoteAddr = "globex.example.com", "10.9.9.9:1"
		r.Header["Forwarded"] = []string{fwd}
		res := resolve.Host{BaseDomain: "example.com", TrustedProxies: trusted, ProxyHeader: resolve.HeaderForwarded, Lookup: strictLookup{t, store}}
		rec := run(t, res, r)
		expectDocumented(t, rec)
		// From an untrusted peer the header changes nothing.
		r = httptest.NewRequest("GET", "/x", nil)
		r.Host, r.RemoteAddr = "globex.example.com", "203.0.113.7:1"
		r.Header["Forwarded"] = []string{fwd}
		if rec := run(t, res, r); rec.Code != 200 || rec.Body.String() != "t-globex /x" {
			t.Fatalf("Forwarded from an untrusted peer changed the outcome: %d %q", rec.Code, rec.Body)
		}
	})
}

// jwtSeeds returns the pitfall tokens, signed once.
func jwtSeeds(t testing.TB) (good string, bad []string) {
	t.Helper()
	fx := jwtSetup(t)
	exp := time.Now().Add(24 * time.Hour).Unix()
	rs := func(edit func(jwt.MapClaims)) string {
		return token(t, jwt.SigningMethodRS256, fx.rsKey, "acme-corp", func(c jwt.MapClaims) { c["exp"] = exp; edit(c) })
	}
	good = rs(func(jwt.MapClaims) {})
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der := x509.MarshalPKCS1PublicKey(&fx.rsKey.PublicKey)
	bad = []string{
		"", " ", "garbage", "a.b.c", good + "\n", good + " ", " " + good, strings.ToUpper(good),
		token(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "acme-corp", nil),
		token(t, jwt.SigningMethodHS256, fx.pubPEM, "acme-corp", nil),
		token(t, jwt.SigningMethodHS256, pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: der}), "acme-corp", nil),
		token(t, jwt.SigningMethodRS256, other, "acme-corp", nil),
		rs(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }),
		rs(func(c jwt.MapClaims) { delete(c, "exp") }),
		rs(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }),
		rs(func(c jwt.MapClaims) { c["aud"] = "other" }),
		rs(func(c jwt.MapClaims) { delete(c, "tenant_id") }),
		rs(func(c jwt.MapClaims) { c["tenant_id"] = "ACME-CORP" }),
		rs(func(c jwt.MapClaims) { c["tenant_id"] = `a"; drop schema public; --` }),
		rs(func(c jwt.MapClaims) { c["tenant_id"] = "initech" }),
		rs(func(c jwt.MapClaims) { c["tenant_id"] = "nobody" }),
	}
	return good, bad
}

func FuzzJWT(f *testing.F) {
	good, bad := jwtSeeds(f)
	f.Add(good)
	for _, s := range bad {
		f.Add(s)
	}
	store := newStore(f)
	v := jwtSetup(f).rs
	f.Fuzz(func(t *testing.T, tok string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header["Authorization"] = []string{"Bearer " + tok}
		rec := run(t, resolve.JWT{Verifier: v, Lookup: strictLookup{t, store}}, r)
		// The verifier, tested on its own in jwtauth, is the oracle for
		// the token; the model adds the HTTP outcome.
		claims, err := v.Verify(strings.TrimLeft(tok, " "))
		if err != nil {
			expectError(t, rec, tenancy.ErrUnauthenticated)
			return
		}
		expectTenant(t, rec, store, claims.Tenant, "/x")
	})
}

func FuzzJWTClaim(f *testing.F) {
	for _, s := range append(badIdentifiers, "acme-corp", "initech", "hooli", "nobody") {
		f.Add(s)
	}
	store := newStore(f)
	v := jwtSetup(f).hs
	f.Fuzz(func(t *testing.T, claim string) {
		tok := token(t, jwt.SigningMethodHS256, hmacKey, claim, nil)
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := run(t, resolve.JWT{Verifier: v, Lookup: strictLookup{t, store}}, r)
		if tenancy.ValidateIdentifier(claim) != nil {
			expectError(t, rec, tenancy.ErrUnauthenticated)
			return
		}
		expectTenant(t, rec, store, claim, "/x")
	})
}

// FuzzChain: a header and a path prefix in one chain. The answer is a
// known tenant only when every source present names it (a source that
// names another tenant, or an unknown one, is a conflict or an error),
// else a documented problem.
func FuzzChain(f *testing.F) {
	for _, s := range [][2]string{
		{"acme-corp", "/t/acme-corp/x"}, {"acme-corp", "/t/globex/x"}, {"", "/t/globex/x"}, {"globex", "/x"}, {"", "/x"},
		{"nobody", "/t/acme-corp/x"}, {"acme-corp", "/t/nobody/x"}, {"acme", "/t/acme-corp/x"}, {"initech", "/t/initech/x"},
		{"acme-corp\n", "/t/acme-corp/x"}, {"ACME-CORP", "/t/acme-corp/x"}, {"acme-corp", "/t/acme-corp\n/x"},
	} {
		f.Add(s[0], s[1])
	}
	store := newStore(f)
	f.Fuzz(func(t *testing.T, header, path string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path, r.URL.RawPath = path, ""
		if header != "" {
			r.Header["X-Tenant-Id"] = []string{header}
		}
		lookup := strictLookup{t, store}
		rec := run(t, resolve.Chain(resolve.Header{Lookup: lookup}, resolve.Path{Lookup: lookup}), r)
		expectDocumented(t, rec)
		if rec.Code != 200 {
			return
		}
		id, _, _ := strings.Cut(rec.Body.String(), " ")
		tn, err := store.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("200 for %q: %v", id, err)
		}
		names := append([]string{tn.Identifier}, tn.Aliases...)
		if header != "" && !slices.Contains(names, header) {
			t.Fatalf("header %q answered as %s", header, tn.Identifier)
		}
		if rest, ok := strings.CutPrefix(path, "/t/"); ok {
			if ident, _, _ := strings.Cut(rest, "/"); !slices.Contains(names, ident) {
				t.Fatalf("path %q answered as %s", path, tn.Identifier)
			}
		} else if header == "" {
			t.Fatalf("no source, yet 200 for %s", tn.Identifier)
		}
	})
}
