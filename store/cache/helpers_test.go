package cache

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/store/memstore"
)

// countingStore is a real memstore that counts the lookups reaching it.
// Optionally, GetByIdentifier waits for gate after reading, which makes it a
// slow read that returns what the store held when it began.
type countingStore struct {
	*memstore.Store
	byID, byIdent, byAlias, byDomain atomic.Int64
	gate                             chan struct{}
	err                              atomic.Pointer[error]
}

func newCountingStore() *countingStore { return &countingStore{Store: memstore.New()} }

func (c *countingStore) lookups() int64 {
	return c.byID.Load() + c.byIdent.Load() + c.byAlias.Load() + c.byDomain.Load()
}

func (c *countingStore) after(t *tenancy.Tenant, err error) (*tenancy.Tenant, error) {
	if p := c.err.Load(); p != nil {
		return nil, *p
	}
	return t, err
}

func (c *countingStore) Get(ctx context.Context, id string) (*tenancy.Tenant, error) {
	c.byID.Add(1)
	return c.after(c.Store.Get(ctx, id))
}

func (c *countingStore) GetByIdentifier(ctx context.Context, identifier string) (*tenancy.Tenant, error) {
	c.byIdent.Add(1)
	t, err := c.Store.GetByIdentifier(ctx, identifier)
	if c.gate != nil {
		// Like a database call, the wait ends when ctx does.
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.after(t, err)
}

func (c *countingStore) GetByAlias(ctx context.Context, alias string) (*tenancy.Tenant, error) {
	c.byAlias.Add(1)
	return c.after(c.Store.GetByAlias(ctx, alias))
}

func (c *countingStore) GetByDomain(ctx context.Context, domain string) (*tenancy.Tenant, error) {
	c.byDomain.Add(1)
	return c.after(c.Store.GetByDomain(ctx, domain))
}

// countingMetrics counts the Metrics calls of a cache.
type countingMetrics struct {
	mu      sync.Mutex
	lookups map[[2]string]float64
	errs    map[string]float64
}

func newCountingMetrics() *countingMetrics {
	return &countingMetrics{lookups: make(map[[2]string]float64), errs: make(map[string]float64)}
}

func (m *countingMetrics) CacheLookup(_ context.Context, level, result string) {
	m.mu.Lock()
	m.lookups[[2]string{level, result}]++
	m.mu.Unlock()
}

func (m *countingMetrics) CacheError(_ context.Context, op string) {
	m.mu.Lock()
	m.errs[op]++
	m.mu.Unlock()
}

// allOps are the operations a cache reports failures of.
var allOps = []string{OpGet, OpSet, OpInvalidate, OpPing, OpDecode, OpMessage}

// newCache returns a cache over st, closed when t ends, with metrics of its
// own.
func newCache(t testing.TB, st tenancy.Store, cfg Config) (*Store, *countingMetrics) {
	t.Helper()
	m := newCountingMetrics()
	if cfg.Metrics == nil {
		cfg.Metrics = m
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	c := New(st, cfg)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close cache: %v", err)
		}
	})
	return c, m
}

// createTenant creates an active tenant in st, bypassing any cache. Names
// with a dot are custom domains, verified; the others are aliases.
func createTenant(t testing.TB, st tenancy.Store, identifier string, names ...string) *tenancy.Tenant {
	t.Helper()
	ctx := context.Background()
	in := &tenancy.Tenant{ID: "id-" + identifier, Identifier: identifier, Name: strings.ToUpper(identifier)}
	for _, n := range names {
		if strings.Contains(n, ".") {
			in.Domains = append(in.Domains, n)
		} else {
			in.Aliases = append(in.Aliases, n)
		}
	}
	tn, err := st.Create(ctx, in)
	if err != nil {
		t.Fatalf("create %s: %v", identifier, err)
	}
	for _, d := range tn.Domains {
		if _, err := st.VerifyDomain(ctx, tn.ID, d); err != nil {
			t.Fatalf("verify %s: %v", d, err)
		}
	}
	if cs, ok := st.(*countingStore); ok {
		st = cs.Store // read back without counting
	}
	if tn, err = st.Get(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	return tn
}

// requests returns how many lookups at level had result.
func requests(t testing.TB, m *countingMetrics, level, result string) float64 {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookups[[2]string{level, result}]
}

// errorCount returns how many failures of op were reported.
func errorCount(t testing.TB, m *countingMetrics, op string) float64 {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errs[op]
}

// eventually polls cond every 10ms until it holds or within passes, and
// returns how long that took.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not true within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// status returns the status that c reports for identifier, or the error text.
func status(c tenancy.Store, identifier string) string {
	tn, err := c.GetByIdentifier(context.Background(), identifier)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(tn.Status)
}
