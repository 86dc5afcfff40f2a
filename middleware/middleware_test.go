package middleware_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/jwtauth"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
)

var hmacKey = []byte("0123456789abcdef0123456789abcdef")

func hsVerifier(t testing.TB) *jwtauth.Verifier {
	t.Helper()
	v, err := jwtauth.NewVerifier(jwtauth.Config{Algorithm: jwtauth.HS256, Key: hmacKey})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func hsSigner(t testing.TB) *jwtauth.Signer {
	t.Helper()
	s, err := jwtauth.NewSigner(jwtauth.Config{Algorithm: jwtauth.HS256, Key: hmacKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStatuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mw := middleware.New(middleware.Config{
		Resolver: resolve.Chain(
			resolve.JWT{Verifier: hsVerifier(t), Lookup: b.cache, Optional: true},
			resolve.Header{Lookup: b.cache},
		),
		Logger:  b.logger(),
		Metrics: b.metrics,
	})
	h := mw(tenantEcho)
	good, err := hsSigner(t).Issue("acme-corp", "u", nil)
	if err != nil {
		t.Fatal(err)
	}
	suspendedTok, _ := hsSigner(t).Issue("initech", "u", nil)
	unknownTok, _ := hsSigner(t).Issue("nobody", "u", nil)
	rsKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name   string
		header []string
		token  string
		want   error // nil: 200 with tenant id
		id     string
	}{
		{"active", []string{"acme-corp"}, "", nil, "t-acme"},
		{"no tenant", nil, "", tenancy.ErrNoTenant, ""},
		{"empty", []string{""}, "", tenancy.ErrInvalidIdentifier, ""},
		{"whitespace", []string{" "}, "", tenancy.ErrInvalidIdentifier, ""},
		{"trailing newline", []string{"acme-corp\n"}, "", tenancy.ErrInvalidIdentifier, ""},
		{"uppercase", []string{"ACME-CORP"}, "", tenancy.ErrInvalidIdentifier, ""},
		{"Cyrillic", []string{"аcme-corp"}, "", tenancy.ErrInvalidIdentifier, ""},
		{"fullwidth", []string{"ａｃｍｅ-corp"}, "", tenancy.ErrInvalidIdentifier, ""},
		{"64 characters", []string{strings.Repeat("a", 64)}, "", tenancy.ErrInvalidIdentifier, ""},
		{"injection", []string{`a"; drop schema public; --`}, "", tenancy.ErrInvalidIdentifier, ""},
		{"dot dot", []string{"../x"}, "", tenancy.ErrInvalidIdentifier, ""},
		{"unknown", []string{"nobody"}, "", tenancy.ErrTenantNotFound, ""},
		{"suspended", []string{"initech"}, "", tenancy.ErrTenantSuspended, ""},
		{"deleted", []string{"umbrella"}, "", tenancy.ErrTenantDeleted, ""},
		{"provisioning", []string{"hooli"}, "", &tenancy.RetryAfterError{Err: tenancy.ErrTenantNotReady, After: middleware.DefaultRetryAfter}, ""},
		{"failed", []string{"pied-piper"}, "", &tenancy.RetryAfterError{Err: tenancy.ErrTenantNotReady, After: middleware.DefaultRetryAfter}, ""},
		{"header repeated differently", []string{"acme-corp", "globex"}, "", tenancy.ErrTenantConflict, ""},
		{"token", nil, good, nil, "t-acme"},
		{"token and same header", []string{"acme-corp"}, good, nil, "t-acme"},
		{"token and other header", []string{"globex"}, good, tenancy.ErrTenantConflict, ""},
		{"token and unknown header", []string{"nobody"}, good, tenancy.ErrTenantConflict, ""},
		{"token of a suspended tenant", nil, suspendedTok, tenancy.ErrTenantSuspended, ""},
		{"token of an unknown tenant", nil, unknownTok, tenancy.ErrTenantNotFound, ""},
		{"bad token", []string{"acme-corp"}, "garbage", tenancy.ErrUnauthenticated, ""},
		{"alg none", nil, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"tenant_id": "acme-corp", "exp": exp}), tenancy.ErrUnauthenticated, ""},
		{"RS256 against HS256", nil, sign(t, jwt.SigningMethodRS256, rsKey, jwt.MapClaims{"tenant_id": "acme-corp", "exp": exp}), tenancy.ErrUnauthenticated, ""},
		{"expired", nil, sign(t, jwt.SigningMethodHS256, hmacKey, jwt.MapClaims{"tenant_id": "acme-corp", "exp": time.Now().Add(-time.Hour).Unix()}), tenancy.ErrUnauthenticated, ""},
		{"malformed tenant claim", nil, sign(t, jwt.SigningMethodHS256, hmacKey, jwt.MapClaims{"tenant_id": "ACME", "exp": exp}), tenancy.ErrUnauthenticated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/notes", nil)
			if tt.header != nil {
				r.Header["X-Tenant-Id"] = tt.header
			}
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec := serve(h, r)
			if tt.want == nil {
				if rec.Code != 200 || rec.Body.String() != tt.id+" /notes" {
					t.Fatalf("got %d %q", rec.Code, rec.Body)
				}
				return
			}
			checkProblem(t, rec.Code, rec.Header(), rec.Body.Bytes(), tt.want)
		})
	}
}

func TestRetryAfterConfigurable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := middleware.New(middleware.Config{Resolver: resolve.Header{Lookup: b.cache}, RetryAfter: 1500 * time.Millisecond})(tenantEcho)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Tenant-ID", "hooli")
	rec := serve(h, r)
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("got %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestStoreFailureIs500AndLogged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := middleware.New(middleware.Config{Resolver: resolve.Header{Lookup: failingLookup{}}, Logger: b.logger(), Metrics: b.metrics})(tenantEcho)
	r := httptest.NewRequest("GET", "/secret-path", nil)
	r.Header.Set("X-Tenant-ID", "acme-corp")
	rec := serve(h, r)
	checkProblem(t, rec.Code, rec.Header(), rec.Body.Bytes(), errStoreDown)
	logs := b.logs.String()
	if !strings.Contains(logs, errStoreDown.Error()) || !strings.Contains(logs, "level=ERROR") {
		t.Errorf("store failure not logged: %q", logs)
	}
	if strings.Contains(logs, "acme-corp") || strings.Contains(logs, "secret-path") {
		t.Errorf("log carries request input: %q", logs)
	}
	if got := counter(t, b.reg, "none", "error"); got != 1 {
		t.Errorf("error outcome counted %v times", got)
	}
}

func TestClientErrorsAreNotLogged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := middleware.New(middleware.Config{Resolver: resolve.Header{Lookup: b.cache}, Logger: b.logger()})(tenantEcho)
	for _, v := range []string{"ACME", "nobody", "initech"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Tenant-ID", v)
		serve(h, r)
	}
	if logs := b.logs.String(); logs != "" {
		t.Errorf("client errors logged: %q", logs)
	}
}

func TestCustomErrorHandler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var got error
	h := middleware.New(middleware.Config{
		Resolver: resolve.Header{Lookup: b.cache},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			got = err
			w.WriteHeader(418)
		},
	})(tenantEcho)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Tenant-ID", "initech")
	if rec := serve(h, r); rec.Code != 418 || !errors.Is(got, tenancy.ErrTenantSuspended) {
		t.Fatalf("got %d, %v", rec.Code, got)
	}
}

func TestPublicPaths(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := middleware.New(middleware.Config{
		Resolver:    resolve.Header{Lookup: b.cache},
		PublicPaths: []string{"GET /healthz", "/docs", "/static/", "api.example.com/status", "/files/{name}", "/exact/{$}", "/sp%20ace"},
	})(tenantEcho)
	tests := []struct {
		method, target, host string
		public               bool
	}{
		{"GET", "/healthz", "", true},
		{"HEAD", "/healthz", "", true},
		{"POST", "/healthz", "", false},
		{"GET", "/healthzfoo", "", false},
		{"GET", "/healthz/", "", false},
		{"GET", "/healthz?x=1", "", true},
		{"GET", "/x/../healthz", "", false},
		{"GET", "//healthz", "", false},
		{"GET", "/docs", "", true},
		{"DELETE", "/docs", "", true},
		{"GET", "/docs/", "", false},
		{"GET", "/docsx", "", false},
		{"GET", "/static/", "", true},
		{"GET", "/static/app.css", "", true},
		{"GET", "/static/../notes", "", false},
		{"GET", "/static", "", false},
		{"GET", "/status", "api.example.com", true},
		{"GET", "/status", "api.example.com:8443", true},
		{"GET", "/status", "acme-corp.example.com", false},
		{"GET", "/notes", "", false},
		{"GET", "/files/a.txt", "", true},
		{"GET", "/files/a/b", "", false},
		{"GET", "/exact/", "", true},
		{"GET", "/exact/x", "", false},
		{"GET", "/sp%20ace", "", true},
		{"GET", "/sp%20aces", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.host+tt.target, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, "/", nil)
			u, err := url.ParseRequestURI(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			r.URL, r.RequestURI = u, tt.target
			if tt.host != "" {
				r.Host = tt.host
			}
			rec := serve(h, r)
			if tt.public {
				if rec.Code != 200 || rec.Body.String() != "no tenant" {
					t.Fatalf("public path: got %d %q", rec.Code, rec.Body)
				}
				return
			}
			checkProblem(t, rec.Code, rec.Header(), rec.Body.Bytes(), tenancy.ErrNoTenant)
		})
	}
	// A public path is served without a tenant even when the request names one.
	r := httptest.NewRequest("GET", "/healthz", nil)
	r.Header.Set("X-Tenant-ID", "acme-corp")
	if rec := serve(h, r); rec.Body.String() != "no tenant" {
		t.Fatalf("public path resolved a tenant: %q", rec.Body)
	}
}

func TestNewPanicsOnBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]middleware.Config{
		"no resolver":    {},
		"bad pattern":    {Resolver: resolve.Header{Lookup: failingLookup{}}, PublicPaths: []string{"GET"}},
		"duplicate path": {Resolver: resolve.Header{Lookup: failingLookup{}}, PublicPaths: []string{"/a", "/a"}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", name)
				}
			}()
			middleware.New(cfg)
		}()
	}
}

func TestPathResolverRewritesACopy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var seen string
	h := middleware.New(middleware.Config{Resolver: resolve.Path{Lookup: b.cache}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.URL.Path + " " + r.URL.RawPath + " " + r.URL.EscapedPath() + " " + r.URL.RawQuery
	}))
	r := httptest.NewRequest("GET", "/t/acme-corp/files/a%2Fb?x=1", nil)
	if rec := serve(h, r); rec.Code != 200 {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
	if seen != "/files/a/b /files/a%2Fb /files/a%2Fb x=1" {
		t.Fatalf("handler saw %q", seen)
	}
	if r.URL.Path != "/t/acme-corp/files/a/b" || r.URL.RawPath != "/t/acme-corp/files/a%2Fb" {
		t.Fatalf("caller's URL changed: %v", r.URL)
	}
}

func TestClaimsInContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var claims *jwtauth.Claims
	h := middleware.New(middleware.Config{Resolver: resolve.JWT{Verifier: hsVerifier(t), Lookup: b.cache}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ = jwtauth.ClaimsFromContext(r.Context())
	}))
	tok, _ := hsSigner(t).Issue("acme-corp", "user-7", map[string]any{"role": "admin"})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	serve(h, r)
	if claims == nil || claims.Subject != "user-7" || claims.Tenant != "acme-corp" || claims.Raw["role"] != "admin" {
		t.Fatalf("claims = %+v", claims)
	}
	// Header resolution puts no claims in the context.
	claims = nil
	h = middleware.New(middleware.Config{Resolver: resolve.Header{Lookup: b.cache}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ = jwtauth.ClaimsFromContext(r.Context())
	}))
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Tenant-ID", "acme-corp")
	serve(h, r)
	if claims != nil {
		t.Fatalf("claims without a token: %+v", claims)
	}
}

// TestOpaqueClaimsInContext: claims of any resolver reach the handler
// untouched, through tenancy.ClaimsFromContext.
func TestOpaqueClaimsInContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acme, err := b.store.GetByIdentifier(t.Context(), "acme-corp")
	if err != nil {
		t.Fatal(err)
	}
	type apiKey struct{ name string }
	want := &apiKey{name: "ci"}
	var got any
	h := middleware.New(middleware.Config{Resolver: fixedResolver{resolve.Result{Tenant: acme, Source: "api-key", Claims: want}}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, _ = tenancy.ClaimsFromContext(r.Context())
		}))
	serve(h, httptest.NewRequest("GET", "/", nil))
	if got != want {
		t.Fatalf("claims in context = %v, want %v", got, want)
	}
}

// fixedResolver resolves every request to the same result.
type fixedResolver struct{ res resolve.Result }

func (f fixedResolver) Resolve(*http.Request) (resolve.Result, error) { return f.res, nil }

func TestSuspensionThroughTheCacheTakesEffect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := middleware.New(middleware.Config{Resolver: resolve.Header{Lookup: b.cache}})(tenantEcho)
	req := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Tenant-ID", "globex")
		return serve(h, r)
	}
	if rec := req(); rec.Code != 200 {
		t.Fatalf("got %d", rec.Code)
	}
	if _, err := b.cache.SetStatus(context.Background(), "t-globex", tenancy.StatusSuspended, "unpaid"); err != nil {
		t.Fatal(err)
	}
	if rec := req(); rec.Code != 403 {
		t.Fatalf("after suspension got %d", rec.Code)
	}
	if _, err := b.cache.SetStatus(context.Background(), "t-globex", tenancy.StatusActive, ""); err != nil {
		t.Fatal(err)
	}
	if rec := req(); rec.Code != 200 {
		t.Fatalf("after reactivation got %d", rec.Code)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := middleware.Config{Resolver: resolve.Header{Lookup: b.cache}, Metrics: b.metrics}
	h1 := middleware.New(cfg)(tenantEcho)
	// Metrics of their own, on the same registry: they share the counter.
	m2, err := promtenancy.New(promtenancy.Config{Registerer: b.reg})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = m2
	h2 := middleware.New(cfg)(tenantEcho)
	for _, c := range []struct {
		h http.Handler
		v string
	}{{h1, "acme-corp"}, {h2, "acme-corp"}, {h1, "globex"}, {h1, "initech"}, {h1, "hooli"}, {h1, "nobody"}, {h1, "BAD"}, {h2, ""}} {
		r := httptest.NewRequest("GET", "/", nil)
		if c.v != "" {
			r.Header.Set("X-Tenant-ID", c.v)
		}
		serve(c.h, r)
	}
	want := map[[2]string]float64{
		{"pro", "ok"}: 2, {"default", "ok"}: 1, {"pro", "suspended"}: 1, {"default", "not_ready"}: 1,
		{"none", "not_found"}: 1, {"none", "invalid"}: 1, {"none", "missing"}: 1,
	}
	for k, v := range want {
		if got := counter(t, b.reg, k[0], k[1]); got != v {
			t.Errorf("tenancy_resolutions_total{tier=%q,outcome=%q} = %v, want %v", k[0], k[1], got, v)
		}
	}
	mfs, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tenancy_resolutions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "tier" && l.GetName() != "outcome" {
					t.Errorf("unexpected label %s", l.GetName())
				}
			}
		}
	}
}

func counter(t testing.TB, reg *prometheus.Registry, tier, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tenancy_resolutions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["tier"] == tier && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// routes registers the same routes on any router: the handlers see the
// path without the tenant prefix.
func noteHandler(param func(*http.Request, string) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, ok := tenancy.FromContext(r.Context())
		if !ok {
			http.Error(w, "no tenant", 500)
			return
		}
		_, _ = io.WriteString(w, t.Identifier+" note "+param(r, "id"))
	}
}

func publicHandler(w http.ResponseWriter, r *http.Request) {
	_, ok := tenancy.FromContext(r.Context())
	_, _ = io.WriteString(w, map[bool]string{true: "tenant", false: "ok"}[ok])
}

func TestRouters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	newMW := func() func(http.Handler) http.Handler {
		return middleware.New(middleware.Config{
			Resolver: resolve.Chain(
				resolve.Path{Lookup: b.cache},
				resolve.Host{BaseDomain: "localhost", Lookup: b.cache},
				resolve.Header{Lookup: b.cache},
			),
			PublicPaths: []string{"GET /healthz"},
		})
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes/{id}", noteHandler(func(r *http.Request, k string) string { return r.PathValue(k) }))
	mux.HandleFunc("GET /healthz", publicHandler)

	chiUse := chi.NewRouter()
	chiUse.Use(newMW())
	chiUse.Get("/notes/{id}", noteHandler(chi.URLParam))
	chiUse.Get("/healthz", publicHandler)

	chiGroup := chi.NewRouter()
	chiGroup.Get("/healthz", publicHandler)
	chiGroup.Group(func(r chi.Router) {
		r.Use(newMW())
		r.Get("/notes/{id}", noteHandler(chi.URLParam))
	})

	for name, h := range map[string]http.Handler{
		"ServeMux":  newMW()(mux),
		"chi Use":   chiUse,
		"chi Group": chiGroup,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
			tests := []struct {
				name, path, host, header string
				status                   int
				body                     string
			}{
				{"path prefix", "/t/acme-corp/notes/7", "", "", 200, "acme-corp note 7"},
				{"path prefix, escaped id", "/t/acme-corp/notes/a%20b", "", "", 200, "acme-corp note a b"},
				{"subdomain", "/notes/8", "globex.localhost" + port, "", 200, "globex note 8"},
				{"alias subdomain", "/notes/8", "acme.localhost" + port, "", 200, "acme-corp note 8"},
				{"header", "/notes/9", "", "acme-corp", 200, "acme-corp note 9"},
				{"path and header disagree", "/t/acme-corp/notes/7", "", "globex", 403, ""},
				{"subdomain and header disagree", "/notes/8", "globex.localhost" + port, "acme-corp", 403, ""},
				{"no tenant", "/notes/9", "", "", 400, ""},
				{"bad header", "/notes/9", "", "ACME", 400, ""},
				{"bad path", "/t/ACME/notes/9", "", "", 400, ""},
				{"unknown", "/t/nobody/notes/9", "", "", 404, ""},
				{"suspended", "/t/initech/notes/9", "", "", 403, ""},
				{"provisioning", "/t/hooli/notes/9", "", "", 503, ""},
				{"public", "/healthz", "", "", 200, "ok"},
				{"route missing after prefix", "/t/acme-corp/nothing", "", "", 404, "404 page not found\n"},
			}
			for _, tt := range tests {
				req, err := http.NewRequest("GET", srv.URL+tt.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.host != "" {
					req.Host = tt.host
				}
				if tt.header != "" {
					req.Header.Set("X-Tenant-ID", tt.header)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if name == "chi Group" && strings.HasPrefix(tt.path, "/t/") {
					// chi routes before a group's middleware runs, so a path
					// prefix only works with middleware on the root router.
					tt.status, tt.body = 404, "404 page not found\n"
				}
				if resp.StatusCode != tt.status {
					t.Errorf("%s: status %d, want %d; body %s", tt.name, resp.StatusCode, tt.status, body)
					continue
				}
				if tt.body != "" && string(body) != tt.body {
					t.Errorf("%s: body %q, want %q", tt.name, body, tt.body)
				}
				if tt.status >= 400 && tt.body == "" {
					if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
						t.Errorf("%s: Content-Type %q", tt.name, ct)
					}
					if strings.Contains(string(body), "ACME") || strings.Contains(string(body), "nobody") || strings.Contains(string(body), "initech") {
						t.Errorf("%s: body echoes input: %s", tt.name, body)
					}
				}
			}
		})
	}
}

// TestNothingOutlivesTheRequest resolves alternating tenants concurrently:
// each handler must see its own tenant, never the previous request's
// (PITFALLS 8).
func TestNothingOutlivesTheRequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := middleware.New(middleware.Config{Resolver: resolve.Header{Lookup: b.cache}})(tenantEcho)
	ids := map[string]string{"acme-corp": "t-acme", "globex": "t-globex"}
	done := make(chan error, 200)
	for i := range 200 {
		go func() {
			ident := "acme-corp"
			if i%2 == 1 {
				ident = "globex"
			}
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header.Set("X-Tenant-ID", ident)
			rec := serve(h, r)
			if rec.Body.String() != ids[ident]+" /x" {
				done <- errors.New("request for " + ident + " saw " + rec.Body.String())
				return
			}
			done <- nil
		}()
	}
	for range 200 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	// And a request without a tenant after them sees none.
	rec := serve(h, httptest.NewRequest("GET", "/x", nil))
	checkProblem(t, rec.Code, rec.Header(), rec.Body.Bytes(), tenancy.ErrNoTenant)
}
