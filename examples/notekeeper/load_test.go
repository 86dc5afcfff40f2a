package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/problem"
)

// A load drives a running Notekeeper over HTTP with concurrent clients of
// many tenants, and checks every response: its status, and that no body
// carries another tenant's data. Each note's title starts with its
// tenant's identifier, and its tenant_id is read back from the row, so a
// note served to the wrong tenant shows in either.

// loadTenant is one tenant of a load.
type loadTenant struct {
	ident, id string
}

// result is one request of a load.
type result struct {
	start, end time.Time
	op         string
	tenant     int
	status     int    // 0: no response (err)
	err        string // transport error, or a client timeout
	retryAfter string
	problem    string // the problem type of an error response
	wrong      string // what, in the body, belongs to another tenant
}

func (r result) ok() bool { return r.status >= 200 && r.status < 300 }

// loadOptions says how to drive a server.
type loadOptions struct {
	url     string
	tenants []loadTenant
	// workers is the number of concurrent clients.
	workers int
	// timeout is the client's: a request that takes longer is a hang.
	timeout time.Duration
	// writes is the share of requests that create a note (0 to 1).
	writes float64
}

// load is a running load.
type load struct {
	cfg  loadOptions
	hc   *http.Client
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	results []result
	acked   map[int][]string // tenant index -> note IDs acknowledged with 201
}

// startLoad starts cfg.workers clients, which run until stop.
func startLoad(t *testing.T, cfg loadOptions) *load {
	t.Helper()
	if cfg.writes == 0 {
		cfg.writes = 0.3
	}
	l := &load{
		cfg:   cfg,
		stop:  make(chan struct{}),
		acked: map[int][]string{},
		hc: &http.Client{Timeout: cfg.timeout, Transport: &http.Transport{
			MaxIdleConnsPerHost: cfg.workers, MaxConnsPerHost: cfg.workers,
		}},
	}
	for w := range cfg.workers {
		l.wg.Add(1)
		go l.worker(uint64(w))
	}
	t.Cleanup(func() { l.halt() })
	return l
}

// halt stops the clients and waits for them; it returns every result.
func (l *load) halt() []result {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.hc.CloseIdleConnections()
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.results)
}

func (l *load) worker(seed uint64) {
	defer l.wg.Done()
	rnd := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		default:
		}
		ti := rnd.IntN(len(l.cfg.tenants))
		l.mu.Lock()
		ids := l.acked[ti]
		var id string
		if len(ids) > 0 {
			id = ids[rnd.IntN(len(ids))]
		}
		l.mu.Unlock()
		var r result
		switch p := rnd.Float64(); {
		case p < l.cfg.writes || id == "":
			r = l.request(ti, "create", http.MethodPost, "/notes",
				fmt.Sprintf(`{"title":"%s %d-%d","body":"by %s"}`, l.cfg.tenants[ti].ident, seed, n, l.cfg.tenants[ti].ident))
		case p < l.cfg.writes+(1-l.cfg.writes)/2:
			r = l.request(ti, "get", http.MethodGet, "/notes/"+id, "")
		default:
			r = l.request(ti, "list", http.MethodGet, "/notes?limit=20", "")
		}
		l.mu.Lock()
		l.results = append(l.results, r)
		l.mu.Unlock()
		if r.err != "" {
			time.Sleep(10 * time.Millisecond) // the server is gone: do not spin
		}
	}
}

// request sends one request as tenant ti and checks what came back.
func (l *load) request(ti int, op, method, path, body string) result {
	tn := l.cfg.tenants[ti]
	r := result{start: time.Now(), op: op, tenant: ti}
	defer func() { r.end = time.Now() }()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, l.cfg.url+path, rd)
	req.Header.Set("X-Tenant-ID", tn.ident)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		r.err = err.Error()
		r.end = time.Now()
		return r
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r.end = time.Now()
	if err != nil {
		r.err = "read body: " + err.Error()
		return r
	}
	r.status = resp.StatusCode
	if !r.ok() {
		r.retryAfter = resp.Header.Get("Retry-After")
		var d problem.Details
		if resp.Header.Get("Content-Type") == problem.ContentType && json.Unmarshal(b, &d) == nil {
			r.problem = strings.TrimPrefix(d.Type, problem.TypeBase)
		}
		r.wrong = l.foreign(ti, b)
		return r
	}
	var notes []Note
	if op == "list" {
		err = json.Unmarshal(b, &notes)
	} else {
		var n Note
		err = json.Unmarshal(b, &n)
		notes = []Note{n}
	}
	if err != nil {
		r.wrong = fmt.Sprintf("undecodable body %q", b)
		return r
	}
	for _, n := range notes {
		if n.TenantID != tn.id || !strings.HasPrefix(n.Title, tn.ident+" ") {
			r.wrong = fmt.Sprintf("%s got note %s of tenant %q titled %q", tn.ident, n.ID, n.TenantID, n.Title)
			return r
		}
	}
	if op == "create" && r.status == http.StatusCreated {
		l.mu.Lock()
		l.acked[ti] = append(l.acked[ti], notes[0].ID)
		l.mu.Unlock()
	}
	return r
}

// foreign returns what in an error body names another tenant, or "".
func (l *load) foreign(ti int, body []byte) string {
	for i, other := range l.cfg.tenants {
		if i != ti && (bytes.Contains(body, []byte(`"`+other.ident+` `)) || bytes.Contains(body, []byte(other.id))) {
			return fmt.Sprintf("%s's error names %s: %s", l.cfg.tenants[ti].ident, other.ident, body)
		}
	}
	return ""
}

// ackedNotes returns every acknowledged note ID with its tenant's ID.
func (l *load) ackedNotes() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]string{}
	for ti, ids := range l.acked {
		for _, id := range ids {
			out[id] = l.cfg.tenants[ti].id
		}
	}
	return out
}

// summary counts results by outcome, for the test log.
func summary(rs []result) string {
	counts := map[string]int{}
	for _, r := range rs {
		k := fmt.Sprint(r.status)
		if r.problem != "" {
			k += " " + r.problem
		}
		if r.err != "" {
			k = "error"
		}
		counts[k]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests:", len(rs))
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, counts[k])
	}
	return b.String()
}

// checkNoWrongTenant fails t for any response that carried another
// tenant's data.
func checkNoWrongTenant(t *testing.T, rs []result) {
	t.Helper()
	n := 0
	for _, r := range rs {
		if r.wrong != "" {
			if n < 5 {
				t.Errorf("wrong tenant: %s", r.wrong)
			}
			n++
		}
	}
	if n > 0 {
		t.Errorf("%d responses carried another tenant's data", n)
	}
}

// checkFailures fails t for any failed request that allowed does not
// accept; each failure must be a problem with Retry-After. It returns how
// many requests failed.
func checkFailures(t *testing.T, rs []result, allowed func(r result) bool) int {
	t.Helper()
	failed, reported := 0, 0
	for _, r := range rs {
		if r.ok() {
			continue
		}
		failed++
		bad := ""
		switch {
		case r.err != "":
			bad = "no response: " + r.err
		case !allowed(r):
			bad = fmt.Sprintf("status %d (%s) is not allowed at %s", r.status, r.problem, r.start.Format("15:04:05.000"))
		case r.problem == "" || r.retryAfter == "":
			bad = fmt.Sprintf("status %d without problem details and Retry-After", r.status)
		}
		if bad != "" {
			reported++
			if reported <= 5 {
				t.Errorf("%s %s: %s", r.op, r.start.Format("15:04:05.000"), bad)
			}
		}
	}
	if reported > 5 {
		t.Errorf("... %d bad failures in all", reported)
	}
	return failed
}

// provisionTenants provisions n tenants through the lifecycle, as the
// admin subcommand does, and returns them.
func provisionTenants(t *testing.T, b *backend, prefix string, n int) []loadTenant {
	t.Helper()
	out := make([]loadTenant, n)
	for i := range n {
		ident := fmt.Sprintf("%s%03d", prefix, i)
		tn, err := b.lifecycle.Provision(t.Context(), &tenancy.Tenant{ID: "id-" + ident, Identifier: ident, Name: ident})
		if err != nil {
			t.Fatalf("provision %s: %v", ident, err)
		}
		out[i] = loadTenant{ident: tn.Identifier, id: tn.ID}
	}
	return out
}
