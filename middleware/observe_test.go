package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/go-tenancy/tenancy/store/memstore"
)

type countedRequest struct {
	tenant        string
	method, route string
	status        int
}

type requestCounter struct {
	mu   sync.Mutex
	seen []countedRequest
}

func (c *requestCounter) Request(_ context.Context, t *tenancy.Tenant, method, route string, status int, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := ""
	if t != nil {
		id = t.Identifier
	}
	c.seen = append(c.seen, countedRequest{id, method, route, status})
}

// TestObserve: the observation of every request, served or refused, holds
// the route, the status and the tenant resolved.
func TestObserve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memstore.New()
	if _, err := store.Create(ctx, &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	sus, _ := store.Create(ctx, &tenancy.Tenant{ID: "t-sus", Identifier: "sus-co", Name: "Sus"})
	if _, err := store.SetStatus(ctx, sus.ID, tenancy.StatusSuspended, ""); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes/{id}", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("note")) })
	mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {})
	counter := &requestCounter{}
	var last middleware.Observation
	h := middleware.Observe(middleware.ObserveConfig{Metrics: counter, Done: func(_ *http.Request, o *middleware.Observation) { last = *o }})(
		middleware.New(middleware.Config{Resolver: resolve.Header{Lookup: store}, PublicPaths: []string{"GET /healthz"}})(middleware.Route(mux)))

	for _, c := range []struct {
		path, tenant string
		want         countedRequest
		outcome      string
		bytes        int64
	}{
		{"/notes/1", "acme-corp", countedRequest{"acme-corp", "GET", "GET /notes/{id}", 200}, middleware.OutcomeOK, 4},
		{"/notes/1", "sus-co", countedRequest{"sus-co", "GET", "", 403}, middleware.OutcomeSuspended, -1},
		{"/notes/1", "nobody", countedRequest{"", "GET", "", 404}, middleware.OutcomeNotFound, -1},
		{"/nowhere", "acme-corp", countedRequest{"acme-corp", "GET", "", 404}, middleware.OutcomeOK, -1},
		{"/healthz", "", countedRequest{"", "GET", "GET /healthz", 200}, "", 0},
	} {
		r := httptest.NewRequest(http.MethodGet, c.path, nil)
		if c.tenant != "" {
			r.Header.Set("X-Tenant-ID", c.tenant)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		got := counter.seen[len(counter.seen)-1]
		if got != c.want || last.Outcome != c.outcome || last.Route != c.want.route || last.Status != c.want.status || (c.bytes >= 0 && last.Bytes != c.bytes) {
			t.Errorf("%s as %q: counted %+v, observed %+v; want %+v, outcome %q", c.path, c.tenant, got, last, c.want, c.outcome)
		}
	}
}
