package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/jackc/pgx/v5/pgconn"
)

// Handler tests: the whole HTTP stack (tenancy middleware over memstore and
// the cache, huma, problem details) on the fake NoteStore, served in memory.

// Tenants the handler tests add to the seeded ones, one per status.
var statusTenants = []tenancy.Tenant{
	{ID: "tenant-suspended-001", Identifier: "suspended-co", Name: "Suspended", Status: tenancy.StatusSuspended},
	{ID: "tenant-deleted-001", Identifier: "deleted-co", Name: "Deleted", Status: tenancy.StatusDeleted},
	{ID: "tenant-pending-001", Identifier: "pending-co", Name: "Pending", Status: tenancy.StatusProvisioning},
	{ID: "tenant-failed-001", Identifier: "failed-co", Name: "Failed", Status: tenancy.StatusFailed},
}

type handlerFixture struct {
	client  *apiClient
	notes   *fakeNotes
	tenants *cache.Store
	logs    *syncBuffer
	mu      sync.Mutex
	ready   error
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

func newHandlerFixture(t testing.TB, configure ...func(*handlerConfig)) *handlerFixture {
	t.Helper()
	mem := memstore.New()
	for _, tn := range append(append([]tenancy.Tenant{}, seedTenants...), statusTenants...) {
		if _, err := mem.Create(t.Context(), &tn); err != nil {
			t.Fatalf("create tenant: %v", err)
		}
	}
	f := &handlerFixture{notes: newFakeNotes(), logs: &syncBuffer{}}
	logger := slog.New(tenancy.NewLogHandler(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	reg := service.NewRegistry()
	metrics, err := promtenancy.New(promtenancy.Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	f.tenants = cache.New(mem, cache.Config{Metrics: metrics, Logger: logger})
	t.Cleanup(func() { _ = f.tenants.Close() })
	cfg := handlerConfig{
		Notes:    f.notes,
		Tenants:  f.tenants,
		Registry: reg,
		Metrics:  metrics,
		Logger:   logger,
		Ready: func(context.Context) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.ready
		},
	}
	for _, c := range configure {
		c(&cfg)
	}
	f.client = &apiClient{base: "http://notekeeper.test", hc: &http.Client{Transport: handlerTransport{newHandler(cfg)}}}
	return f
}

func TestHandlerContract(t *testing.T) {
	t.Parallel()
	runContract(t, newHandlerFixture(t).client)
}

func TestHandlerTenantStatus(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t)
	cases := []struct {
		tenant     string
		status     int
		slug       string
		retryAfter bool
	}{
		{"suspended-co", http.StatusForbidden, problem.SlugTenantSuspended, false},
		{"deleted-co", http.StatusForbidden, problem.SlugTenantDeleted, false},
		{"pending-co", http.StatusServiceUnavailable, problem.SlugTenantNotReady, true},
		{"failed-co", http.StatusServiceUnavailable, problem.SlugTenantNotReady, true},
	}
	for _, tc := range cases {
		t.Run(tc.tenant, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				body := ""
				if method == http.MethodPost {
					body = `{"title":"x"}`
				}
				r := f.client.do(t, method, "/notes", tc.tenant, body)
				r.problem(t, tc.status, tc.slug)
				if got := r.header.Get("Retry-After") != ""; got != tc.retryAfter {
					t.Errorf("Retry-After present = %v, want %v", got, tc.retryAfter)
				}
			}
		})
	}
	if len(f.notes.notes) != 0 {
		t.Fatalf("a refused tenant reached the store: %+v", f.notes.notes)
	}
}

func TestHandlerSuspensionTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t)
	f.client.do(t, http.MethodGet, "/notes", acme, "").want(t, http.StatusOK) // now cached
	if _, err := f.tenants.SetStatus(t.Context(), acmeID, tenancy.StatusSuspended, "unpaid"); err != nil {
		t.Fatal(err)
	}
	f.client.do(t, http.MethodGet, "/notes", acme, "").problem(t, http.StatusForbidden, problem.SlugTenantSuspended)
	f.client.do(t, http.MethodGet, "/notes", globex, "").want(t, http.StatusOK)
	if _, err := f.tenants.SetStatus(t.Context(), acmeID, tenancy.StatusActive, ""); err != nil {
		t.Fatal(err)
	}
	f.client.do(t, http.MethodGet, "/notes", acme, "").want(t, http.StatusOK)
}

func TestHandlerListPage(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t)
	for i := range 55 {
		f.client.createNote(t, acme, acmeID, "note "+string(rune('a'+i%26)), "")
	}
	cases := []struct {
		query string
		want  Page
		count int
	}{
		{"", Page{Limit: 50, Offset: 0}, 50},
		{"?limit=1", Page{Limit: 1, Offset: 0}, 1},
		{"?limit=100", Page{Limit: 100, Offset: 0}, 55},
		{"?limit=100&offset=50", Page{Limit: 100, Offset: 50}, 5},
		{"?offset=60", Page{Limit: 50, Offset: 60}, 0},
	}
	for _, tc := range cases {
		r := f.client.do(t, http.MethodGet, "/notes"+tc.query, acme, "").want(t, http.StatusOK)
		if got := r.notes(t); len(got) != tc.count {
			t.Errorf("%q: %d notes, want %d", tc.query, len(got), tc.count)
		}
		f.notes.mu.Lock()
		got := f.notes.pages[len(f.notes.pages)-1]
		f.notes.mu.Unlock()
		if got != tc.want {
			t.Errorf("%q: store asked for %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

func TestHandlerStoreFailureIsA500WithoutDetail(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t)
	n := f.client.createNote(t, acme, acmeID, "before the outage", "")
	f.notes.mu.Lock()
	f.notes.err = errors.New("connection refused by 10.0.0.7 (secret-internal-detail)")
	f.notes.mu.Unlock()
	for _, req := range []struct{ method, path, body string }{
		{http.MethodPost, "/notes", `{"title":"x"}`},
		{http.MethodGet, "/notes", ""},
		{http.MethodGet, "/notes/" + n.ID, ""},
		{http.MethodPatch, "/notes/" + n.ID, `{"title":"x"}`},
		{http.MethodDelete, "/notes/" + n.ID, ""},
	} {
		r := f.client.do(t, req.method, req.path, acme, req.body)
		r.problem(t, http.StatusInternalServerError, problem.SlugInternal)
		if bytes.Contains(r.body, []byte("secret")) {
			t.Fatalf("%s %s leaks the error: %s", req.method, req.path, r.body)
		}
	}
	// The operator sees the error, with the tenant.
	var found bool
	for _, line := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(line, "note request failed") && strings.Contains(line, "secret-internal-detail") &&
			strings.Contains(line, `"tenant_id":"`+acmeID+`"`) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no error log line with the tenant:\n%s", f.logs.String())
	}
}

// TestHandlerDatabaseOutageIsA503: a connection-level failure is the
// service's, not the request's: 503 with Retry-After; a statement that ran
// out of time is a 504. Neither says what failed.
func TestHandlerDatabaseOutageIsA503(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		status int
		slug   string
	}{
		{fmt.Errorf("list notes: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection (secret-internal-detail)"}), http.StatusServiceUnavailable, problem.SlugUnavailable},
		{fmt.Errorf("list notes: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), http.StatusServiceUnavailable, problem.SlugUnavailable},
		{fmt.Errorf("list notes: %w", context.DeadlineExceeded), http.StatusGatewayTimeout, problem.SlugTimeout},
	} {
		f := newHandlerFixture(t)
		f.notes.mu.Lock()
		f.notes.err = tc.err
		f.notes.mu.Unlock()
		r := f.client.do(t, http.MethodGet, "/notes", acme, "")
		r.problem(t, tc.status, tc.slug)
		if r.header.Get("Retry-After") == "" || bytes.Contains(r.body, []byte("secret")) {
			t.Fatalf("%v: Retry-After %q, body %s", tc.err, r.header.Get("Retry-After"), r.body)
		}
	}
}

func TestHandlerReadyz(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t)
	f.client.do(t, http.MethodGet, "/readyz", "", "").want(t, http.StatusOK)
	f.mu.Lock()
	f.ready = errors.New("dial tcp 10.0.0.7:5432: secret-internal-detail")
	f.mu.Unlock()
	r := f.client.do(t, http.MethodGet, "/readyz", "", "")
	r.problem(t, http.StatusServiceUnavailable, "about:blank")
	if bytes.Contains(r.body, []byte("secret")) {
		t.Fatalf("/readyz leaks the error: %s", r.body)
	}
	f.client.do(t, http.MethodGet, "/healthz", "", "").want(t, http.StatusOK) // the process is still up
}

func TestHandlerRateLimitPerTenant(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t, func(c *handlerConfig) {
		c.Limiter = limit.New(limit.Config{Default: limit.Rate{Limit: 2, Period: time.Minute}})
	})
	for range 2 {
		f.client.do(t, http.MethodGet, "/notes", acme, "").want(t, http.StatusOK)
	}
	r := f.client.do(t, http.MethodGet, "/notes", acme, "")
	r.problem(t, http.StatusTooManyRequests, problem.SlugRateLimited)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	f.client.do(t, http.MethodGet, "/notes", globex, "").want(t, http.StatusOK)
	f.client.do(t, http.MethodGet, "/healthz", "", "").want(t, http.StatusOK) // public paths are not limited
}

func TestHandlerAccessLog(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t)
	f.client.createNote(t, acme, acmeID, "logged", "")
	f.client.do(t, http.MethodGet, "/notes", marker+"-unknown", "").want(t, http.StatusNotFound)
	f.client.do(t, http.MethodGet, "/notes", marker+"_INVALID", "").want(t, http.StatusBadRequest)

	type line struct {
		Msg      string `json:"msg"`
		Method   string `json:"method"`
		Path     string `json:"path"`
		Status   int    `json:"status"`
		TenantID string `json:"tenant_id"`
		Tenant   string `json:"tenant"`
	}
	var requests []line
	for _, raw := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		var l line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("log line %q: %v", raw, err)
		}
		if l.Msg == "request" {
			requests = append(requests, l)
		}
	}
	want := []line{
		{Msg: "request", Method: "POST", Path: "/notes", Status: 201, TenantID: acmeID, Tenant: acme},
		{Msg: "request", Method: "GET", Path: "/notes", Status: 404, Tenant: marker + "-unknown"},
		{Msg: "request", Method: "GET", Path: "/notes", Status: 400},
	}
	if len(requests) != len(want) {
		t.Fatalf("request log lines %+v, want %+v", requests, want)
	}
	for i := range want {
		if requests[i] != want[i] {
			t.Errorf("log line %d = %+v, want %+v", i, requests[i], want[i])
		}
	}
	if strings.Contains(f.logs.String(), marker+"_") || !strings.Contains(f.logs.String(), `"outcome":"invalid"`) {
		t.Fatalf("the log repeats an invalid header value, or no outcome:\n%s", f.logs.String())
	}
}

// panickingNotes fails every call with a panic.
type panickingNotes struct{ NoteStore }

func (panickingNotes) List(context.Context, *tenancy.Tenant, Page) ([]Note, error) {
	panic("boom")
}

func TestHandlerPanicIsA500(t *testing.T) {
	t.Parallel()
	f := newHandlerFixture(t, func(c *handlerConfig) { c.Notes = panickingNotes{c.Notes} })
	f.client.do(t, http.MethodGet, "/notes", acme, "").problem(t, http.StatusInternalServerError, problem.SlugInternal)
	if !strings.Contains(f.logs.String(), "handler panicked") {
		t.Fatalf("panic not logged:\n%s", f.logs.String())
	}
}

func TestRequireTenantWithoutMiddleware(t *testing.T) {
	t.Parallel()
	a := &notesAPI{notes: newFakeNotes(), logger: slog.New(slog.DiscardHandler)}
	_, err := a.list(t.Context(), &listInput{Limit: 10})
	var ae *service.APIError
	if !errors.As(err, &ae) || ae.GetStatus() != http.StatusBadRequest {
		t.Fatalf("list without a tenant: %v, want a 400", err)
	}
}
