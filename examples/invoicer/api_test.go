package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/examples/invoicer/billing"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/memstore"
)

// Handler tests: the whole HTTP stack (resolution over memstore and the
// cache, huma, problem details) on the fake billing store, in memory.

// Tenants the handler tests add to the seeded ones, one per status.
var statusTenants = []tenancy.Tenant{
	{ID: "tenant-suspended-001", Identifier: "suspended-co", Name: "Suspended", Status: tenancy.StatusSuspended},
	{ID: "tenant-deleted-001", Identifier: "deleted-co", Name: "Deleted", Status: tenancy.StatusDeleted},
	{ID: "tenant-pending-001", Identifier: "pending-co", Name: "Pending", Status: tenancy.StatusProvisioning},
}

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

type handlerFixture struct {
	client  *apiClient
	billing *fakeBilling
	mem     *memstore.Store
	tenants *cache.Store
	logs    *syncBuffer
}

func newHandlerFixture(t *testing.T, configure ...func(*handlerConfig)) *handlerFixture {
	t.Helper()
	mem := memstore.New()
	for _, tn := range append(append([]tenancy.Tenant{}, seedTenants...), statusTenants...) {
		if _, err := mem.Create(t.Context(), &tn); err != nil {
			t.Fatalf("create tenant: %v", err)
		}
	}
	f := &handlerFixture{billing: newFakeBilling(), mem: mem, logs: &syncBuffer{}}
	logger := slog.New(tenancy.NewLogHandler(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	reg := service.NewRegistry()
	metrics, err := promtenancy.New(promtenancy.Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	f.tenants = cache.New(mem, cache.Config{Metrics: metrics, Logger: logger})
	t.Cleanup(func() { _ = f.tenants.Close() })
	cfg := handlerConfig{
		Billing:        f.billing,
		Tenants:        f.tenants,
		BaseDomain:     "localhost",
		HeaderFallback: true,
		Registry:       reg,
		Metrics:        metrics,
		Logger:         logger,
	}
	for _, c := range configure {
		c(&cfg)
	}
	f.client = &apiClient{base: "http://127.0.0.1:8000", hc: &http.Client{Transport: handlerTransport{newHandler(cfg)}}}
	return f
}

func TestHandlerContract(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t)
	runContract(t, f.client)
	logs := f.logs.String()
	if !strings.Contains(logs, `"tenant_id":"`+acmeID+`","tenant":"`+acme+`"`) {
		t.Errorf("no request log line with acme:\n%s", logs)
	}
	// A refused request logs the identifier asked for by subdomain.
	if !strings.Contains(logs, `"tenant":"initech-unknown","outcome":"not_found"`) {
		t.Errorf("no log line names the unknown subdomain:\n%s", logs)
	}
}

// TestHandlerCustomDomain: a verified custom domain names its tenant; an
// unverified one names nobody, exactly like an unknown one.
func TestHandlerCustomDomain(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t)
	ctx := t.Context()
	if _, err := f.mem.AddDomain(ctx, acmeID, "billing.acme.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mem.AddDomain(ctx, globexID, "pay.globex.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mem.VerifyDomain(ctx, acmeID, "billing.acme.example"); err != nil {
		t.Fatal(err)
	}
	bob := f.client.createCustomer(t, host("billing.acme.example"), "Bob", "bob@example.com")
	if got := f.client.customers(t, host("acme.localhost")); len(got) != 1 || got[0].ID != bob.ID {
		t.Fatalf("the custom domain's customer is not acme's: %+v", got)
	}
	unverified := f.client.do(t, "GET", "/customers", host("pay.globex.example"), "")
	unknown := f.client.do(t, "GET", "/customers", host("nobody.example"), "")
	unverified.problem(t, http.StatusNotFound, problem.SlugTenantNotFound)
	if string(unverified.body) != string(unknown.body) {
		t.Fatalf("an unverified domain answers %s, an unknown one %s", unverified.body, unknown.body)
	}
	// The custom domain and a header naming another tenant disagree.
	f.client.do(t, "GET", "/customers", via{host: "billing.acme.example", tenant: globex}, "").problem(t, http.StatusForbidden, problem.SlugTenantConflict)
}

// TestHandlerHeaderFallbackOff: with HEADER_FALLBACK=false only the host
// names the tenant.
func TestHandlerHeaderFallbackOff(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t, func(c *handlerConfig) { c.HeaderFallback = false })
	f.client.do(t, "GET", "/customers", hdr(acme), "").problem(t, http.StatusBadRequest, problem.SlugTenantMissing)
	f.client.do(t, "GET", "/customers", via{host: "globex.localhost", tenant: acme}, "").want(t, http.StatusOK)
	var doc struct {
		Components struct {
			SecuritySchemes map[string]any `json:"securitySchemes"`
		} `json:"components"`
	}
	f.client.do(t, "GET", "/openapi.json", via{}, "").want(t, http.StatusOK).decode(t, &doc)
	if len(doc.Components.SecuritySchemes) != 0 {
		t.Fatalf("the description documents X-Tenant-ID, which is off: %+v", doc.Components.SecuritySchemes)
	}
}

// TestHandlerTrustedProxy: X-Forwarded-Host counts from a trusted proxy
// only (the in-memory transport's peer is 192.0.2.10).
func TestHandlerTrustedProxy(t *testing.T) {
	t.Parallel()
	trusting := newHandlerFixture(t, func(c *handlerConfig) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	})
	trusting.client.createCustomer(t, hdr(globex), "Hank", "hank@globex.example")
	v := via{host: "internal-lb:8000", header: map[string]string{"X-Forwarded-Host": "globex.localhost", "X-Forwarded-For": "198.51.100.7"}}
	if got := trusting.client.customers(t, v); len(got) != 1 || got[0].Name != "Hank" {
		t.Fatalf("behind a trusted proxy globex lists %+v", got)
	}
	other := newHandlerFixture(t, func(c *handlerConfig) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	other.client.do(t, "GET", "/customers", v, "").problem(t, http.StatusBadRequest, problem.SlugTenantMissing)
}

func TestHandlerTenantStatus(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t)
	for _, tc := range []struct {
		label string
		code  int
		slug  string
	}{
		{"suspended-co", http.StatusForbidden, problem.SlugTenantSuspended},
		{"deleted-co", http.StatusForbidden, problem.SlugTenantDeleted},
		{"pending-co", http.StatusServiceUnavailable, problem.SlugTenantNotReady},
	} {
		for _, v := range []via{host(tc.label + ".localhost"), hdr(tc.label)} {
			f.client.do(t, "POST", "/customers", v, `{"name":"X","email":"x@example.com"}`).problem(t, tc.code, tc.slug)
		}
	}
	if len(f.billing.tenants) != 0 {
		t.Fatalf("a refused tenant reached the store: %+v", f.billing.tenants)
	}
}

func TestHandlerListParameters(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t)
	for _, tc := range []struct {
		query string
		want  billing.Page
	}{
		{"", billing.Page{Limit: 50}},
		{"?limit=1&offset=3", billing.Page{Limit: 1, Offset: 3}},
		{"?limit=100", billing.Page{Limit: 100}},
	} {
		f.client.do(t, "GET", "/customers"+tc.query, hdr(acme), "").want(t, http.StatusOK)
		if got := f.billing.pages[len(f.billing.pages)-1]; got != tc.want {
			t.Errorf("%q: store asked for %+v, want %+v", tc.query, got, tc.want)
		}
	}
	for _, q := range []string{"?limit=0", "?limit=101", "?offset=-1", "?limit=x"} {
		f.client.do(t, "GET", "/customers"+q, hdr(acme), "").problem(t, http.StatusUnprocessableEntity, "")
	}
	f.client.do(t, "GET", "/invoices?status=paid&limit=7&offset=2", hdr(acme), "").want(t, http.StatusOK)
	if got := f.billing.filters; len(got) != 1 || got[0] != (billing.InvoiceFilter{Status: billing.StatusPaid, Page: billing.Page{Limit: 7, Offset: 2}}) {
		t.Fatalf("filters asked for: %v", got)
	}
}

func TestHandlerStoreFailureIsA500WithoutDetail(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t)
	f.billing.mu.Lock()
	f.billing.err = errors.New("connection refused by 10.0.0.7 (secret-internal-detail)")
	f.billing.mu.Unlock()
	id := "7d48e666-41af-4681-9ca0-278bbd1bb3c5"
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/customers", `{"name":"X","email":"x@example.com"}`},
		{"GET", "/customers", ""},
		{"GET", "/customers/" + id, ""},
		{"DELETE", "/customers/" + id, ""},
		{"POST", "/invoices", invoiceBody(id)},
		{"GET", "/invoices", ""},
		{"POST", "/invoices/" + id + "/issue", ""},
	} {
		resp := f.client.do(t, r.method, r.path, hdr(acme), r.body)
		resp.problem(t, http.StatusInternalServerError, problem.SlugInternal)
		if bytes.Contains(resp.body, []byte("secret")) {
			t.Fatalf("%s %s leaks the error: %s", r.method, r.path, resp.body)
		}
	}
	if !strings.Contains(f.logs.String(), "secret-internal-detail") {
		t.Fatal("the failure is not logged")
	}
}

// TestOpenAPI: every operation is documented, with the statuses it answers.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string                     `json:"operationId"`
			Responses   map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	f.client.do(t, "GET", "/openapi.json", via{}, "").want(t, http.StatusOK).decode(t, &doc)
	want := map[string][]string{
		"create-customer": {"201", "409", "422"}, "list-customers": {"200"}, "get-customer": {"200", "404"},
		"update-customer": {"200", "409"}, "delete-customer": {"204", "409"},
		"create-invoice": {"201", "422"}, "list-invoices": {"200"}, "get-invoice": {"200", "404"},
		"update-invoice": {"200", "409"}, "issue-invoice": {"200", "409"}, "pay-invoice": {"200", "409"}, "void-invoice": {"200", "409"},
	}
	seen := 0
	for _, ops := range doc.Paths {
		for _, op := range ops {
			codes, ok := want[op.OperationID]
			if !ok {
				t.Errorf("unexpected operation %s", op.OperationID)
				continue
			}
			seen++
			for _, c := range codes {
				if op.Responses[c] == nil {
					t.Errorf("%s does not document %s", op.OperationID, c)
				}
			}
		}
	}
	if seen != len(want) {
		t.Fatalf("%d operations documented, want %d", seen, len(want))
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	c, err := loadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8000 || c.BaseDomain != "localhost" || !c.HeaderFallback || c.TenantStore != service.StoreDB || !c.SeedDemo ||
		!c.MigrateOnStart || c.DataDir != "./data/invoicer" || c.RedisPrefix != "invoicer:" || len(c.TrustedProxies) != 0 || c.SeedDemoData {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = loadConfig(env(map[string]string{"BASE_DOMAIN": "Example.COM.", "HEADER_FALLBACK": "false", "TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseDomain != "example.com" || c.HeaderFallback || len(c.TrustedProxies) != 2 || c.TrustedProxies[1] != netip.MustParsePrefix("192.0.2.7/32") {
		t.Fatalf("set: %+v", c)
	}
	_, err = loadConfig(env(map[string]string{"BASE_DOMAIN": "localhost:8000", "TRUSTED_PROXIES": "everyone", "HEADER_FALLBACK": "maybe", "TENANT_STORE": "redis"}))
	for _, want := range []string{"BASE_DOMAIN", "TRUSTED_PROXIES", "HEADER_FALLBACK", "TENANT_STORE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "everyone") {
		t.Errorf("the error repeats a value: %v", err)
	}
}
