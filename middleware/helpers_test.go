package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/prometheus/client_golang/prometheus"
)

var fixture = []*tenancy.Tenant{
	{ID: "t-acme", Identifier: "acme-corp", Name: "Acme", Tier: "pro", Aliases: []string{"acme"}, Domains: []string{"app.acme.com"}},
	{ID: "t-globex", Identifier: "globex", Name: "Globex"},
	{ID: "t-initech", Identifier: "initech", Name: "Initech", Tier: "pro", Status: tenancy.StatusSuspended},
	{ID: "t-umbrella", Identifier: "umbrella", Name: "Umbrella", Status: tenancy.StatusDeleted},
	{ID: "t-hooli", Identifier: "hooli", Name: "Hooli", Status: tenancy.StatusProvisioning},
	{ID: "t-piedpiper", Identifier: "pied-piper", Name: "Pied Piper", Status: tenancy.StatusFailed},
}

// bundle is what most tests need: the real cache over a memory store, a
// metrics registry and a log buffer.
type bundle struct {
	store *memstore.Store
	cache *cache.Store
	reg   *prometheus.Registry
	// metrics counts into reg.
	metrics *promtenancy.Metrics
	logs    *syncBuffer
}

func setup(t testing.TB) *bundle {
	t.Helper()
	s := memstore.New()
	for _, f := range fixture {
		if _, err := s.Create(context.Background(), f); err != nil {
			t.Fatalf("create %s: %v", f.Identifier, err)
		}
	}
	logs := &syncBuffer{}
	c := cache.New(s, cache.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { _ = c.Close() })
	reg := prometheus.NewRegistry()
	m, err := promtenancy.New(promtenancy.Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{store: s, cache: c, reg: reg, metrics: m, logs: logs}
}

func (b *bundle) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b.logs, nil)) }

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

// tenantEcho answers 200 with the tenant ID, the path it saw and the claims'
// subject, or "no tenant".
var tenantEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	t, ok := tenancy.FromContext(r.Context())
	if !ok {
		_, _ = io.WriteString(w, "no tenant")
		return
	}
	_, _ = io.WriteString(w, t.ID+" "+r.URL.Path)
})

// checkProblem asserts that rec is exactly the problem details that
// problem.FromError gives for want: status, headers and body byte for byte,
// so nothing of the request can have been echoed.
func checkProblem(t testing.TB, status int, header http.Header, body []byte, want error) {
	t.Helper()
	d := problem.FromError(want)
	if status != d.Status {
		t.Fatalf("status = %d, want %d (%s); body %s", status, d.Status, d.Type, body)
	}
	if ct := header.Get("Content-Type"); ct != problem.ContentType {
		t.Errorf("Content-Type = %q", ct)
	}
	for k := range d.Header {
		if header.Get(k) != d.Header.Get(k) {
			t.Errorf("%s = %q, want %q", k, header.Get(k), d.Header.Get(k))
		}
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(d)
	if !bytes.Equal(body, buf.Bytes()) {
		t.Errorf("body = %s, want %s", body, buf.Bytes())
	}
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// failingLookup fails every lookup, as a store that is down would.
type failingLookup struct{}

var errStoreDown = errors.New("store is down")

func (failingLookup) GetByIdentifier(context.Context, string) (*tenancy.Tenant, error) {
	return nil, errStoreDown
}

func (failingLookup) GetByDomain(context.Context, string) (*tenancy.Tenant, error) {
	return nil, errStoreDown
}
