package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/store/pgstore"
	"github.com/go-tenancy/tenancy/store/storetest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3/lock"
)

// database creates a fresh database for t and returns its DSN and a
// superuser pool on it.
func database(t testing.TB) (string, *pgxpool.Pool) {
	t.Helper()
	dsn := testenv.NewDatabase(t)
	return dsn, testenv.Pool(t, dsn, func(c *pgxpool.Config) { c.MaxConns = 8 })
}

// migrated migrates a fresh control schema in pool and returns its Config.
func migrated(t testing.TB, pool *pgxpool.Pool) pgstore.Config {
	t.Helper()
	cfg := pgstore.Config{Schema: testenv.RandomName("ts_")}
	if err := pgstore.Migrate(t.Context(), pool, cfg); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return cfg
}

func newStore(t testing.TB, pool *pgxpool.Pool, cfg pgstore.Config) *pgstore.Store {
	t.Helper()
	s, err := pgstore.New(t.Context(), pool, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// TestConformance runs the suite as a superuser, each subtest in a fresh
// control schema of one database so that they run in parallel.
func TestConformance(t *testing.T) {
	t.Parallel()
	_, pool := database(t)
	storetest.Run(t, func(t *testing.T) tenancy.Store {
		return newStore(t, pool, migrated(t, pool))
	})
}

// TestConformanceNaturalCollation runs the suite in a database whose
// default collation ignores punctuation, as en_US.UTF-8 does: List must
// still order and page identifiers byte by byte, like every other store.
func TestConformanceNaturalCollation(t *testing.T) {
	t.Parallel()
	admin := testenv.Admin(t)
	name := testenv.RandomName("tenancy_test_")
	_, err := admin.Exec(t.Context(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+
		" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US-u-ka-shifted' LOCALE 'C.UTF-8'")
	if err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	pool := testenv.Pool(t, testenv.WithDatabase(testenv.DatabaseURL(), name), func(c *pgxpool.Config) { c.MaxConns = 8 })
	var first string
	if err := pool.QueryRow(t.Context(), "SELECT min(x) FROM (VALUES ('ab-c'), ('abb')) v(x)").Scan(&first); err != nil {
		t.Fatal(err)
	}
	if first != "abb" {
		t.Fatalf("database collation sorts %q first; the test needs one that ignores '-'", first)
	}
	storetest.Run(t, func(t *testing.T) tenancy.Store {
		return newStore(t, pool, migrated(t, pool))
	})
}

// TestConformanceAsAppRole runs the suite connected as a role that owns
// nothing and has only the grants the package documents.
func TestConformanceAsAppRole(t *testing.T) {
	t.Parallel()
	testenv.EnsureRole(t, testenv.AppRole)
	dsn, admin := database(t)
	app := testenv.Pool(t, testenv.WithUser(dsn, testenv.AppRole), func(c *pgxpool.Config) { c.MaxConns = 8 })
	storetest.Run(t, func(t *testing.T) tenancy.Store {
		cfg := migrated(t, admin)
		grant(t, admin, cfg.Schema, testenv.AppRole)
		return newStore(t, app, cfg)
	})
}

func grant(t *testing.T, admin *pgxpool.Pool, schema, role string) {
	t.Helper()
	s, r := pgx.Identifier{schema}.Sanitize(), pgx.Identifier{role}.Sanitize()
	sql := fmt.Sprintf(`GRANT USAGE ON SCHEMA %[1]s TO %[2]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON %[1]s.tenants, %[1]s.tenant_names, %[1]s.tenant_domains, %[1]s.tenant_secrets TO %[2]s`, s, r)
	if _, err := admin.Exec(t.Context(), sql); err != nil {
		t.Fatalf("grant: %v", err)
	}
}

func TestNewChecksTables(t *testing.T) {
	t.Parallel()
	testenv.EnsureRole(t, testenv.AppRole)
	dsn, admin := database(t)
	ctx := t.Context()

	_, err := pgstore.New(ctx, admin, pgstore.Config{Schema: "missing"})
	if !errors.Is(err, pgstore.ErrNotMigrated) {
		t.Errorf("New on a missing schema: err = %v, want ErrNotMigrated", err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA empty"); err != nil {
		t.Fatal(err)
	}
	_, err = pgstore.New(ctx, admin, pgstore.Config{Schema: "empty"})
	if !errors.Is(err, pgstore.ErrNotMigrated) {
		t.Errorf("New on an empty schema: err = %v, want ErrNotMigrated", err)
	}

	// A role without grants is told what to grant, not that tables are missing.
	cfg := migrated(t, admin)
	app := testenv.Pool(t, testenv.WithUser(dsn, testenv.AppRole))
	_, err = pgstore.New(ctx, app, cfg)
	if err == nil || errors.Is(err, pgstore.ErrNotMigrated) || !strings.Contains(err.Error(), "grant USAGE") {
		t.Errorf("New without grants: err = %v, want a message naming the grants", err)
	}
	grant(t, admin, cfg.Schema, testenv.AppRole)
	newStore(t, app, cfg)
}

func TestConfigValidatesSchema(t *testing.T) {
	t.Parallel()
	bad := []string{"Tenancy", "1abc", "pg_tenancy", "a-b", "a.b", `x"; DROP SCHEMA public; --`, "tenancy ", "ténancy", strings.Repeat("a", 64)}
	for _, schema := range bad {
		// Refused before the pool is touched: a nil pool would panic.
		if _, err := pgstore.New(t.Context(), nil, pgstore.Config{Schema: schema}); err == nil {
			t.Errorf("New(Schema=%q) succeeded, want an error", schema)
		}
		if err := pgstore.Migrate(t.Context(), nil, pgstore.Config{Schema: schema}); err == nil {
			t.Errorf("Migrate(Schema=%q) succeeded, want an error", schema)
		}
	}
}

func TestMigrateDefaultSchema(t *testing.T) {
	t.Parallel()
	_, pool := database(t)
	if err := pgstore.Migrate(t.Context(), pool, pgstore.Config{}); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	s := newStore(t, pool, pgstore.Config{})
	if _, err := s.Create(t.Context(), &tenancy.Tenant{Identifier: "acme", Name: "Acme"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	// Everything the store made is in its schema; public is untouched.
	var tables []string
	rows, err := pool.Query(t.Context(), `SELECT schemaname || '.' || tablename FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tenancy.store_lock", "tenancy.store_migrations", "tenancy.tenant_domains", "tenancy.tenant_names", "tenancy.tenant_secrets", "tenancy.tenants"}
	if fmt.Sprint(tables) != fmt.Sprint(want) {
		t.Errorf("tables = %v, want %v", tables, want)
	}
}

// appliedVersions returns how many times each version is recorded as applied.
func appliedVersions(t *testing.T, pool *pgxpool.Pool, schema string) map[int64]int {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT version_id, count(*) FROM "+
		pgx.Identifier{schema, "store_migrations"}.Sanitize()+" WHERE is_applied GROUP BY version_id")
	if err != nil {
		t.Fatalf("read versions: %v", err)
	}
	out := map[int64]int{}
	var v, n int64
	_, err = pgx.ForEachRow(rows, []any{&v, &n}, func() error { out[v] = int(n); return nil })
	if err != nil {
		t.Fatalf("read versions: %v", err)
	}
	return out
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	_, pool := database(t)
	cfg := migrated(t, pool)
	s := newStore(t, pool, cfg)
	created, err := s.Create(t.Context(), &tenancy.Tenant{Identifier: "acme", Name: "Acme", Domains: []string{"acme.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyDomain(t.Context(), created.ID, "acme.example.com"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := pgstore.Migrate(t.Context(), pool, cfg); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	if got := appliedVersions(t, pool, cfg.Schema); fmt.Sprint(got) != "map[0:1 1:1 2:1 3:1]" {
		t.Errorf("applied versions = %v, want each once", got)
	}
	// Data survives reruns.
	if _, err := s.GetByDomain(t.Context(), "acme.example.com"); err != nil {
		t.Errorf("GetByDomain after rerun: %v", err)
	}
	if _, err := s.Get(t.Context(), created.ID); err != nil {
		t.Errorf("Get after rerun: %v", err)
	}
}

// TestMigrateConcurrently starts several migrations of one fresh database
// at once, each from its own pool as separate instances would: all succeed
// and each migration is applied once.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	dsn, admin := database(t)
	cfg := pgstore.Config{Schema: "tenancy"}
	const instances = 4
	pools := make([]*pgxpool.Pool, instances)
	for i := range pools {
		pools[i] = testenv.Pool(t, dsn, func(c *pgxpool.Config) { c.MaxConns = 2 })
	}
	errs := make([]error, instances)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, p := range pools {
		wg.Go(func() {
			<-start
			errs[i] = pgstore.Migrate(t.Context(), p, cfg)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: Migrate: %v", i, err)
		}
	}
	if got := appliedVersions(t, admin, cfg.Schema); fmt.Sprint(got) != "map[0:1 1:1 2:1 3:1]" {
		t.Errorf("applied versions = %v, want each once", got)
	}
	var locked int
	if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM tenancy.store_lock WHERE locked").Scan(&locked); err != nil {
		t.Fatal(err)
	}
	if locked != 0 {
		t.Errorf("%d locks still held after every Migrate returned", locked)
	}
	newStore(t, admin, cfg)
}

// TestMigrateWaitsForLock proves the lock is honoured: while another holder
// has a live lease Migrate applies nothing and waits (here until its context
// ends), and once the lease has expired it takes over.
func TestMigrateWaitsForLock(t *testing.T) {
	t.Parallel()
	_, pool := database(t)
	cfg := pgstore.Config{Schema: "tenancy"}
	// The row goose's table locker would write for a crashed instance.
	_, err := pool.Exec(t.Context(), `CREATE SCHEMA tenancy;
CREATE TABLE tenancy.store_lock (
	lock_id bigint NOT NULL PRIMARY KEY,
	locked boolean NOT NULL DEFAULT false,
	locked_at timestamptz NULL,
	locked_by text NULL,
	lease_expires_at timestamptz NULL,
	updated_at timestamptz NULL
)`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(t.Context(), `INSERT INTO tenancy.store_lock VALUES ($1, true, now(), 'crashed-instance', now() + interval '1 hour', now())`, lock.DefaultLockID)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	if err := pgstore.Migrate(ctx, pool, cfg); err == nil {
		t.Fatal("Migrate succeeded while another instance held a live lock")
	}
	if _, err := pgstore.New(t.Context(), pool, cfg); !errors.Is(err, pgstore.ErrNotMigrated) {
		t.Fatalf("New after a blocked Migrate: err = %v, want ErrNotMigrated", err)
	}

	if _, err := pool.Exec(t.Context(), `UPDATE tenancy.store_lock SET lease_expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if err := pgstore.Migrate(t.Context(), pool, cfg); err != nil {
		t.Fatalf("Migrate after the lease expired: %v", err)
	}
	newStore(t, pool, cfg)
}

func TestMigrateNeedsTwoConnections(t *testing.T) {
	t.Parallel()
	dsn, _ := database(t)
	one := testenv.Pool(t, dsn, func(c *pgxpool.Config) { c.MaxConns = 1 })
	if err := pgstore.Migrate(t.Context(), one, pgstore.Config{}); err == nil {
		t.Fatal("Migrate with a one-connection pool succeeded, want an error instead of a deadlock")
	}
}

// countingTracer counts the statements sent on a pool.
type countingTracer struct{ n atomic.Int64 }

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestRoundTrips checks that lookups and creates are one statement each,
// domains included.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	dsn, admin := database(t)
	cfg := migrated(t, admin)
	tracer := &countingTracer{}
	pool := testenv.Pool(t, dsn, func(c *pgxpool.Config) { c.ConnConfig.Tracer = tracer })
	s := newStore(t, pool, cfg)
	ctx := t.Context()

	steps := []struct {
		name string
		run  func() error
	}{
		{"Create", func() error {
			_, err := s.Create(ctx, &tenancy.Tenant{ID: "t-1", Identifier: "acme", Name: "Acme", Aliases: []string{"a", "b"}, Domains: []string{"a.example.com", "b.example.com"}})
			return err
		}},
		{"Get", func() error { _, err := s.Get(ctx, "t-1"); return err }},
		{"GetByIdentifier", func() error { _, err := s.GetByIdentifier(ctx, "acme"); return err }},
		{"GetByAlias", func() error { _, err := s.GetByAlias(ctx, "b"); return err }},
		{"GetByDomain", func() error {
			// Verification is a write of its own, outside the count.
			before := tracer.n.Load()
			if _, err := s.VerifyDomain(ctx, "t-1", "b.example.com"); err != nil {
				return err
			}
			tracer.n.Add(before - tracer.n.Load())
			_, err := s.GetByDomain(ctx, "b.example.com")
			return err
		}},
		{"SetStatus", func() error { _, err := s.SetStatus(ctx, "t-1", tenancy.StatusSuspended, "x"); return err }},
		{"Purge", func() error { return s.Purge(ctx, "t-1") }},
	}
	for _, st := range steps {
		before := tracer.n.Load()
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if n := tracer.n.Load() - before; n != 1 {
			t.Errorf("%s sent %d statements, want 1", st.name, n)
		}
	}
}

// TestSimpleProtocol runs a write and a read with the simple protocol, as
// behind a transaction pooler without prepared statements: every parameter
// must carry its type in the SQL text.
func TestSimpleProtocol(t *testing.T) {
	t.Parallel()
	dsn, admin := database(t)
	cfg := migrated(t, admin)
	for _, mode := range []string{"simple_protocol", "exec"} {
		pool := testenv.Pool(t, testenv.WithParam(dsn, "default_query_exec_mode", mode))
		s := newStore(t, pool, cfg)
		ident := "acme-" + strings.ReplaceAll(mode, "_", "-")
		created, err := s.Create(t.Context(), &tenancy.Tenant{Identifier: ident, Name: "Acme", Domains: []string{ident + ".example.com"}, Metadata: map[string]any{"a": []any{1.5, "x"}}})
		if err != nil {
			t.Fatalf("%s: Create: %v", mode, err)
		}
		if _, err := s.VerifyDomain(t.Context(), created.ID, ident+".example.com"); err != nil {
			t.Fatalf("%s: VerifyDomain: %v", mode, err)
		}
		got, err := s.GetByDomain(t.Context(), ident+".example.com")
		if err != nil || got.ID != created.ID || got.Metadata["a"].([]any)[1] != "x" {
			t.Fatalf("%s: GetByDomain = %+v, %v", mode, got, err)
		}
		u, err := s.Update(t.Context(), created.ID, tenancy.Update{Aliases: &[]string{"other-" + ident}})
		if err != nil || len(u.Aliases) != 1 {
			t.Fatalf("%s: Update = %+v, %v", mode, u, err)
		}
		if _, err := s.AddDomain(t.Context(), created.ID, "more-"+ident+".example.com"); err != nil {
			t.Fatalf("%s: AddDomain: %v", mode, err)
		}
		if l, err := s.ListDomains(t.Context(), created.ID); err != nil || len(l) != 2 || !l[0].Verified() || l[1].Verified() {
			t.Fatalf("%s: ListDomains = %+v, %v", mode, l, err)
		}
		if _, err := s.List(t.Context(), tenancy.ListParams{Status: tenancy.StatusActive, Limit: 5}); err != nil {
			t.Fatalf("%s: List: %v", mode, err)
		}
	}
}

// BenchmarkGet measures a lookup of each kind against a store of 1,000
// tenants with two domains each, over a local connection.
func BenchmarkGet(b *testing.B) {
	_, pool := database(b)
	s := newStore(b, pool, migrated(b, pool))
	ctx := b.Context()
	for i := range 1000 {
		_, err := s.Create(ctx, &tenancy.Tenant{ID: fmt.Sprintf("id-%d", i), Identifier: fmt.Sprintf("t%04d", i), Name: "T",
			Aliases: []string{fmt.Sprintf("alias%04d", i)}, Domains: []string{fmt.Sprintf("t%04d.example.com", i)}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.VerifyDomain(ctx, fmt.Sprintf("id-%d", i), fmt.Sprintf("t%04d.example.com", i)); err != nil {
			b.Fatal(err)
		}
	}
	lookups := []struct {
		name   string
		lookup func(i int) error
	}{
		{"ID", func(i int) error { _, err := s.Get(ctx, fmt.Sprintf("id-%d", i%1000)); return err }},
		{"Identifier", func(i int) error { _, err := s.GetByIdentifier(ctx, fmt.Sprintf("t%04d", i%1000)); return err }},
		{"Domain", func(i int) error { _, err := s.GetByDomain(ctx, fmt.Sprintf("t%04d.example.com", i%1000)); return err }},
	}
	for _, l := range lookups {
		lookup := l.lookup
		b.Run(l.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if err := lookup(i); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkCreate measures creating a tenant with two domains.
func BenchmarkCreate(b *testing.B) {
	_, pool := database(b)
	s := newStore(b, pool, migrated(b, pool))
	i := 0
	for b.Loop() {
		_, err := s.Create(b.Context(), &tenancy.Tenant{Identifier: fmt.Sprintf("t%07d", i), Name: "T",
			Aliases: []string{fmt.Sprintf("alias%07d", i)}, Domains: []string{fmt.Sprintf("t%07d.example.com", i)}})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}
