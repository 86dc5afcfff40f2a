package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The benchmarks compare, on one pool and the same data, a primary-key read
// and a 20-row list through: raw pgx with WHERE tenant_id = $1 and no
// tenancy (the baseline), the RLS one-shot API, the schema one-shot API with
// 100 and 1,000 tenant schemas, and an explicit transaction per request
// (BEGIN, set the tenant, query, COMMIT: how other libraries do it). Run:
//
//	go test -run '^$' -bench . -benchtime 3s ./isolation/postgres/
//
// and compare ns/op side by side; see BENCHMARKS.md.

const (
	benchNotes    = 100
	benchClients  = 8
	benchListSQL  = "SELECT id, tenant_id, title, created_at FROM notes WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 20"
	benchReadSQL  = "SELECT id, tenant_id, title, created_at FROM notes WHERE id = $1"
	benchPlainRd  = "SELECT id, tenant_id, title, created_at FROM notes_plain WHERE id = $1 AND tenant_id = $2"
	benchPlainLst = "SELECT id, tenant_id, title, created_at FROM notes_plain WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 20"
)

// benchNotesDDL is the notes table the benchmarks read: a UUID key and a
// creation time to list by, as the example apps have.
var benchNotesDDL = append([]string{`CREATE TABLE notes (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	` + postgres.TenantIDColumn + `,
	title text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT clock_timestamp())`},
	postgres.EnableRLS("notes")...)

type benchTenant struct {
	t   *tenancy.Tenant
	ids []string
}

type benchFixture struct {
	pool          *pgxpool.Pool
	rls           *postgres.RLS
	schema        *postgres.Schema
	rlsTenants    []benchTenant
	schema100     []benchTenant
	schema1000    []benchTenant
	schemaTenants []benchTenant
}

var (
	benchOnce sync.Once
	bench     *benchFixture
)

func fixture(b *testing.B) *benchFixture {
	b.Helper()
	benchOnce.Do(func() { bench = buildFixture(b) })
	if bench == nil {
		b.Fatal("fixture failed")
	}
	return bench
}

func buildFixture(b *testing.B) *benchFixture {
	ctx := context.Background()
	testenv.Admin(b)
	testenv.EnsureRole(b, testenv.AppRole)
	testenv.AdminExec(b, `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenancy_tenant') THEN
    CREATE ROLE tenancy_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END $$`)
	testenv.AdminExec(b, "GRANT tenancy_tenant TO tenancy_app")
	// The fixture outlives any one benchmark: TestMain drops it.
	benchDB = testenv.RandomName("tenancy_bench_")
	mustExecB(b, testenv.Admin(b), "CREATE DATABASE "+benchDB, "REVOKE TEMPORARY ON DATABASE "+benchDB+" FROM PUBLIC")
	super := testenv.WithDatabase(testenv.DatabaseURL(), benchDB)
	admin, err := pgxpool.New(ctx, super)
	if err != nil {
		b.Fatal(err)
	}
	benchPools = append(benchPools, admin)
	mustExecB(b, admin, benchNotesDDL...)
	mustExecB(b, admin,
		"CREATE INDEX notes_list_idx ON notes (tenant_id, created_at DESC)",
		`CREATE TABLE notes_plain (id uuid PRIMARY KEY, tenant_id text NOT NULL, title text NOT NULL, created_at timestamptz NOT NULL)`,
		"CREATE INDEX notes_plain_list_idx ON notes_plain (tenant_id, created_at DESC)")
	if err := postgres.GrantSchema(ctx, admin, "public", postgres.DefaultRole); err != nil {
		b.Fatal(err)
	}
	mustExecB(b, admin, "GRANT SELECT ON notes_plain TO "+testenv.AppRole)

	f := &benchFixture{}
	tenants := newTenants(1000)
	schemaAdmin, err := postgres.NewSchema(ctx, admin, postgres.SchemaConfig{})
	if err != nil {
		b.Fatal(err)
	}
	for i, tn := range tenants {
		if i < 100 {
			mustExecB(b, admin, fmt.Sprintf(`INSERT INTO notes (tenant_id, title, created_at)
SELECT %s, 'note ' || g, now() - g * interval '1 minute' FROM generate_series(1, %d) g`, quote(tn.ID), benchNotes))
		}
		if err := schemaAdmin.Initialize(ctx, tn); err != nil {
			b.Fatal(err)
		}
		name, _ := schemaAdmin.SchemaName(tn)
		conn, err := admin.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		mustExecB(b, tx, "SET LOCAL search_path TO "+pgx.Identifier{name}.Sanitize())
		mustExecB(b, tx, benchNotesDDL...)
		mustExecB(b, tx, "CREATE INDEX notes_list_idx ON notes (tenant_id, created_at DESC)")
		mustExecB(b, tx, fmt.Sprintf(`INSERT INTO notes (tenant_id, title, created_at)
SELECT %s, 'note ' || g, now() - g * interval '1 minute' FROM generate_series(1, %d) g`, quote(tn.ID), benchNotes))
		if err := postgres.GrantSchema(ctx, tx, name, postgres.DefaultRole); err != nil {
			b.Fatal(err)
		}
		if err := postgres.SealSchema(ctx, tx, name, tn.ID); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		conn.Release()
	}
	mustExecB(b, admin, "INSERT INTO notes_plain SELECT id, tenant_id, title, created_at FROM notes", "ANALYZE")

	cfg, err := pgxpool.ParseConfig(testenv.WithUser(super, testenv.AppRole))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = benchClients
	if f.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	benchPools = append(benchPools, f.pool)
	if f.rls, err = postgres.NewRLS(ctx, f.pool, postgres.Config{}); err != nil {
		b.Fatal(err)
	}
	if f.schema, err = postgres.NewSchema(ctx, f.pool, postgres.SchemaConfig{}); err != nil {
		b.Fatal(err)
	}
	for i, tn := range tenants {
		bt := benchTenant{t: tn}
		var sql string
		if i < 100 {
			sql = "SELECT id::text FROM notes WHERE tenant_id = $1"
			rows, err := admin.Query(ctx, sql, tn.ID)
			if err != nil {
				b.Fatal(err)
			}
			if bt.ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				b.Fatal(err)
			}
			f.rlsTenants = append(f.rlsTenants, bt)
		}
		name, _ := schemaAdmin.SchemaName(tn)
		rows, err := admin.Query(ctx, "SELECT id::text FROM "+pgx.Identifier{name, "notes"}.Sanitize())
		if err != nil {
			b.Fatal(err)
		}
		st := benchTenant{t: tn}
		if st.ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			b.Fatal(err)
		}
		f.schemaTenants = append(f.schemaTenants, st)
	}
	f.schema100 = f.schemaTenants[:100]
	f.schema1000 = f.schemaTenants
	return f
}

var (
	benchDB    string
	benchPools []*pgxpool.Pool
)

// TestMain drops the benchmark fixture, which outlives single benchmarks.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, p := range benchPools {
		p.Close()
	}
	if benchDB != "" {
		if admin, err := pgxpool.New(context.Background(), testenv.DatabaseURL()); err == nil {
			_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+benchDB+" WITH (FORCE)")
			admin.Close()
		}
	}
	os.Exit(code)
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

type atomicSeed struct{ n atomic.Uint64 }

func (s *atomicSeed) next() uint64 { return s.n.Add(1) }

func quote(s string) string { return "'" + s + "'" }

func mustExecB(b *testing.B, db execer, stmts ...string) {
	b.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(context.Background(), s); err != nil {
			b.Fatalf("exec %q: %v", s, err)
		}
	}
}

// runParallel runs op from benchClients goroutines, each picking a random
// tenant and note for every call.
func runParallel(b *testing.B, tenants []benchTenant, op func(ctx context.Context, bt benchTenant, id string) error) {
	b.Helper()
	ctx := context.Background()
	b.SetParallelism(max(1, benchClients/max(1, runtimeProcs())))
	b.ReportAllocs()
	b.ResetTimer()
	var seed atomicSeed
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seed.next(), 7))
		for pb.Next() {
			bt := tenants[r.IntN(len(tenants))]
			if err := op(ctx, bt, bt.ids[r.IntN(len(bt.ids))]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

type note struct {
	id, tenantID, title string
	createdAt           time.Time
}

func scanOne(row isolation.Row, bt benchTenant) error {
	var n note
	if err := row.Scan(&n.id, &n.tenantID, &n.title, &n.createdAt); err != nil {
		return err
	}
	if n.tenantID != bt.t.ID {
		return fmt.Errorf("read a note of %s for %s", n.tenantID, bt.t.ID)
	}
	return nil
}

func scanList(rows isolation.Rows, err error, bt benchTenant) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var v note
		if err := rows.Scan(&v.id, &v.tenantID, &v.title, &v.createdAt); err != nil {
			return err
		}
		if v.tenantID != bt.t.ID {
			return fmt.Errorf("listed a note of %s for %s", v.tenantID, bt.t.ID)
		}
		n++
	}
	if n != 20 {
		return fmt.Errorf("listed %d notes, want 20", n)
	}
	return rows.Err()
}

func BenchmarkRead(b *testing.B) {
	f := fixture(b)
	b.Run("raw", func(b *testing.B) {
		runParallel(b, f.rlsTenants, func(ctx context.Context, bt benchTenant, id string) error {
			return scanOne(f.pool.QueryRow(ctx, benchPlainRd, id, bt.t.ID), bt)
		})
	})
	b.Run("rls", func(b *testing.B) {
		runParallel(b, f.rlsTenants, func(ctx context.Context, bt benchTenant, id string) error {
			return scanOne(f.rls.QueryRow(ctx, bt.t, benchReadSQL, id), bt)
		})
	})
	b.Run("schema-100", func(b *testing.B) {
		runParallel(b, f.schema100, func(ctx context.Context, bt benchTenant, id string) error {
			return scanOne(f.schema.QueryRow(ctx, bt.t, benchReadSQL, id), bt)
		})
	})
	b.Run("schema-1000", func(b *testing.B) {
		runParallel(b, f.schema1000, func(ctx context.Context, bt benchTenant, id string) error {
			return scanOne(f.schema.QueryRow(ctx, bt.t, benchReadSQL, id), bt)
		})
	})
	b.Run("tx-per-request", func(b *testing.B) {
		runParallel(b, f.rlsTenants, func(ctx context.Context, bt benchTenant, id string) error {
			return explicitTx(ctx, f.pool, bt, func(tx pgx.Tx) error {
				return scanOne(tx.QueryRow(ctx, benchReadSQL, id), bt)
			})
		})
	})
}

func BenchmarkList(b *testing.B) {
	f := fixture(b)
	b.Run("raw", func(b *testing.B) {
		runParallel(b, f.rlsTenants, func(ctx context.Context, bt benchTenant, _ string) error {
			rows, err := f.pool.Query(ctx, benchPlainLst, bt.t.ID)
			return scanList(rows, err, bt)
		})
	})
	b.Run("rls", func(b *testing.B) {
		runParallel(b, f.rlsTenants, func(ctx context.Context, bt benchTenant, _ string) error {
			rows, err := f.rls.Query(ctx, bt.t, benchListSQL, bt.t.ID)
			return scanList(rows, err, bt)
		})
	})
	b.Run("schema-100", func(b *testing.B) {
		runParallel(b, f.schema100, func(ctx context.Context, bt benchTenant, _ string) error {
			rows, err := f.schema.Query(ctx, bt.t, benchListSQL, bt.t.ID)
			return scanList(rows, err, bt)
		})
	})
	b.Run("schema-1000", func(b *testing.B) {
		runParallel(b, f.schema1000, func(ctx context.Context, bt benchTenant, _ string) error {
			rows, err := f.schema.Query(ctx, bt.t, benchListSQL, bt.t.ID)
			return scanList(rows, err, bt)
		})
	})
	b.Run("tx-per-request", func(b *testing.B) {
		runParallel(b, f.rlsTenants, func(ctx context.Context, bt benchTenant, _ string) error {
			return explicitTx(ctx, f.pool, bt, func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, benchListSQL, bt.t.ID)
				return scanList(rows, err, bt)
			})
		})
	})
}

// explicitTx is the per-request transaction other libraries use: BEGIN, set
// the tenant, run the query, COMMIT; four round trips.
func explicitTx(ctx context.Context, pool *pgxpool.Pool, bt benchTenant, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT set_config('app.tenant_id', $1, true), set_config('role', $2, true)", bt.t.ID, postgres.DefaultRole); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
