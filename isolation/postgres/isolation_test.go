package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestCrossTenant tries to read, change, delete and forge another tenant's
// rows, through every strategy and as the application role, the table owner
// and a superuser: every attempt must fail or touch nothing.
func TestCrossTenant(t *testing.T) {
	t.Parallel()
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for _, kind := range dsnKinds {
				t.Run(kind, func(t *testing.T) {
					tenants := newTenants(2, "")
					p := s.open(t, e, e.dsn(kind), tenants, nil)
					checkCrossTenant(t, p, tenants[0], tenants[1])
				})
			}
		})
	}
}

func checkCrossTenant(t *testing.T, p isolation.Provider, a, b *tenancy.Tenant) {
	t.Helper()
	ctx := context.Background()
	idA, owner := insertNote(t, p, a, "a-secret")
	if owner != a.ID {
		t.Fatalf("inserted row has tenant_id %q, want %q", owner, a.ID)
	}

	var title string
	if err := p.QueryRow(ctx, b, "SELECT title FROM notes WHERE id = $1", idA).Scan(&title); !errors.Is(err, isolation.ErrNoRows) {
		t.Fatalf("B read A's note by ID: title %q, err %v", title, err)
	}
	if n, err := p.Exec(ctx, b, "UPDATE notes SET title = 'pwned' WHERE id = $1", idA); err != nil || n != 0 {
		t.Fatalf("B updated A's note: %d rows, err %v", n, err)
	}
	if n, err := p.Exec(ctx, b, "DELETE FROM notes WHERE id = $1", idA); err != nil || n != 0 {
		t.Fatalf("B deleted A's note: %d rows, err %v", n, err)
	}
	if _, err := p.Exec(ctx, b, "INSERT INTO notes (tenant_id, title) VALUES ($1, 'forged')", a.ID); !isPolicyViolation(err) {
		t.Fatalf("B inserted a row for A: err %v", err)
	}
	idB, _ := insertNote(t, p, b, "b-own")
	if _, err := p.Exec(ctx, b, "UPDATE notes SET tenant_id = $1 WHERE id = $2", a.ID, idB); !isPolicyViolation(err) {
		t.Fatalf("B moved its row to A: err %v", err)
	}
	err := p.Tx(ctx, b, func(tx isolation.Tx) error {
		rows, err := tx.Query(ctx, "SELECT tenant_id, title FROM notes")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var tid, title string
			if err := rows.Scan(&tid, &title); err != nil {
				return err
			}
			if tid != b.ID || title != "b-own" {
				return fmt.Errorf("B's transaction saw row (%s, %s)", tid, title)
			}
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	assertNotes(t, p, a, "a-secret")
	assertNotes(t, p, b, "b-own")
}

// assertNotes checks that tn sees exactly the notes titled want, all its own.
func assertNotes(t *testing.T, p isolation.Provider, tn *tenancy.Tenant, want ...string) {
	t.Helper()
	rows, err := p.Query(context.Background(), tn, "SELECT tenant_id, title FROM notes ORDER BY title")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var tid, title string
		if err := rows.Scan(&tid, &title); err != nil {
			t.Fatal(err)
		}
		if tid != tn.ID {
			t.Fatalf("%s saw a row of tenant %s", tn.ID, tid)
		}
		got = append(got, title)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s sees %v, want %v", tn.ID, got, want)
	}
}

func isPolicyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501" && strings.Contains(pgErr.Message, "row-level security")
}

// TestQualifiedReadOfAnotherSchema: in schema isolation, tenant tables carry
// RLS too, so naming another tenant's schema explicitly returns nothing.
func TestQualifiedReadOfAnotherSchema(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, kind := range dsnKinds {
		t.Run(kind, func(t *testing.T) {
			tenants := newTenants(2, "")
			p := openSchema(t, e, e.dsn(kind), tenants, nil).(*postgres.Schema)
			a, b := tenants[0], tenants[1]
			insertNote(t, p, a, "a-secret")
			schemaA, _ := p.SchemaName(a)
			var n int
			if err := p.QueryRow(context.Background(), b, "SELECT count(*) FROM "+pgx.Identifier{schemaA, "notes"}.Sanitize()).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("B read %d rows from A's schema", n)
			}
			if _, err := p.Exec(context.Background(), b, "INSERT INTO "+pgx.Identifier{schemaA, "notes"}.Sanitize()+" (tenant_id, title) VALUES ($1, 'forged')", a.ID); !isPolicyViolation(err) {
				t.Fatalf("B forged a row of A in A's schema: err %v", err)
			}
			// A row B writes into A's schema can only carry B's ID, so A never
			// sees it.
			if _, err := p.Exec(context.Background(), b, "INSERT INTO "+pgx.Identifier{schemaA, "notes"}.Sanitize()+" (title) VALUES ('b-stray')"); err != nil {
				t.Fatal(err)
			}
			assertNotes(t, p, a, "a-secret")
		})
	}
}

// TestFailClosed: no tenant, an invalid one, an unknown schema, a missing
// table or database: an error, never rows of another tenant or of public.
func TestFailClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)

	t.Run("no tenant", func(t *testing.T) {
		for _, s := range strategies {
			p := s.open(t, e, e.app, nil, nil)
			if _, err := p.Exec(ctx, nil, "SELECT 1"); !errors.Is(err, tenancy.ErrNoTenant) {
				t.Errorf("%s Exec: %v", s.name, err)
			}
			if _, err := p.Query(ctx, nil, "SELECT 1"); !errors.Is(err, tenancy.ErrNoTenant) {
				t.Errorf("%s Query: %v", s.name, err)
			}
			if err := p.QueryRow(ctx, nil, "SELECT 1").Scan(new(int)); !errors.Is(err, tenancy.ErrNoTenant) {
				t.Errorf("%s QueryRow: %v", s.name, err)
			}
			if err := p.Tx(ctx, nil, func(isolation.Tx) error { return nil }); !errors.Is(err, tenancy.ErrNoTenant) {
				t.Errorf("%s Tx: %v", s.name, err)
			}
			if _, err := isolation.FromContext(ctx, p); !errors.Is(err, tenancy.ErrNoTenant) {
				t.Errorf("%s FromContext: %v", s.name, err)
			}
		}
	})

	t.Run("invalid tenant", func(t *testing.T) {
		for _, s := range strategies {
			p := s.open(t, e, e.app, nil, nil)
			bad := &tenancy.Tenant{ID: "x1", Identifier: `a"; DROP SCHEMA public; --`}
			if _, err := p.Exec(ctx, bad, "SELECT 1"); !errors.Is(err, tenancy.ErrInvalidIdentifier) {
				t.Errorf("%s: %v", s.name, err)
			}
			badID := &tenancy.Tenant{ID: "x'; --", Identifier: "acme"}
			if _, err := p.Exec(ctx, badID, "SELECT 1"); !errors.Is(err, tenancy.ErrInvalidID) {
				t.Errorf("%s: %v", s.name, err)
			}
		}
	})

	t.Run("connection carries nothing afterwards", func(t *testing.T) {
		ensureSharedNotes(t, e)
		one := func(c *pgxpool.Config) { c.MaxConns = 1 }
		pool := testenv.Pool(t, e.owner, one)
		tn := newTenants(1, "")[0]
		rls := mustRLS(t, pool)
		insertNote(t, rls, tn, "mine")
		if err := rls.Tx(ctx, tn, func(tx isolation.Tx) error {
			_, err := tx.Exec(ctx, "SELECT 1")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		assertCleanConn(t, pool)

		schemaTenants := newTenants(1, "")
		schema := openSchema(t, e, e.owner, schemaTenants, one).(*postgres.Schema)
		insertNote(t, schema, schemaTenants[0], "mine")
		assertCleanConn(t, schema.Pool())

		conn, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		mustExec(t, tx, "SELECT set_config('role', 'tenancy_tenant', true)")
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n); err != nil || n != 0 {
			t.Fatalf("tenant role without a tenant saw %d rows (err %v)", n, err)
		}
		// The row-level security check or the NOT NULL on tenant_id refuses
		// it, whichever PostgreSQL evaluates first.
		_, err = tx.Exec(ctx, "INSERT INTO notes (title) VALUES ('orphan')")
		if !isPolicyViolation(err) && pgCode(err) != "23502" {
			t.Fatalf("tenant-less insert: want a refusal, got %v", err)
		}
	})

	t.Run("unknown schema or missing table", func(t *testing.T) {
		ensureSharedNotes(t, e)
		// public.notes holds a row: a schema tenant must never fall back to it.
		rls := mustRLS(t, testenv.Pool(t, e.app))
		insertNote(t, rls, newTenants(1, "")[0], "public-row")

		tenants := newTenants(2, "")
		p := openSchema(t, e, e.app, nil, nil).(*postgres.Schema)
		var title string
		err := p.QueryRow(ctx, tenants[0], "SELECT title FROM notes").Scan(&title)
		if pgCode(err) != "42P01" {
			t.Fatalf("unknown schema: want undefined_table, got title %q err %v", title, err)
		}
		owner, err := postgres.NewSchema(ctx, testenv.Pool(t, e.owner), postgres.SchemaConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := owner.Initialize(ctx, tenants[1]); err != nil {
			t.Fatal(err)
		}
		err = p.QueryRow(ctx, tenants[1], "SELECT title FROM notes").Scan(&title)
		if pgCode(err) != "42P01" {
			t.Fatalf("missing table: want undefined_table, got title %q err %v", title, err)
		}
	})

	t.Run("missing database", func(t *testing.T) {
		p, err := postgres.NewDatabase(ctx, testenv.Pool(t, e.app), postgres.DatabaseConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if _, err := p.Exec(ctx, newTenants(1, "")[0], "SELECT 1"); pgCode(err) != "3D000" {
			t.Fatalf("want invalid_catalog_name, got %v", err)
		}
	})
}

func mustRLS(t *testing.T, pool *pgxpool.Pool) *postgres.RLS {
	t.Helper()
	p, err := postgres.NewRLS(context.Background(), pool, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// assertCleanConn checks every connection of pool: no tenant setting, the
// session's own role, the default search path.
func assertCleanConn(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	n := int(pool.Config().MaxConns)
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var setting *string
		var current, session, path string
		err = c.QueryRow(ctx, "SELECT current_setting('app.tenant_id', true), current_user, session_user, current_setting('search_path')").
			Scan(&setting, &current, &session, &path)
		if err != nil {
			t.Fatal(err)
		}
		if setting != nil && *setting != "" {
			t.Errorf("connection keeps app.tenant_id = %q", *setting)
		}
		if current != session {
			t.Errorf("connection keeps role %q (session user %q)", current, session)
		}
		if path != `"$user", public` {
			t.Errorf("connection keeps search_path %q", path)
		}
	}
}

// TestLeakUnderLoad runs random interleaved reads and writes for 50 tenants,
// 8 goroutines each, over a pool of 2 connections, for every strategy: no
// read may return a foreign row, every row must end where it belongs, and the
// connections must carry nothing afterwards.
func TestLeakUnderLoad(t *testing.T) {
	t.Parallel()
	for _, s := range strategies {
		for _, kind := range []string{"app", "superuser"} {
			t.Run(s.name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				runLeakTest(t, s, e, e.dsn(kind), nil)
			})
		}
	}
}

func runLeakTest(t *testing.T, s strategy, e env, dsn string, extra func(*pgxpool.Config)) {
	t.Helper()
	const tenantsN, workers, ops = 50, 8, 15
	ctx := context.Background()
	tenants := newTenants(tenantsN, "")
	poolCfg := func(c *pgxpool.Config) {
		c.MaxConns = 2
		if extra != nil {
			extra(c)
		}
	}
	p := s.open(t, e, dsn, tenants, poolCfg)

	inserted := make([]atomic.Int64, tenantsN)
	var wg sync.WaitGroup
	errs := make(chan error, tenantsN*workers)
	for i, tn := range tenants {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(i), uint64(w)))
				var mine []string
				for op := range ops {
					if err := leakOp(ctx, p, tn, r, &mine, fmt.Sprintf("%s:%d:%d", tn.ID, w, op)); err != nil {
						errs <- fmt.Errorf("tenant %s: %w", tn.ID, err)
						return
					}
				}
				inserted[i].Add(int64(len(mine)))
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, tn := range tenants {
		var n int64
		var foreign int64
		err := p.QueryRow(ctx, tn, "SELECT count(*), count(*) FILTER (WHERE tenant_id <> $1 OR title NOT LIKE $1 || ':%') FROM notes", tn.ID).Scan(&n, &foreign)
		if err != nil {
			t.Fatal(err)
		}
		if n != inserted[i].Load() || foreign != 0 {
			t.Errorf("tenant %s holds %d rows (%d foreign), want %d", tn.ID, n, foreign, inserted[i].Load())
		}
	}
	for _, pool := range poolsOf(p) {
		assertCleanConn(t, pool)
	}
	if db, ok := p.(*postgres.Database); ok {
		for _, tn := range tenants[:5] {
			pool, release, ok := postgres.TenantPool(db, tn)
			if !ok {
				t.Fatalf("no pool for %s", tn.ID)
			}
			assertCleanConn(t, pool)
			release()
		}
	}
}

// poolsOf returns the shared pools of a provider (RLS, schema, or both in
// hybrid); database-per-tenant pools are checked by their own test.
func poolsOf(p isolation.Provider) []*pgxpool.Pool {
	switch p := p.(type) {
	case *postgres.RLS:
		return []*pgxpool.Pool{p.Pool()}
	case *postgres.Schema:
		return []*pgxpool.Pool{p.Pool()}
	case *isolation.Hybrid:
		var out []*pgxpool.Pool
		for _, sub := range p.Providers() {
			out = append(out, poolsOf(sub)...)
		}
		return out
	}
	return nil
}

// leakOp runs one random operation for tn and checks that everything it
// reads belongs to tn.
func leakOp(ctx context.Context, p isolation.Provider, tn *tenancy.Tenant, r *rand.Rand, mine *[]string, title string) error {
	check := func(tid, title string) error {
		if tid != tn.ID || !strings.HasPrefix(title, tn.ID+":") {
			return fmt.Errorf("read foreign row (%s, %s)", tid, title)
		}
		return nil
	}
	switch op := r.IntN(5); {
	case op == 0 || len(*mine) == 0:
		var id, tid string
		if err := p.QueryRow(ctx, tn, "INSERT INTO notes (title) VALUES ($1) RETURNING id::text, tenant_id", title).Scan(&id, &tid); err != nil {
			return err
		}
		*mine = append(*mine, id)
		return check(tid, title)
	case op == 1:
		rows, err := p.Query(ctx, tn, "SELECT tenant_id, title FROM notes ORDER BY created_at DESC LIMIT 20")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var tid, title string
			if err := rows.Scan(&tid, &title); err != nil {
				return err
			}
			if err := check(tid, title); err != nil {
				return err
			}
		}
		return rows.Err()
	case op == 2:
		var tid, got string
		if err := p.QueryRow(ctx, tn, "SELECT tenant_id, title FROM notes WHERE id = $1", (*mine)[r.IntN(len(*mine))]).Scan(&tid, &got); err != nil {
			return err
		}
		return check(tid, got)
	case op == 3:
		n, err := p.Exec(ctx, tn, "UPDATE notes SET title = $1 WHERE id = $2", title+"-updated", (*mine)[r.IntN(len(*mine))])
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("update of own note affected %d rows", n)
		}
		return nil
	default:
		return p.Tx(ctx, tn, func(tx isolation.Tx) error {
			var id, tid string
			if err := tx.QueryRow(ctx, "INSERT INTO notes (title) VALUES ($1) RETURNING id::text, tenant_id", title).Scan(&id, &tid); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM notes WHERE tenant_id <> $1", tn.ID).Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				return fmt.Errorf("transaction saw %d foreign rows", n)
			}
			*mine = append(*mine, id)
			return check(tid, title)
		})
	}
}
