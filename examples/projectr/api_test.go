package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/cache"
	"github.com/go-tenancy/tenancy/credential"
	"github.com/go-tenancy/tenancy/jwtauth"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/golang-jwt/jwt/v5"
)

// testKey signs the unit tests' tokens.
var testKey = []byte("unit-test-key-0123456789abcdef-0123456789")

// unit is what a handler test needs: the handler over in-memory parts.
type unit struct {
	h       http.Handler
	store   *fakeStore
	tenants *memstore.Store
}

type unitOpts struct {
	authRate int
	cacheTTL time.Duration
}

func setup(t *testing.T, o unitOpts) *unit {
	t.Helper()
	ctx := context.Background()
	tenants := memstore.New()
	for _, s := range seedTenants {
		tn, err := tenants.Create(ctx, &s)
		if err != nil {
			t.Fatal(err)
		}
		if err := putDemoSecret(ctx, tenants, tn); err != nil {
			t.Fatal(err)
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	auth, err := credential.New(credential.Config{Tenants: tenants, Secrets: tenants, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	jc := jwtauth.Config{Algorithm: jwtauth.HS256, Key: testKey, Issuer: "projectr", Audience: "projectr-api"}
	signer, err := jwtauth.NewSigner(jc)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := jwtauth.NewVerifier(jc)
	if err != nil {
		t.Fatal(err)
	}
	var authLimit *limit.Limiter
	if o.authRate > 0 {
		authLimit = limit.New(limit.Config{Default: limit.Rate{Limit: o.authRate, Period: time.Minute}, Logger: logger})
	}
	fake := newFakeStore()
	var store Store = fake
	if o.cacheTTL > 0 {
		c, err := cache.New(cache.Config{Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		store = newCachedStore(fake, c, o.cacheTTL, logger)
	}
	h := newHandler(handlerConfig{
		Projects:  store,
		Quota:     fakeLimits{fake},
		Isolation: func(*tenancy.Tenant) string { return "file" },
		Tenants:   tenants,
		Verifier:  verifier,
		Token:     &authAPI{auth: auth, signer: signer, limiter: authLimit},
		Logger:    logger,
	})
	return &unit{h: h, store: fake, tenants: tenants}
}

// response is a recorded response.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request with the token (when not empty) and headers given as
// name, value pairs.
func (u *unit) do(t *testing.T, method, path, token, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "192.0.2.1:1234"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	u.h.ServeHTTP(rec, req)
	return response{code: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// token signs in as the tenant with the demo secret.
func (u *unit) token(t *testing.T, identifier string) string {
	t.Helper()
	r := u.do(t, "POST", "/auth/token", "", `{"tenant_id":"`+identifier+`","secret":"demo"}`)
	if r.code != http.StatusOK {
		t.Fatalf("token for %s: %d %s", identifier, r.code, r.body)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	r.json(t, &out)
	return out.AccessToken
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	u := setup(t, unitOpts{})
	r := u.do(t, "POST", "/auth/token", "", `{"tenant_id":"acme-corp","secret":"demo"}`)
	if r.code != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token: %d %v %s", r.code, r.header, r.body)
	}
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	r.json(t, &out)
	if out.TokenType != "bearer" || out.ExpiresIn != 3600 {
		t.Fatalf("token response %+v", out)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(out.AccessToken, claims); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"tenant_id", "exp", "iat", "iss", "aud"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("token lacks %s: %v", c, claims)
		}
	}
	if claims["tenant_id"] != "acme-corp" || claims["iss"] != "projectr" {
		t.Errorf("claims %v", claims)
	}
}

// TestTokenFailuresIndistinguishable: a wrong secret, an unknown tenant
// and malformed input get the same answer.
func TestTokenFailuresIndistinguishable(t *testing.T) {
	t.Parallel()
	u := setup(t, unitOpts{})
	want := u.do(t, "POST", "/auth/token", "", `{"tenant_id":"acme-corp","secret":"wrong"}`)
	if want.code != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d %s", want.code, want.body)
	}
	for _, body := range []string{
		`{"tenant_id":"no-such-corp","secret":"demo"}`,
		`{"tenant_id":"Not An Identifier","secret":"demo"}`,
		`{"tenant_id":"acme-corp","secret":"tcs_0123456789abcdef_x"}`,
		`{"tenant_id":"tech-corp","secret":"demo2"}`,
	} {
		r := u.do(t, "POST", "/auth/token", "", body)
		if r.code != want.code || string(r.body) != string(want.body) {
			t.Errorf("%s: %d %s, want %d %s", body, r.code, r.body, want.code, want.body)
		}
	}
}

func TestTokenRateLimit(t *testing.T) {
	t.Parallel()
	u := setup(t, unitOpts{authRate: 3})
	for i := range 3 {
		if r := u.do(t, "POST", "/auth/token", "", `{"tenant_id":"acme-corp","secret":"wrong"}`); r.code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, r.code)
		}
	}
	r := u.do(t, "POST", "/auth/token", "", `{"tenant_id":"acme-corp","secret":"demo"}`)
	if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("4th attempt: %d %v %s", r.code, r.header, r.body)
	}
	// Another tenant named from the same address has its own budget.
	u.token(t, "tech-corp")
	// The API itself has no limit unless configured.
	tok := u.token(t, "dev-labs")
	for range 20 {
		if r := u.do(t, "GET", "/projects", tok, ""); r.code != http.StatusOK {
			t.Fatalf("GET /projects: %d", r.code)
		}
	}
}

// TestJWTPitfalls: every token that must be refused is (PITFALLS 7).
func TestJWTPitfalls(t *testing.T) {
	t.Parallel()
	u := setup(t, unitOpts{})
	ctx := context.Background()
	sus, _ := u.tenants.GetByIdentifier(ctx, "dev-labs")
	if _, err := u.tenants.SetStatus(ctx, sus.ID, tenancy.StatusSuspended, "unpaid"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"tenant_id": "acme-corp", "iss": "projectr", "aud": "projectr-api",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := base()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	hs := func(c jwt.MapClaims, key []byte) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := jwt.NewWithClaims(jwt.SigningMethodRS256, base()).SignedString(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, base()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	if r := u.do(t, "GET", "/projects", hs(base(), testKey), ""); r.code != http.StatusOK {
		t.Fatalf("a good token: %d %s", r.code, r.body)
	}
	for _, tc := range []struct {
		name  string
		token string
		want  int
	}{
		{"no token", "", 401},
		{"alg none", none, 401},
		{"RS256 where HS256 is pinned", rs, 401},
		{"another key", hs(base(), []byte("another-key-0123456789abcdef-0123456789")), 401},
		{"expired", hs(with("exp", now.Add(-time.Minute).Unix()), testKey), 401},
		{"no expiry", hs(with("exp", nil), testKey), 401},
		{"not yet valid", hs(with("nbf", now.Add(time.Hour).Unix()), testKey), 401},
		{"wrong audience", hs(with("aud", "other-api"), testKey), 401},
		{"no audience", hs(with("aud", nil), testKey), 401},
		{"wrong issuer", hs(with("iss", "someone-else"), testKey), 401},
		{"no tenant claim", hs(with("tenant_id", nil), testKey), 401},
		{"tenant claim not an identifier", hs(with("tenant_id", "ACME CORP"), testKey), 401},
		{"unknown tenant", hs(with("tenant_id", "no-such-corp"), testKey), 404},
		{"suspended tenant", hs(with("tenant_id", "dev-labs"), testKey), 403},
		{"garbage", "not.a.jwt", 401},
	} {
		r := u.do(t, "GET", "/projects", tc.token, "")
		if r.code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, r.code, r.body, tc.want)
		}
		if r.code == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without WWW-Authenticate: Bearer", tc.name)
		}
	}
}

// TestTenantFromTokenOnly: a header naming another tenant is refused; one
// naming the token's own is allowed.
func TestTenantFromTokenOnly(t *testing.T) {
	t.Parallel()
	u := setup(t, unitOpts{})
	tok := u.token(t, "startup-x")
	if r := u.do(t, "GET", "/projects", tok, "", "X-Tenant-ID", "acme-corp"); r.code != http.StatusForbidden {
		t.Fatalf("header naming another tenant: %d %s", r.code, r.body)
	}
	if r := u.do(t, "GET", "/projects", tok, "", "X-Tenant-ID", "no-such-corp"); r.code != http.StatusForbidden {
		t.Fatalf("header naming an unknown tenant: %d %s (must not tell it is unknown)", r.code, r.body)
	}
	if r := u.do(t, "GET", "/projects", tok, "", "X-Tenant-ID", "startup-x"); r.code != http.StatusOK {
		t.Fatalf("header naming the token's tenant: %d %s", r.code, r.body)
	}
	if r := u.do(t, "GET", "/projects", "", "", "X-Tenant-ID", "startup-x"); r.code != http.StatusUnauthorized {
		t.Fatalf("a header without a token: %d %s", r.code, r.body)
	}
}

func TestProjectsAndTasks(t *testing.T) {
	t.Parallel()
	u := setup(t, unitOpts{})
	acme, labs := u.token(t, "acme-corp"), u.token(t, "dev-labs")
	r := u.do(t, "POST", "/projects", acme, `{"name":"  Mars Mission ","description":"Land on Mars by 2030"}`)
	if r.code != http.StatusCreated {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	var p Project
	r.json(t, &p)
	if p.Name != "Mars Mission" || r.header.Get("Location") != "/projects/"+p.ID {
		t.Fatalf("created %+v, Location %q", p, r.header.Get("Location"))
	}
	for _, path := range []string{"/projects/" + p.ID, "/projects/" + p.ID + "/tasks"} {
		if r := u.do(t, "GET", path, labs, ""); r.code != http.StatusNotFound {
			t.Errorf("dev-labs GET %s: %d", path, r.code)
		}
	}
	if r := u.do(t, "GET", "/projects", labs, ""); r.code != 200 || string(r.body) != "[]\n" && string(r.body) != "[]" {
		t.Errorf("dev-labs list: %d %s", r.code, r.body)
	}
	r = u.do(t, "POST", "/projects/"+p.ID+"/tasks", acme, `{"title":"Build rocket","assignee":"ada"}`)
	if r.code != http.StatusCreated {
		t.Fatalf("create task: %d %s", r.code, r.body)
	}
	var task Task
	r.json(t, &task)
	if task.Status != StatusTodo || task.ProjectID != p.ID {
		t.Fatalf("task %+v", task)
	}
	if r := u.do(t, "PATCH", "/tasks/"+task.ID, labs, `{"status":"done"}`); r.code != http.StatusNotFound {
		t.Errorf("dev-labs PATCH acme's task: %d", r.code)
	}
	if r := u.do(t, "PATCH", "/tasks/"+task.ID, acme, `{"status":"done"}`); r.code != http.StatusOK {
		t.Errorf("PATCH task: %d %s", r.code, r.body)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/projects/" + p.ID + "/tasks", `{"title":"x","status":"blocked"}`},
		{"POST", "/projects", `{"name":"   "}`},
		{"POST", "/projects", `{}`},
		{"PATCH", "/projects/" + p.ID, `{"name":null}`},
	} {
		if r := u.do(t, tc.method, tc.path, acme, tc.body); r.code != http.StatusUnprocessableEntity {
			t.Errorf("%s %s %s: %d %s, want 422", tc.method, tc.path, tc.body, r.code, r.body)
		}
	}
	if r := u.do(t, "POST", "/projects", acme, `{"name":`); r.code != http.StatusBadRequest {
		t.Errorf("unparseable JSON: %d", r.code)
	}
	r = u.do(t, "POST", "/projects/"+p.ID+"/export", acme, "")
	if r.code != http.StatusAccepted {
		t.Fatalf("export: %d %s", r.code, r.body)
	}
	var job struct {
		JobID string `json:"job_id"`
	}
	r.json(t, &job)
	if r := u.do(t, "GET", "/jobs/"+job.JobID, acme, ""); r.code != http.StatusOK {
		t.Errorf("GET own job: %d", r.code)
	}
	if r := u.do(t, "GET", "/jobs/"+job.JobID, labs, ""); r.code != http.StatusNotFound {
		t.Errorf("GET another tenant's job: %d", r.code)
	}
	if r := u.do(t, "DELETE", "/projects/"+p.ID, labs, ""); r.code != http.StatusNotFound {
		t.Errorf("dev-labs DELETE acme's project: %d", r.code)
	}
	if r := u.do(t, "DELETE", "/projects/"+p.ID, acme, ""); r.code != http.StatusNoContent {
		t.Errorf("DELETE: %d", r.code)
	}
}

func TestQuotaProblem(t *testing.T) {
	t.Parallel()
	u := setup(t, unitOpts{})
	tok := u.token(t, "startup-x")
	for i := range 3 {
		if r := u.do(t, "POST", "/projects", tok, `{"name":"p"}`); r.code != http.StatusCreated {
			t.Fatalf("project %d: %d", i+1, r.code)
		}
	}
	r := u.do(t, "POST", "/projects", tok, `{"name":"p4"}`)
	var pd struct {
		Type     string `json:"type"`
		Resource string `json:"resource"`
		Limit    int    `json:"limit"`
		Tier     string `json:"tier"`
	}
	r.json(t, &pd)
	if r.code != http.StatusForbidden || r.header.Get("Content-Type") != "application/problem+json" ||
		pd.Resource != "projects" || pd.Limit != 3 || pd.Tier != "starter" || !strings.HasSuffix(pd.Type, "#quota-exceeded") {
		t.Fatalf("4th project: %d %s %s", r.code, r.header.Get("Content-Type"), r.body)
	}
	r = u.do(t, "GET", "/tenant", tok, "")
	var info TenantInfo
	r.json(t, &info)
	if info.Identifier != "startup-x" || info.Tier != "starter" || info.Limits[ResourceProjects] != 3 || len(info.Usage) != 1 || info.Usage[0].Used != 3 {
		t.Fatalf("GET /tenant: %s", r.body)
	}
}

// TestCacheInvalidatedByWrites: reads are served from the cache until a
// write, which the next read sees.
func TestCacheInvalidatedByWrites(t *testing.T) {
	t.Parallel()
	u := setup(t, unitOpts{cacheTTL: time.Hour})
	tok, other := u.token(t, "acme-corp"), u.token(t, "tech-corp")
	list := func(tok string) []Project {
		r := u.do(t, "GET", "/projects", tok, "")
		var ps []Project
		r.json(t, &ps)
		return ps
	}
	list(tok)
	list(tok)
	if u.store.reads != 1 {
		t.Fatalf("two lists reached the store %d times, want 1", u.store.reads)
	}
	list(other) // another tenant's key
	if u.store.reads != 2 {
		t.Fatalf("another tenant's list reached the store %d times in all, want 2", u.store.reads)
	}
	u.do(t, "POST", "/projects", tok, `{"name":"new"}`)
	if ps := list(tok); len(ps) != 1 || ps[0].Name != "new" {
		t.Fatalf("list after create: %+v", ps)
	}
	if ps := list(other); len(ps) != 0 {
		t.Fatalf("another tenant sees %+v", ps)
	}
}
