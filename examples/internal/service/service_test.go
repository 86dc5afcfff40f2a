package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/go-tenancy/tenancy/store/memstore"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type greeting struct {
	Body struct {
		Tenant string `json:"tenant"`
	}
}

// setup returns a handler with one operation of the app's own, GET /hello,
// and the tenants acme-corp (active) and gone-co (suspended), found by a
// resolver of the app's choosing.
func setup(t *testing.T, resolver func(resolve.Lookup) resolve.Resolver, configure ...func(*service.HandlerConfig)) (http.Handler, *syncBuffer) {
	t.Helper()
	store := memstore.New()
	for _, tn := range []tenancy.Tenant{
		{ID: "t-acme", Identifier: "acme-corp", Name: "Acme"},
		{ID: "t-gone", Identifier: "gone-co", Name: "Gone", Status: tenancy.StatusSuspended},
	} {
		if _, err := store.Create(t.Context(), &tn); err != nil {
			t.Fatal(err)
		}
	}
	logs := &syncBuffer{}
	cfg := service.HandlerConfig{
		Resolver: resolver(store),
		Logger:   slog.New(tenancy.NewLogHandler(slog.NewJSONHandler(logs, nil))),
		API: service.API{
			Title: "Greeter",
			Register: func(api huma.API) {
				huma.Register(api, huma.Operation{
					OperationID: "hello", Method: http.MethodGet, Path: "/hello", Errors: service.TenantErrors(),
				}, func(ctx context.Context, _ *struct{}) (*greeting, error) {
					tn, err := service.RequireTenant(ctx)
					if err != nil {
						return nil, err
					}
					out := &greeting{}
					out.Body.Tenant = tn.Identifier
					return out, nil
				})
			},
		},
	}
	for _, c := range configure {
		c(&cfg)
	}
	return service.NewHandler(cfg), logs
}

func do(h http.Handler, method, path string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func header(l resolve.Lookup) resolve.Resolver { return resolve.Header{Lookup: l} }

func TestHandler(t *testing.T) {
	t.Parallel()
	h, logs := setup(t, header)
	cases := []struct {
		name, method, path, tenant string
		status                     int
		contentType                string
	}{
		{"AppOperation", "GET", "/hello", "acme-corp", 200, "application/json"},
		{"NoTenant", "GET", "/hello", "", 400, problem.ContentType},
		{"UnknownTenant", "GET", "/hello", "initech", 404, problem.ContentType},
		{"SuspendedTenant", "GET", "/hello", "gone-co", 403, problem.ContentType},
		{"NoRoute", "GET", "/nowhere", "acme-corp", 404, problem.ContentType},
		{"WrongMethod", "DELETE", "/hello", "acme-corp", 405, problem.ContentType},
		{"Liveness", "GET", "/healthz", "", 200, "application/json"},
		{"Readiness", "GET", "/readyz", "", 200, "application/json"},
		{"Metrics", "GET", "/metrics", "", 200, "text/plain"},
		{"OpenAPI", "GET", "/openapi.json", "", 200, "application/openapi+json"},
		{"Docs", "GET", "/docs", "", 200, "text/html"},
		{"DocsScript", "GET", "/docs/elements/web-components.min.js", "", 200, "text/javascript"},
		{"DocsStyle", "GET", "/docs/elements/styles.min.css", "", 200, "text/css"},
		{"DocsLicense", "GET", "/docs/elements/LICENSE", "", 200, "text/plain"},
		{"DocsNoSuchAsset", "GET", "/docs/elements/VERSION", "", 404, problem.ContentType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := do(h, tc.method, tc.path, map[string]string{"X-Tenant-ID": tc.tenant})
			if w.Code != tc.status || !strings.HasPrefix(w.Header().Get("Content-Type"), tc.contentType) {
				t.Fatalf("%d %q, want %d %q: %s", w.Code, w.Header().Get("Content-Type"), tc.status, tc.contentType, w.Body)
			}
		})
	}
	// The docs page loads nothing from elsewhere.
	docs := do(h, "GET", "/docs", nil)
	if strings.Contains(docs.Body.String(), "//") || !strings.Contains(docs.Header().Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("/docs loads from another origin, or without a CSP: %s", docs.Body)
	}
	if !strings.Contains(logs.String(), `"tenant":"initech","outcome":"not_found"`) {
		t.Errorf("the access log does not name the unknown tenant asked for:\n%s", logs)
	}
}

// TestHandlerOwnResolver: an app brings its own resolver, and the access
// log names the identifier it asked for through HandlerConfig.Identifier.
func TestHandlerOwnResolver(t *testing.T) {
	t.Parallel()
	h, _ := setup(t, func(l resolve.Lookup) resolve.Resolver {
		return resolve.Header{Lookup: l, Name: "X-Org"}
	})
	w := do(h, "GET", "/hello", map[string]string{"X-Org": "acme-corp"})
	var body struct{ Tenant string }
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Tenant != "acme-corp" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w := do(h, "GET", "/hello", map[string]string{"X-Tenant-ID": "acme-corp"}); w.Code != 400 {
		t.Fatalf("X-Tenant-ID with a resolver of X-Org: %d", w.Code)
	}
}

func TestReadinessFailureIsA503WithoutDetail(t *testing.T) {
	t.Parallel()
	h := service.NewHandler(service.HandlerConfig{
		Resolver: resolve.Header{Lookup: memstore.New()},
		Logger:   slog.New(slog.DiscardHandler),
		API:      service.API{Title: "Down"},
		Ready:    func(context.Context) error { return errors.New("dial 10.0.0.7: secret") },
	})
	w := do(h, "GET", "/readyz", nil)
	if w.Code != 503 || strings.Contains(w.Body.String(), "secret") || w.Header().Get("Content-Type") != problem.ContentType {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestOpenAPIDocumentsHeadersAndSecurity(t *testing.T) {
	t.Parallel()
	api := service.NewAPI(http.NewServeMux(), service.API{
		Title: "Greeter",
		SecuritySchemes: map[string]*huma.SecurityScheme{
			"tenant": {Type: "apiKey", In: "header", Name: "X-Tenant-ID"},
		},
		Security: []map[string][]string{{"tenant": {}}},
		Register: func(api huma.API) {
			huma.Register(api, huma.Operation{OperationID: "hello", Method: http.MethodGet, Path: "/hello", Errors: service.TenantErrors()},
				func(context.Context, *struct{}) (*greeting, error) { return nil, nil })
		},
	}, nil, nil)
	o := api.OpenAPI()
	op := o.Paths["/hello"].Get
	if op == nil || op.Responses["429"].Headers["Retry-After"] == nil || op.Responses["200"].Headers["RateLimit"] == nil {
		t.Fatalf("/hello lacks the documented headers: %+v", op)
	}
	// The probes are served (TestHandler) but documented in the README only.
	if o.Paths["/healthz"] != nil || o.Paths["/readyz"] != nil {
		t.Fatal("the probes are in the API description")
	}
	if o.Components.SecuritySchemes["tenant"] == nil || len(o.Security) != 1 || o.Info.Version != "1.0.0" {
		t.Fatalf("security or version not set: %+v %+v", o.Components.SecuritySchemes, o.Info)
	}
}

func TestRequireTenant(t *testing.T) {
	t.Parallel()
	_, err := service.RequireTenant(context.Background())
	var ae *service.APIError
	if !errors.As(err, &ae) || ae.GetStatus() != http.StatusBadRequest || ae.ContentType("") != problem.ContentType {
		t.Fatalf("%v, want a 400 problem", err)
	}
	want := &tenancy.Tenant{ID: "t"}
	if got, err := service.RequireTenant(tenancy.WithTenant(context.Background(), want)); got != want || err != nil {
		t.Fatalf("%v %v", got, err)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		path string
		ok   bool
	}{{"/readyz", true}, {"/down", false}} {
		var out bytes.Buffer
		cmd := service.HealthcheckCommand(func(string) string { return "" }, &out)
		cmd.SetArgs([]string{"--url", srv.URL + tc.path})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if (err == nil) != tc.ok || tc.ok && out.String() != "ok\n" {
			t.Errorf("%s: %v, %q", tc.path, err, out.String())
		}
	}
}
