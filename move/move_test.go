package move_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/move"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tablesSQL creates the tenant tables, in the shared schema or (with the
// search path set) in a tenant's schema: a parent and a child whose foreign
// key carries the tenant.
const tablesSQL = `
CREATE TABLE items (
    tenant_id text NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), ''),
    id bigint NOT NULL,
    val text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
ALTER TABLE items ENABLE ROW LEVEL SECURITY;
ALTER TABLE items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON items USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')) WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), ''));
CREATE TABLE notes (
    tenant_id text NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), ''),
    id bigint NOT NULL,
    item_id bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, item_id) REFERENCES items (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX notes_item_idx ON notes (tenant_id, item_id);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE notes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notes USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')) WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), ''));
`

// Tiers: starter tenants share tables under RLS, enterprise tenants have a
// schema each.
const (
	starter    = "starter"
	enterprise = "enterprise"
)

type fixture struct {
	pool   *pgxpool.Pool
	pools  []*pgxpool.Pool // pool, and the second server's when there is one
	store  tenancy.Store
	hybrid *isolation.Hybrid
	schema *postgres.Schema
	mover  move.Mover
}

func setup(t testing.TB, freeze time.Duration) *fixture {
	return setupOn(t, freeze, nil)
}

// setupOn is setup with a tenant placement "second" on the server of
// second, a superuser URL, when it is not nil.
func setupOn(t testing.TB, freeze time.Duration, second *string) *fixture {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.NewDatabase(t)
	pool := testenv.Pool(t, dsn, func(c *pgxpool.Config) { c.MaxConns = 16 })
	pools := []*pgxpool.Pool{pool}
	st := memstore.New()
	cfg := postgres.Config{FreezeTimeout: freeze, Reload: st.Get}
	if second != nil {
		p2 := testenv.Pool(t, testenv.NewDatabaseOn(t, *second), func(c *pgxpool.Config) { c.MaxConns = 8 })
		pools = append(pools, p2)
		cfg.Placements = map[string]*pgxpool.Pool{"second": p2}
	}
	for _, p := range pools {
		if _, err := p.Exec(ctx, tablesSQL); err != nil {
			t.Fatal(err)
		}
	}
	rls, err := postgres.NewRLS(ctx, pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pools {
		if _, err := p.Exec(ctx, "GRANT SELECT, INSERT, UPDATE, DELETE ON items, notes TO "+rls.Role()); err != nil {
			t.Fatal(err)
		}
	}
	schema, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	h, err := isolation.NewHybrid(isolation.HybridConfig{
		Providers: map[tenancy.Isolation]isolation.Provider{tenancy.IsolationRLS: rls, tenancy.IsolationSchema: schema},
		Tiers:     map[string]tenancy.Isolation{starter: tenancy.IsolationRLS, enterprise: tenancy.IsolationSchema},
		Default:   tenancy.IsolationRLS,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{pool: pool, pools: pools, store: st, hybrid: h, schema: schema}
	f.mover = move.Mover{
		Store: st, Provider: h, Journal: pool,
		Prepare:   f.prepare,
		HoldFence: 200 * time.Millisecond,
	}
	return f
}

// prepare creates a schema tenant's schema and tables, as its migrations
// would.
func (f *fixture) prepare(ctx context.Context, t *tenancy.Tenant) error {
	p, err := isolation.Resolve(f.hybrid, t)
	if err != nil {
		return err
	}
	if err := p.Initialize(ctx, t); err != nil {
		return err
	}
	if p != isolation.Provider(f.schema) {
		return nil
	}
	name, err := f.schema.SchemaName(t)
	if err != nil {
		return err
	}
	pool, err := f.schema.PoolFor(t)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name+".items").Scan(&exists); err != nil || exists {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", pgx.Identifier{name}.Sanitize()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, tablesSQL); err != nil {
			return err
		}
		if err := postgres.GrantSchema(ctx, tx, name, f.schema.Role()); err != nil {
			return err
		}
		return postgres.SealSchema(ctx, tx, name, t.ID)
	})
}

func (f *fixture) tenant(t testing.TB, ident, tier string, rows int) *tenancy.Tenant {
	t.Helper()
	ctx := context.Background()
	tn, err := f.store.Create(ctx, &tenancy.Tenant{ID: "t-" + ident, Identifier: ident, Name: ident, Tier: tier})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.prepare(ctx, tn); err != nil {
		t.Fatal(err)
	}
	if rows > 0 {
		q := postgres.For(f.hybrid, tn)
		if _, err := q.Exec(ctx, "INSERT INTO items (id, val) SELECT g, 'v' || g FROM generate_series(1, $1) g", rows); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Exec(ctx, "INSERT INTO notes (id, item_id, body) SELECT g, g, 'n' || g FROM generate_series(1, $1, 2) g", rows); err != nil {
			t.Fatal(err)
		}
	}
	return tn
}

// contents returns the tenant's rows as the application sees them.
func (f *fixture) contents(t *testing.T, tn *tenancy.Tenant) (items, notes int64, sum string) {
	t.Helper()
	ctx := context.Background()
	if err := f.hybrid.QueryRow(ctx, tn, `SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM notes),
  (SELECT coalesce(md5(string_agg(id || ':' || val, ',' ORDER BY id)), '') FROM items)`).Scan(&items, &notes, &sum); err != nil {
		t.Fatal(err)
	}
	return items, notes, sum
}

// leftovers counts the tenant's rows in the shared tables and reports
// whether its schema exists, as the superuser sees them.
func (f *fixture) leftovers(t *testing.T, tn *tenancy.Tenant) (shared int64, schema bool) {
	t.Helper()
	ctx := context.Background()
	if err := f.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM public.items WHERE tenant_id = $1) + (SELECT count(*) FROM public.notes WHERE tenant_id = $1)", tn.ID).Scan(&shared); err != nil {
		t.Fatal(err)
	}
	name, _ := f.schema.SchemaName(tn)
	if err := f.pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", name).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	return shared, schema
}

func ptr[T any](v T) *T { return &v }

// A move there and back keeps every row, leaves nothing at the source, and
// leaves other tenants alone.
func TestMoveThereAndBack(t *testing.T) {
	t.Parallel()
	f := setup(t, 5*time.Second)
	ctx := context.Background()
	a := f.tenant(t, "alpha", starter, 500)
	b := f.tenant(t, "bravo", starter, 300)
	wantI, wantN, wantSum := f.contents(t, a)
	_, _, otherSum := f.contents(t, b)

	res, err := move.Tenant(ctx, f.mover, a.ID, move.To{Tier: ptr(enterprise)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Tenant.Tier != enterprise || res.To.Strategy != tenancy.IsolationSchema || res.Tables["items"].Rows != 500 {
		t.Fatalf("result: %+v", res)
	}
	if i, n, s := f.contents(t, res.Tenant); i != wantI || n != wantN || s != wantSum {
		t.Fatalf("after the move: %d items, %d notes, sum %s; want %d, %d, %s", i, n, s, wantI, wantN, wantSum)
	}
	if shared, schema := f.leftovers(t, a); shared != 0 || !schema {
		t.Fatalf("after the move: %d shared rows, schema %v; want 0 and a schema", shared, schema)
	}
	// Run again: nothing to do.
	if _, err := move.Tenant(ctx, f.mover, a.ID, move.To{Tier: ptr(enterprise)}); err != nil {
		t.Fatal(err)
	}
	res, err = move.Tenant(ctx, f.mover, a.ID, move.To{Tier: ptr(starter)})
	if err != nil {
		t.Fatal(err)
	}
	if i, n, s := f.contents(t, res.Tenant); i != wantI || n != wantN || s != wantSum {
		t.Fatalf("after the move back: %d items, %d notes, sum %s; want %d, %d, %s", i, n, s, wantI, wantN, wantSum)
	}
	if shared, schema := f.leftovers(t, a); shared != wantI+wantN || schema {
		t.Fatalf("after the move back: %d shared rows, schema %v; want %d and none", shared, schema, wantI+wantN)
	}
	if _, _, s := f.contents(t, b); s != otherSum {
		t.Fatal("another tenant's rows changed")
	}
}

// A crash after any step resumes, when run again, to the same end: every row
// at the destination, none at the source, the record switched.
func TestMoveResumesAfterEveryStep(t *testing.T) {
	t.Parallel()
	f := setup(t, 5*time.Second)
	ctx := context.Background()
	for i, step := range []move.Step{move.StepPlanned, move.StepCopied, move.StepVerified, move.StepSwitched} {
		for _, dir := range []struct{ from, to string }{{starter, enterprise}, {enterprise, starter}} {
			tn := f.tenant(t, fmt.Sprintf("crash%d-%s", i, dir.from), dir.from, 200)
			wantI, wantN, _ := f.contents(t, tn)
			m := f.mover
			m.StopAfter = step
			if _, err := move.Tenant(ctx, m, tn.ID, move.To{Tier: ptr(dir.to)}); !errors.Is(err, move.ErrStopped) {
				t.Fatalf("stop after %s: %v", step, err)
			}
			// A write between the crash and the rerun, where the record says
			// the tenant is now.
			cur, err := f.store.Get(ctx, tn.ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.hybrid.Exec(ctx, cur, "UPDATE items SET val = 'changed' WHERE id = 1"); err != nil {
				t.Fatal(err)
			}
			_, _, wantSum := f.contents(t, cur)
			// Another move to somewhere else is refused while this one is
			// unfinished.
			if step != move.StepSwitched {
				if _, err := move.Tenant(ctx, f.mover, tn.ID, move.To{Placement: ptr("elsewhere")}); !errors.Is(err, move.ErrOtherMove) {
					t.Fatalf("second move during an unfinished one: %v", err)
				}
			}
			res, err := move.Tenant(ctx, f.mover, tn.ID, move.To{Tier: ptr(dir.to)})
			if err != nil {
				t.Fatalf("resume after %s: %v", step, err)
			}
			if res.Tenant.Tier != dir.to {
				t.Fatalf("resume after %s: tier %q", step, res.Tenant.Tier)
			}
			if i, n, s := f.contents(t, res.Tenant); i != wantI || n != wantN || s != wantSum {
				t.Fatalf("resume after %s: %d items, %d notes, sum %s; want %d, %d, %s", step, i, n, s, wantI, wantN, wantSum)
			}
			shared, schema := f.leftovers(t, tn)
			if dir.to == enterprise && (shared != 0 || !schema) || dir.to == starter && (shared != wantI+wantN || schema) {
				t.Fatalf("resume after %s to %s: %d shared rows, schema %v", step, dir.to, shared, schema)
			}
		}
	}
}

// Under load from readers and writers of the moving tenant and of another,
// a move loses no acknowledged write, never shows a reader fewer rows than
// it saw before (which a read of a half-filled or emptied place would), and
// holds no statement of the other tenant.
func TestMoveUnderLoad(t *testing.T) {
	t.Parallel()
	f := setup(t, 10*time.Second)
	const staleTTL = 200 * time.Millisecond
	f.mover.HoldFence = 2 * staleTTL
	ctx := context.Background()
	a := f.tenant(t, "loaded", starter, 2000)
	b := f.tenant(t, "bystander", starter, 100)

	var (
		mu     sync.Mutex
		acked  = map[string][]int64{}
		nextID atomic.Int64
		stop   = make(chan struct{})
		wg     sync.WaitGroup
		errs   = make(chan error, 64)
	)
	nextID.Store(1_000_000)
	for w := range 6 {
		tn := a
		if w%3 == 2 {
			tn = b
		}
		// Half the writers keep a record for staleTTL, as an instance
		// whose cache missed the invalidation would until its L1 TTL (the
		// mover holds the source's fence longer); the others read the store.
		stale := w%2 == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			cur, read := tn, time.Now()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !stale || time.Since(read) > staleTTL {
					var err error
					if cur, err = f.store.Get(ctx, tn.ID); err != nil {
						errs <- err
						return
					}
					read = time.Now()
				}
				id := nextID.Add(1)
				if _, err := f.hybrid.Exec(ctx, cur, "INSERT INTO items (id, val) VALUES ($1, 'w')", id); err != nil {
					errs <- fmt.Errorf("write to %s: %w", tn.Identifier, err)
					return
				}
				mu.Lock()
				acked[tn.ID] = append(acked[tn.ID], id)
				mu.Unlock()
			}
		}()
	}
	for r := range 4 {
		tn := a
		if r == 3 {
			tn = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seen int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				cur, err := f.store.Get(ctx, tn.ID)
				if err != nil {
					errs <- err
					return
				}
				var n int64
				if err := f.hybrid.QueryRow(ctx, cur, "SELECT count(*) FROM items").Scan(&n); err != nil {
					errs <- fmt.Errorf("read %s: %w", tn.Identifier, err)
					return
				}
				if n < seen {
					errs <- fmt.Errorf("reader of %s saw %d rows after %d", tn.Identifier, n, seen)
					return
				}
				seen = n
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	res, err := move.Tenant(ctx, f.mover, a.ID, move.To{Tier: ptr(enterprise)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("freeze %s; %d writes acknowledged for the moved tenant", res.Freeze, len(acked[a.ID]))
	for _, tn := range []*tenancy.Tenant{a, b} {
		cur, err := f.store.Get(ctx, tn.ID)
		if err != nil {
			t.Fatal(err)
		}
		var missing int64
		if err := f.hybrid.QueryRow(ctx, cur, "SELECT count(*) FROM unnest($1::bigint[]) w(id) WHERE NOT EXISTS (SELECT FROM items i WHERE i.id = w.id)", acked[tn.ID]).Scan(&missing); err != nil {
			t.Fatal(err)
		}
		if missing != 0 || len(acked[tn.ID]) == 0 {
			t.Errorf("%s: %d of %d acknowledged writes missing", tn.Identifier, missing, len(acked[tn.ID]))
		}
	}
	if shared, schema := f.leftovers(t, a); shared != 0 || !schema {
		t.Errorf("after the move: %d rows left in the shared tables, schema %v", shared, schema)
	}
}

// A statement of a tenant whose fence a move holds waits, and fails with
// ErrTenantMoving when the hold outlasts FreezeTimeout; another tenant's
// statements run meanwhile.
func TestFenceHoldsOnlyTheMovingTenant(t *testing.T) {
	t.Parallel()
	f := setup(t, 300*time.Millisecond)
	ctx := context.Background()
	a := f.tenant(t, "frozen", starter, 1)
	b := f.tenant(t, "free", starter, 1)
	key := postgres.FenceKey(tenancy.IsolationRLS, "", a.ID)
	conn, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", key[0], key[1]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = f.hybrid.Exec(ctx, a, "INSERT INTO items (id, val) VALUES (99, 'x')")
	var fe *isolation.FrozenError
	if !errors.Is(err, tenancy.ErrTenantMoving) || !errors.As(err, &fe) || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("write of the frozen tenant: %v after %s", err, time.Since(start))
	}
	if err := f.hybrid.Tx(ctx, a, func(isolation.Tx) error { return nil }); !errors.Is(err, tenancy.ErrTenantMoving) {
		t.Fatalf("transaction of the frozen tenant: %v", err)
	}
	if _, err := f.hybrid.Exec(ctx, b, "INSERT INTO items (id, val) VALUES (99, 'x')"); err != nil {
		t.Fatalf("write of another tenant: %v", err)
	}
	// Released within the timeout, the held statement runs, once.
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(100 * time.Millisecond)
		_, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1, $2)", key[0], key[1])
	}()
	_, err = f.hybrid.Exec(ctx, a, "INSERT INTO items (id, val) VALUES (99, 'x')")
	<-released
	if err != nil {
		t.Fatalf("write after the release: %v", err)
	}
	if i, _, _ := f.contents(t, a); i != 2 {
		t.Fatalf("%d items, want 2", i)
	}
}

// The database/sql connector's statements and transactions wait on the
// fence too.
func TestFenceHoldsTheSQLDriver(t *testing.T) {
	t.Parallel()
	f := setup(t, 300*time.Millisecond)
	ctx := context.Background()
	a := f.tenant(t, "sqlfrozen", starter, 1)
	db, err := postgres.OpenDB(f.hybrid)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := postgres.FenceKey(tenancy.IsolationRLS, "", a.ID)
	conn, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", key[0], key[1]); err != nil {
		t.Fatal(err)
	}
	tctx := tenancy.WithTenant(ctx, a)
	if _, err := db.ExecContext(tctx, "INSERT INTO items (id, val) VALUES (99, 'x')"); !errors.Is(err, tenancy.ErrTenantMoving) {
		t.Fatalf("statement of the frozen tenant: %v", err)
	}
	if _, err := db.BeginTx(tctx, nil); !errors.Is(err, tenancy.ErrTenantMoving) {
		t.Fatalf("transaction of the frozen tenant: %v", err)
	}
}

// A tenant moves to another server and back, in shared tables and in its
// own schema, resuming after a crash mid-way; nothing of it is left on the
// server it left.
func TestMoveBetweenServers(t *testing.T) {
	t.Parallel()
	url2 := testenv.SecondDatabaseURL(t)
	f := setupOn(t, 5*time.Second, &url2)
	ctx := context.Background()
	for _, tier := range []string{starter, enterprise} {
		tn := f.tenant(t, "travel-"+tier, tier, 400)
		wantI, wantN, wantSum := f.contents(t, tn)
		m := f.mover
		m.StopAfter = move.StepCopied
		if _, err := move.Tenant(ctx, m, tn.ID, move.To{Placement: ptr("second")}); !errors.Is(err, move.ErrStopped) {
			t.Fatalf("%s: stop after copy: %v", tier, err)
		}
		for _, placement := range []string{"second", ""} {
			res, err := move.Tenant(ctx, f.mover, tn.ID, move.To{Placement: ptr(placement)})
			if err != nil {
				t.Fatalf("%s: move to %q: %v", tier, placement, err)
			}
			if res.Tenant.Placement != placement || res.From.Placement == res.To.Placement {
				t.Fatalf("%s: moved from %s to %s, record placement %q", tier, res.From, res.To, res.Tenant.Placement)
			}
			if i, n, s := f.contents(t, res.Tenant); i != wantI || n != wantN || s != wantSum {
				t.Fatalf("%s on %q: %d items, %d notes, sum %s; want %d, %d, %s", tier, placement, i, n, s, wantI, wantN, wantSum)
			}
			// The server it left holds nothing of it.
			left := f.pools[1]
			if placement == "second" {
				left = f.pools[0]
			}
			var rows int64
			name, _ := f.schema.SchemaName(tn)
			if err := left.QueryRow(ctx, `SELECT (SELECT count(*) FROM public.items WHERE tenant_id = $1)
  + (SELECT count(*) FROM pg_namespace WHERE nspname = $2)`, tn.ID, name).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != 0 {
				t.Fatalf("%s: %d rows or schemas left on the server it left", tier, rows)
			}
		}
	}
}
