package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/go-tenancy/tenancy/lifecycle"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/go-tenancy/tenancy/store/pgstore"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

var pgSet = fstest.MapFS{
	"001_notes.sql": {Data: []byte("-- +goose Up\nCREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, " +
		postgres.TenantIDColumn + ", title text NOT NULL);\n" + strings.Join(postgres.EnableRLS("notes"), ";\n") + ";\n")},
}

// brokenSet fails at its second migration in every target.
var brokenSet = fstest.MapFS{
	"001_notes.sql":  pgSet["001_notes.sql"],
	"002_broken.sql": {Data: []byte("-- +goose Up\nALTER TABLE no_such_table ADD COLUMN x int;\n")},
}

type env struct {
	pool    *pgxpool.Pool
	store   *cache.Store
	rdb     *redis.Client
	limiter *limit.Limiter
	journal *migrate.PostgresJournal
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.NewDatabase(t)
	pool := testenv.Pool(t, dsn, func(c *pgxpool.Config) { c.MaxConns = 8 })
	if err := pgstore.Migrate(ctx, pool, pgstore.Config{}); err != nil {
		t.Fatal(err)
	}
	durable, err := pgstore.New(ctx, pool, pgstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rdb := testenv.Redis(t)
	prefix := testenv.RandomName("lc") + ":"
	store := cache.New(durable, cache.Config{Redis: rdb, Prefix: prefix})
	t.Cleanup(func() { _ = store.Close() })
	journal, err := migrate.NewPostgresJournal(ctx, pool, "tenancy")
	if err != nil {
		t.Fatal(err)
	}
	return &env{
		pool:    pool,
		store:   store,
		rdb:     rdb,
		limiter: limit.New(limit.Config{Default: limit.Rate{Limit: 100}, Redis: rdb, Prefix: prefix + "rl:"}),
		journal: journal,
	}
}

func (e *env) manager(t *testing.T, p isolation.Provider, set fs.FS, hooks ...lifecycle.Hook) *lifecycle.Manager {
	t.Helper()
	r, err := migrate.New(migrate.Config{Migrations: set, Targets: p.(isolation.Migratable), Store: e.store, Journal: e.journal})
	if err != nil {
		t.Fatal(err)
	}
	m, err := lifecycle.New(lifecycle.Config{
		Store: e.store, Provider: p, Migrator: r,
		Components: []tenancy.Component{e.store, e.limiter}, Hooks: hooks,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newTenant() *tenancy.Tenant {
	id := testenv.RandomName("lc-")
	return &tenancy.Tenant{Identifier: id, Name: "Tenant " + id, Tier: "starter", Domains: []string{id + ".example.com"}}
}

// recorder collects lifecycle events.
type recorder struct{ kinds []lifecycle.EventKind }

func (r *recorder) hook(_ context.Context, e lifecycle.Event) error {
	r.kinds = append(r.kinds, e.Kind)
	return nil
}

func TestProvisionAndTransitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	p, err := postgres.NewSchema(ctx, e.pool, postgres.SchemaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	m := e.manager(t, p, pgSet, rec.hook)
	tn, err := m.Provision(ctx, newTenant())
	if err != nil {
		t.Fatal(err)
	}
	if tn.Status != tenancy.StatusActive {
		t.Fatalf("status %s", tn.Status)
	}
	if _, err := p.Exec(ctx, tn, "INSERT INTO notes (title) VALUES ('hello')"); err != nil {
		t.Fatalf("provisioned tenant cannot write: %v", err)
	}
	if tn, err = m.Suspend(ctx, tn.ID, "unpaid"); err != nil || tn.Status != tenancy.StatusSuspended || tn.StatusReason != "unpaid" {
		t.Fatalf("suspend: %+v %v", tn, err)
	}
	if tn, err = m.Activate(ctx, tn.ID); err != nil || tn.Status != tenancy.StatusActive {
		t.Fatalf("activate: %+v %v", tn, err)
	}
	if tn, err = m.Delete(ctx, tn.ID); err != nil || tn.Status != tenancy.StatusDeleted {
		t.Fatalf("delete: %+v %v", tn, err)
	}
	want := []lifecycle.EventKind{lifecycle.Provisioned, lifecycle.Suspended, lifecycle.Activated, lifecycle.Deleted}
	if !slices.Equal(rec.kinds, want) {
		t.Fatalf("events %v, want %v", rec.kinds, want)
	}
}

// TestProvisionFailureLeavesNoActiveTenant: a migration that fails midway
// leaves the tenant failed, with the reason; Retry after the fix activates
// it.
func TestProvisionFailureLeavesNoActiveTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	p, err := postgres.NewSchema(ctx, e.pool, postgres.SchemaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	broken := e.manager(t, p, brokenSet, rec.hook)
	tn, err := broken.Provision(ctx, newTenant())
	if err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("want a migration failure, got %v", err)
	}
	stored, err := e.store.Get(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != tenancy.StatusFailed || !strings.Contains(stored.StatusReason, "002_broken.sql") {
		t.Fatalf("stored tenant: %s (%s)", stored.Status, stored.StatusReason)
	}
	if !errors.Is(stored.CheckStatus(), tenancy.ErrTenantNotReady) {
		t.Fatal("a failed tenant would be served")
	}
	if !slices.Equal(rec.kinds, []lifecycle.EventKind{lifecycle.ProvisionFailed}) {
		t.Fatalf("events %v", rec.kinds)
	}
	if _, err := broken.Activate(ctx, tn.ID); err == nil {
		t.Fatal("a failed tenant was activated without its storage")
	}

	fixed := e.manager(t, p, pgSet)
	tn, err = fixed.Retry(ctx, tn.ID)
	if err != nil || tn.Status != tenancy.StatusActive {
		t.Fatalf("retry: %+v %v", tn, err)
	}
}

// TestPurgeLeavesNothing purges tenants of every strategy after they were
// used (rows written, cache and rate-limit keys in Redis), then checks the
// catalog, the files and Redis directly.
func TestPurgeLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, strategy := range []string{"rls", "schema", "database", "sqlite"} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			var p isolation.Provider
			set := fs.FS(pgSet)
			dir := t.TempDir()
			var err error
			switch strategy {
			case "rls":
				p, err = postgres.NewRLS(ctx, e.pool, postgres.Config{})
			case "schema":
				p, err = postgres.NewSchema(ctx, e.pool, postgres.SchemaConfig{})
			case "database":
				p, err = postgres.NewDatabase(ctx, e.pool, postgres.DatabaseConfig{})
			case "sqlite":
				p, err = sqlite.New(sqlite.Config{Dir: dir})
				set = fstest.MapFS{"001_notes.sql": {Data: []byte("-- +goose Up\nCREATE TABLE notes (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, title TEXT NOT NULL);\n")}}
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			m := e.manager(t, p, set)
			keep, err := m.Provision(ctx, newTenant())
			if err != nil {
				t.Fatal(err)
			}
			gone, err := m.Provision(ctx, newTenant())
			if err != nil {
				t.Fatal(err)
			}
			for _, tn := range []*tenancy.Tenant{keep, gone} {
				insert := "INSERT INTO notes (title) VALUES ('x')"
				args := []any{}
				if strategy == "sqlite" {
					insert, args = "INSERT INTO notes (tenant_id, title) VALUES (?, 'x')", []any{tn.ID}
				}
				if _, err := p.Exec(ctx, tn, insert, args...); err != nil {
					t.Fatal(err)
				}
				// Fill the cache's Redis level and the rate limiter's key.
				if _, err := e.store.GetByIdentifier(ctx, tn.Identifier); err != nil {
					t.Fatal(err)
				}
				if _, _, err := e.limiter.Allow(ctx, tn); err != nil {
					t.Fatal(err)
				}
			}
			// The other tenant's cache entry, filled now so that no earlier
			// invalidation can have kept it out of Redis.
			if err := e.store.Invalidate(ctx, keep); err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.GetByIdentifier(ctx, keep.Identifier); err != nil {
				t.Fatal(err)
			}
			keepKeys := existingKeys(t, e.rdb, e.store.Keys(keep))
			goneKeys := append(e.store.Keys(gone), e.limiter.Keys(gone.ID)...)
			if len(keepKeys) == 0 || len(existingKeys(t, e.rdb, goneKeys)) == 0 {
				t.Fatal("the test left no Redis keys to check")
			}

			if err := m.Purge(ctx, gone.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.GetByIdentifier(ctx, gone.Identifier); !errors.Is(err, tenancy.ErrTenantNotFound) {
				t.Fatalf("purged tenant still resolves: %v", err)
			}
			if left := existingKeys(t, e.rdb, goneKeys); len(left) != 0 {
				t.Fatalf("Redis keys of the purged tenant left: %v", left)
			}
			if n := redisKeysWith(t, e.rdb, gone.ID); n != 0 {
				t.Fatalf("%d Redis keys naming the purged tenant left", n)
			}
			if still := existingKeys(t, e.rdb, keepKeys); len(still) != len(keepKeys) {
				t.Fatalf("the other tenant's cache keys %v were removed (left: %v)", keepKeys, still)
			}
			switch strategy {
			case "rls":
				var n int
				if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM notes WHERE tenant_id = $1", gone.ID).Scan(&n); err != nil || n != 0 {
					t.Fatalf("%d rows left (%v)", n, err)
				}
				if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM notes WHERE tenant_id = $1", keep.ID).Scan(&n); err != nil || n != 1 {
					t.Fatalf("other tenant has %d rows (%v)", n, err)
				}
			case "schema":
				name, _ := isolation.Name(isolation.DefaultPrefix, gone.Identifier)
				assertCount(t, e.pool, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name, 0)
			case "database":
				name, _ := isolation.Name(isolation.DefaultPrefix, gone.Identifier)
				assertCount(t, e.pool, "SELECT count(*) FROM pg_database WHERE datname = $1", name, 0)
				t.Cleanup(func() { _ = p.Destroy(context.Background(), keep) })
			case "sqlite":
				matches, _ := filepath.Glob(filepath.Join(dir, gone.Identifier+"*"))
				if len(matches) != 0 {
					t.Fatalf("files left: %v", matches)
				}
				if _, err := os.Stat(filepath.Join(dir, keep.Identifier+".db")); err != nil {
					t.Fatalf("other tenant's file: %v", err)
				}
			}
			records, err := e.journal.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for key, r := range records {
				if r.TenantID == gone.ID {
					t.Fatalf("journal keeps %s", key)
				}
			}
			// The identifier is free again and provisions from scratch.
			again := newTenant()
			again.Identifier, again.Domains = gone.Identifier, gone.Domains
			if _, err := m.Provision(ctx, again); err != nil {
				t.Fatalf("provision the identifier again: %v", err)
			}
		})
	}
}

func assertCount(t *testing.T, pool *pgxpool.Pool, sql, arg string, want int) {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, arg).Scan(&n); err != nil || n != want {
		t.Fatalf("%s (%s): %d, want %d (%v)", sql, arg, n, want, err)
	}
}

// existingKeys returns those of keys that exist in Redis.
func existingKeys(t *testing.T, rdb *redis.Client, keys []string) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		n, err := rdb.Exists(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			out = append(out, k)
		}
	}
	return out
}

// redisKeysWith counts the Redis keys that name tenantID (cache entries and
// rate-limit buckets).
func redisKeysWith(t *testing.T, rdb *redis.Client, tenantID string) int {
	t.Helper()
	var n int
	iter := rdb.Scan(context.Background(), 0, "*"+tenantID+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPurgingHookCanStopPurge: a hook that fails on Purging stops the purge
// before anything is removed.
func TestPurgingHookCanStopPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	p, err := postgres.NewSchema(ctx, e.pool, postgres.SchemaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	refuse := func(_ context.Context, ev lifecycle.Event) error {
		if ev.Kind == lifecycle.Purging {
			return fmt.Errorf("jobs still running")
		}
		return nil
	}
	m := e.manager(t, p, pgSet, refuse)
	tn, err := m.Provision(ctx, newTenant())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Purge(ctx, tn.ID); err == nil || !strings.Contains(err.Error(), "jobs still running") {
		t.Fatalf("purge: %v", err)
	}
	if _, err := p.Exec(ctx, tn, "INSERT INTO notes (title) VALUES ('still here')"); err != nil {
		t.Fatalf("data was removed: %v", err)
	}
	if _, err := e.store.Get(ctx, tn.ID); err != nil {
		t.Fatalf("record was removed: %v", err)
	}
}

// TestResidueReportsLeftovers: Residue is what makes Purge's check real: it
// names a schema that was not dropped.
func TestResidueReportsLeftovers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	p, err := postgres.NewSchema(ctx, e.pool, postgres.SchemaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	m := e.manager(t, p, pgSet)
	tn, err := m.Provision(ctx, newTenant())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.limiter.Allow(ctx, tn); err != nil { // a rate-limit key
		t.Fatal(err)
	}
	if err := e.store.Purge(ctx, tn.ID); err != nil { // the record only
		t.Fatal(err)
	}
	left, err := m.Residue(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := p.SchemaName(tn)
	for _, want := range []string{"schema " + name, "redis key " + e.limiter.Keys(tn.ID)[0]} {
		if !slices.Contains(left, want) {
			t.Errorf("residue %v does not name %q", left, want)
		}
	}
	if !slices.ContainsFunc(left, func(s string) bool {
		return strings.HasPrefix(s, "migration journal record ") && strings.Contains(s, name)
	}) {
		t.Errorf("residue %v does not name the journal record of %s", left, name)
	}
	if slices.Contains(left, "tenant record") {
		t.Errorf("residue %v names the purged record", left)
	}
}

// failingDestroy is a real provider whose Destroy fails, as a lost
// connection would make it.
type failingDestroy struct{ isolation.Provider }

func (f failingDestroy) Destroy(context.Context, *tenancy.Tenant) error {
	return errors.New("connection lost")
}

// TestFailedPurgeLeavesTenantRefused: a purge that fails midway leaves the
// tenant deleted (refused everywhere), never active with half its storage.
func TestFailedPurgeLeavesTenantRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	p, err := postgres.NewSchema(ctx, e.pool, postgres.SchemaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tn, err := e.manager(t, p, pgSet).Provision(ctx, newTenant())
	if err != nil {
		t.Fatal(err)
	}
	broken, err := lifecycle.New(lifecycle.Config{Store: e.store, Provider: failingDestroy{p}})
	if err != nil {
		t.Fatal(err)
	}
	if err := broken.Purge(ctx, tn.ID); err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Fatalf("purge: %v", err)
	}
	got, err := e.store.GetByIdentifier(ctx, tn.Identifier)
	if err != nil || got.Status != tenancy.StatusDeleted {
		t.Fatalf("after a failed purge: %+v, %v", got, err)
	}
	// Run again with a working provider: it completes.
	if err := e.manager(t, p, pgSet).Purge(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
}

// component is a tenancy.Component that holds one entry per tenant ID, as
// a job queue would hold queued jobs.
type component struct {
	mu      sync.Mutex
	held    map[string]bool
	failing error // returned by Forget while set
	sticky  bool  // Forget reports success and keeps the entry
	forgets int
	// onForget, when set, runs at the start of every Forget.
	onForget func(ctx context.Context, t *tenancy.Tenant)
}

func (c *component) hold(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil {
		c.held = map[string]bool{}
	}
	c.held[id] = true
}

func (c *component) Forget(ctx context.Context, t *tenancy.Tenant) error {
	if c.onForget != nil {
		c.onForget(ctx, t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgets++
	if c.failing != nil {
		return c.failing
	}
	if !c.sticky {
		delete(c.held, t.ID)
	}
	return nil
}

func (c *component) Residue(_ context.Context, t *tenancy.Tenant) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[t.ID] {
		return []string{"queued job of " + t.ID}, nil
	}
	return nil, nil
}

// fileEnv is a PostgreSQL-free setup: tenants in memory behind the cache
// on Redis, a SQLite file per tenant.
type fileEnv struct {
	durable  *memstore.Store
	cached   *cache.Store
	provider *sqlite.Provider
	rdb      *redis.Client
}

func newFileEnv(t *testing.T) *fileEnv {
	t.Helper()
	p, err := sqlite.New(sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	rdb := testenv.Redis(t)
	durable := memstore.New()
	cached := cache.New(durable, cache.Config{Redis: rdb, Prefix: testenv.RandomName("lc") + ":"})
	t.Cleanup(func() { _ = cached.Close() })
	return &fileEnv{durable: durable, cached: cached, provider: p, rdb: rdb}
}

func (e *fileEnv) provision(t *testing.T, m *lifecycle.Manager) *tenancy.Tenant {
	t.Helper()
	tn, err := m.Provision(t.Context(), newTenant())
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// TestPurgeAsksEveryComponent: every component forgets the tenant, and only
// the purged tenant; the other keeps what it has.
func TestPurgeAsksEveryComponent(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t)
	a, b := &component{}, &component{}
	var rec recorder
	m, err := lifecycle.New(lifecycle.Config{Store: e.cached, Provider: e.provider, Components: []tenancy.Component{a, b}, Hooks: []lifecycle.Hook{rec.hook}})
	if err != nil {
		t.Fatal(err)
	}
	gone, keep := e.provision(t, m), e.provision(t, m)
	for _, c := range []*component{a, b} {
		c.hold(gone.ID)
		c.hold(keep.ID)
	}
	if err := m.Purge(t.Context(), gone.ID); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*component{a, b} {
		if c.held[gone.ID] || !c.held[keep.ID] || c.forgets == 0 {
			t.Errorf("component %d: holds %v after %d forgets; want only %s", i, c.held, c.forgets, keep.ID)
		}
	}
	if !slices.Contains(rec.kinds, lifecycle.Purged) {
		t.Errorf("events %v lack purged", rec.kinds)
	}
}

// TestComponentFailureStopsPurgeBeforeTheRecord: a component that cannot
// forget stops the purge with the record still there, so that the purge
// can run again once the component is back.
func TestComponentFailureStopsPurgeBeforeTheRecord(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t)
	jobs := &component{failing: errors.New("queue unreachable")}
	m, err := lifecycle.New(lifecycle.Config{Store: e.cached, Provider: e.provider, Components: []tenancy.Component{jobs}})
	if err != nil {
		t.Fatal(err)
	}
	tn := e.provision(t, m)
	jobs.hold(tn.ID)
	if err := m.Purge(t.Context(), tn.ID); err == nil || !strings.Contains(err.Error(), "queue unreachable") {
		t.Fatalf("purge: %v", err)
	}
	got, err := e.durable.Get(t.Context(), tn.ID)
	if err != nil || got.Status != tenancy.StatusDeleted {
		t.Fatalf("after the failed purge: %+v, %v; want the record, deleted", got, err)
	}
	jobs.mu.Lock()
	jobs.failing = nil
	jobs.mu.Unlock()
	if err := m.Purge(t.Context(), tn.ID); err != nil {
		t.Fatalf("purge again: %v", err)
	}
	if _, err := e.durable.Get(t.Context(), tn.ID); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Fatalf("record after the second purge: %v", err)
	}
}

// TestResidueOfAComponentFailsPurge: a component that says it forgot but
// still holds the tenant is caught by the check.
func TestResidueOfAComponentFailsPurge(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t)
	jobs := &component{sticky: true}
	m, err := lifecycle.New(lifecycle.Config{Store: e.cached, Provider: e.provider, Components: []tenancy.Component{jobs}})
	if err != nil {
		t.Fatal(err)
	}
	tn := e.provision(t, m)
	jobs.hold(tn.ID)
	err = m.Purge(t.Context(), tn.ID)
	if !errors.Is(err, lifecycle.ErrResidue) || !strings.Contains(err.Error(), "queued job of "+tn.ID) {
		t.Fatalf("purge: %v; want ErrResidue naming the job", err)
	}
}

// TestPurgeForgetsWhatRequestsPutBack: a request for the tenant between the
// components' first Forget and the removal of the record fills the cache
// again (here the cache is a component, not the Store, as it is for
// another process that shares the store). The purge still leaves nothing.
func TestPurgeForgetsWhatRequestsPutBack(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t)
	var refilled bool
	request := &component{onForget: func(ctx context.Context, tn *tenancy.Tenant) {
		// Runs after the cache's Forget: a lookup as a request makes it.
		if _, err := e.cached.GetByIdentifier(ctx, tn.Identifier); err == nil {
			refilled = true
		}
	}}
	m, err := lifecycle.New(lifecycle.Config{Store: e.durable, Provider: e.provider, Components: []tenancy.Component{e.cached, request}})
	if err != nil {
		t.Fatal(err)
	}
	tn := e.provision(t, m)
	if err := m.Purge(t.Context(), tn.ID); err != nil {
		t.Fatal(err)
	}
	if !refilled {
		t.Fatal("the test did not refill the cache")
	}
	if left := existingKeys(t, e.rdb, e.cached.Keys(tn)); len(left) != 0 {
		t.Fatalf("cache keys left in Redis: %v", left)
	}
	if _, err := e.cached.GetByIdentifier(t.Context(), tn.Identifier); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Fatalf("purged tenant still resolves through the cache: %v", err)
	}
}

func TestNilComponentRefused(t *testing.T) {
	t.Parallel()
	e := newFileEnv(t)
	if _, err := lifecycle.New(lifecycle.Config{Store: e.cached, Provider: e.provider, Components: []tenancy.Component{nil}}); err == nil {
		t.Fatal("New accepted a nil component")
	}
}
