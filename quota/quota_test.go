package quota_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/go-tenancy/tenancy/quota"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var rolesOnce sync.Once

func setupRoles(t testing.TB) {
	t.Helper()
	testenv.Admin(t)
	rolesOnce.Do(func() {
		testenv.EnsureRole(t, testenv.AppRole)
		testenv.EnsureRole(t, testenv.OwnerRole)
		testenv.AdminExec(t, `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenancy_tenant') THEN
    CREATE ROLE tenancy_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END $$`)
		testenv.AdminExec(t, "GRANT tenancy_tenant TO tenancy_app, tenancy_owner")
	})
}

type env struct{ super, owner, app string }

func (e env) dsn(kind string) string {
	switch kind {
	case "app":
		return e.app
	case "owner":
		return e.owner
	}
	return e.super
}

func newEnv(t testing.TB) env {
	t.Helper()
	setupRoles(t)
	super := testenv.NewDatabase(t)
	pool := testenv.Pool(t, super)
	db := pool.Config().ConnConfig.Database
	mustExec(t, pool,
		"GRANT ALL ON SCHEMA public TO "+testenv.OwnerRole,
		"GRANT CREATE, CONNECT ON DATABASE "+pgx.Identifier{db}.Sanitize()+" TO "+testenv.OwnerRole)
	return env{super: super, owner: testenv.WithUser(super, testenv.OwnerRole), app: testenv.WithUser(super, testenv.AppRole)}
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func mustExec(t testing.TB, db execer, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(context.Background(), s); err != nil {
			t.Fatalf("exec %q: %v", s, err)
		}
	}
}

const projectsPostgres = `CREATE TABLE projects (
	id text NOT NULL,
	` + postgres.TenantIDColumn + `,
	name text NOT NULL,
	PRIMARY KEY (tenant_id, id))`

const projectsSQLite = `CREATE TABLE projects (id TEXT PRIMARY KEY, name TEXT NOT NULL)`

// createTables creates projects and the quota counters in schema as dsn's
// user, and grants (and, for a tenant schema, seals) them.
func createTables(t testing.TB, dsn, schema string, tenant *tenancy.Tenant) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	mustExec(t, conn, "SET search_path TO "+pgx.Identifier{schema}.Sanitize())
	mustExec(t, conn, append([]string{projectsPostgres}, postgres.EnableRLS("projects")...)...)
	mustExec(t, conn, quota.DDL(isolation.Postgres)...)
	if err := postgres.GrantSchema(ctx, conn, schema, postgres.DefaultRole); err != nil {
		t.Fatal(err)
	}
	if tenant != nil {
		if err := postgres.SealSchema(ctx, conn, schema, tenant.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// strategies open a provider for tenants, their storage ready, connected
// with the DSN of kind (PostgreSQL) or on files (SQLite).
var strategies = []struct {
	name string
	open func(t *testing.T, e env, kind string, tenants []*tenancy.Tenant) isolation.Provider
}{
	{"rls", func(t *testing.T, e env, kind string, _ []*tenancy.Tenant) isolation.Provider {
		createTables(t, e.owner, "public", nil)
		p, err := postgres.NewRLS(context.Background(), testenv.Pool(t, e.dsn(kind)), postgres.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}},
	{"schema", func(t *testing.T, e env, kind string, tenants []*tenancy.Tenant) isolation.Provider {
		ctx := context.Background()
		admin, err := postgres.NewSchema(ctx, testenv.Pool(t, e.owner), postgres.SchemaConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range tenants {
			if err := admin.Initialize(ctx, tn); err != nil {
				t.Fatal(err)
			}
			name, _ := admin.SchemaName(tn)
			createTables(t, e.owner, name, tn)
		}
		p, err := postgres.NewSchema(ctx, testenv.Pool(t, e.dsn(kind)), postgres.SchemaConfig{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}},
	{"database", func(t *testing.T, e env, kind string, tenants []*tenancy.Tenant) isolation.Provider {
		ctx := context.Background()
		admin, err := postgres.NewDatabase(ctx, testenv.Pool(t, e.super), postgres.DatabaseConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, tn := range tenants {
				_ = admin.Destroy(context.Background(), tn)
			}
			admin.Close()
		})
		for _, tn := range tenants {
			if err := admin.Initialize(ctx, tn); err != nil {
				t.Fatal(err)
			}
			name, _ := admin.DatabaseName(tn)
			tenantSuper := testenv.WithDatabase(e.super, name)
			superConn := testenv.Pool(t, tenantSuper)
			mustExec(t, superConn, "GRANT ALL ON SCHEMA public TO "+testenv.OwnerRole)
			superConn.Close()
			createTables(t, testenv.WithUser(tenantSuper, testenv.OwnerRole), "public", nil)
		}
		p, err := postgres.NewDatabase(ctx, testenv.Pool(t, e.dsn(kind)), postgres.DatabaseConfig{MaxConnsPerTenant: 4, MaxTotalConns: 16})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}},
	{"sqlite", func(t *testing.T, _ env, _ string, tenants []*tenancy.Tenant) isolation.Provider {
		ctx := context.Background()
		p, err := sqlite.New(sqlite.Config{Dir: filepath.Join(t.TempDir(), "tenants")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		for _, tn := range tenants {
			if err := p.Initialize(ctx, tn); err != nil {
				t.Fatal(err)
			}
			for _, stmt := range append([]string{projectsSQLite}, quota.DDL(isolation.SQLite)...) {
				if _, err := p.Exec(ctx, tn, stmt); err != nil {
					t.Fatal(err)
				}
			}
		}
		return p
	}},
}

var limits = map[string]quota.Limits{"enterprise": {"projects": 500}, "starter": {"projects": 3}}

// createProject inserts a project after taking its unit, in one
// transaction of t's.
func createProject(ctx context.Context, q *quota.Quota, p isolation.Provider, t *tenancy.Tenant, id string) error {
	return p.Tx(ctx, t, func(tx isolation.Tx) error {
		if err := q.Acquire(ctx, tx, t, "projects"); err != nil {
			return err
		}
		ph := "$1"
		if p.Dialect() == isolation.SQLite {
			ph = "?"
		}
		_, err := tx.Exec(ctx, "INSERT INTO projects (id, name) VALUES ("+ph+", 'p')", id)
		return err
	})
}

func deleteProject(ctx context.Context, q *quota.Quota, p isolation.Provider, t *tenancy.Tenant, id string) error {
	return p.Tx(ctx, t, func(tx isolation.Tx) error {
		ph := "$1"
		if p.Dialect() == isolation.SQLite {
			ph = "?"
		}
		n, err := tx.Exec(ctx, "DELETE FROM projects WHERE id = "+ph, id)
		if err != nil || n == 0 {
			return fmt.Errorf("delete %s: %d rows, %v", id, n, err)
		}
		return q.Release(ctx, tx, t, "projects")
	})
}

func countProjects(t *testing.T, p isolation.Provider, tn *tenancy.Tenant) int {
	t.Helper()
	var n int
	if err := p.QueryRow(context.Background(), tn, "SELECT count(*) FROM projects").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConcurrentCreatesStopAtTheLimit is PITFALLS 20: ten concurrent
// creates on an empty starter tenant with a limit of three leave exactly
// three, on every strategy, as every role the service may connect as.
func TestConcurrentCreatesStopAtTheLimit(t *testing.T) {
	t.Parallel()
	for _, s := range strategies {
		kinds := []string{"app", "owner", "superuser"}
		if s.name == "sqlite" {
			kinds = []string{"file"}
		}
		for _, kind := range kinds {
			t.Run(s.name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				var e env
				if s.name != "sqlite" {
					e = newEnv(t)
				}
				tenants := isolationtest.Tenants(2)
				tenants[0].Tier, tenants[1].Tier = "starter", "starter"
				p := s.open(t, e, kind, tenants)
				q, err := quota.New(quota.Config{Provider: p, Tiers: limits})
				if err != nil {
					t.Fatal(err)
				}
				tn := tenants[0]

				var wg sync.WaitGroup
				errs := make([]error, 10)
				for i := range errs {
					wg.Go(func() { errs[i] = createProject(ctx, q, p, tn, fmt.Sprint("p", i)) })
				}
				wg.Wait()
				var ok, refused int
				for _, err := range errs {
					var qe *tenancy.QuotaError
					switch {
					case err == nil:
						ok++
					case errors.As(err, &qe):
						refused++
						if qe.Resource != "projects" || qe.Limit != 3 || qe.Usage != 3 || qe.Tier != "starter" {
							t.Fatalf("QuotaError %+v, want projects 3 of 3, starter", qe)
						}
					default:
						t.Fatalf("create: %v", err)
					}
				}
				if ok != 3 || refused != 7 || countProjects(t, p, tn) != 3 {
					t.Fatalf("%d created, %d refused, %d stored; want 3, 7, 3", ok, refused, countProjects(t, p, tn))
				}
				// The other tenant's budget is its own.
				if err := createProject(ctx, q, p, tenants[1], "other"); err != nil {
					t.Fatalf("the other tenant's first project: %v", err)
				}

				// A delete gives the unit back.
				if err := deleteProject(ctx, q, p, tn, "p-missing"); err == nil {
					t.Fatal("deleted a project that does not exist")
				}
				var kept string
				if err := p.QueryRow(ctx, tn, "SELECT id FROM projects ORDER BY id LIMIT 1").Scan(&kept); err != nil {
					t.Fatal(err)
				}
				if err := deleteProject(ctx, q, p, tn, kept); err != nil {
					t.Fatal(err)
				}
				if err := createProject(ctx, q, p, tn, "after-delete"); err != nil {
					t.Fatalf("create after a delete: %v", err)
				}
				if err := createProject(ctx, q, p, tn, "one-too-many"); !errors.Is(err, tenancy.ErrQuotaExceeded) {
					t.Fatalf("fourth project: %v, want ErrQuotaExceeded", err)
				}
				u, err := q.Usage(ctx, tn)
				if err != nil || len(u) != 1 || u[0] != (quota.Usage{Resource: "projects", Used: 3, Limit: 3}) {
					t.Fatalf("Usage = %+v, %v", u, err)
				}
			})
		}
	}
}

func TestOverridesAndTiers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tenants := isolationtest.Tenants(3)
	tenants[0].Tier = "starter"
	tenants[0].Metadata = map[string]any{quota.MetadataKey: map[string]any{"projects": 5.0}}
	tenants[1].Tier = "enterprise"
	tenants[2].Tier = "unknown"
	p := strategies[3].open(t, env{}, "", tenants) // SQLite: no server needed
	q, err := quota.New(quota.Config{Provider: p, Tiers: limits, Default: quota.Limits{"projects": 1}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{5, 500, 1} {
		if got := q.Limit(tenants[i], "projects"); got != want {
			t.Fatalf("limit of %s = %d, want %d", tenants[i].Tier, got, want)
		}
	}
	if got := q.Limit(tenants[1], "seats"); got != quota.Unlimited {
		t.Fatalf("unnamed resource limit %d, want Unlimited", got)
	}
	for i := range 5 {
		if err := createProject(ctx, q, p, tenants[0], fmt.Sprint("p", i)); err != nil {
			t.Fatalf("project %d within the override: %v", i, err)
		}
	}
	var qe *tenancy.QuotaError
	if err := createProject(ctx, q, p, tenants[0], "p5"); !errors.As(err, &qe) || qe.Limit != 5 || qe.Usage != 5 {
		t.Fatalf("sixth project: %v", err)
	}
	// Lowering the limit below the usage refuses the next unit and keeps
	// what exists.
	tenants[0].Metadata = nil
	if err := createProject(ctx, q, p, tenants[0], "p6"); !errors.As(err, &qe) || qe.Limit != 3 || qe.Usage != 5 {
		t.Fatalf("after a downgrade: %v, want 5 of 3", err)
	}
	if _, err := quota.New(quota.Config{Provider: p, Tiers: map[string]quota.Limits{"x": {"Bad Name": 1}}}); err == nil {
		t.Fatal("invalid resource name accepted")
	}
}

// TestBatch checks the batch form: the check and the insert in one
// batch, the insert not applied when the check refuses.
func TestBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := isolationtest.Tenants(1)
	tn := tenants[0]
	tn.Tier = "starter"
	p := strategies[0].open(t, e, "app", tenants)
	q, err := quota.New(quota.Config{Provider: p, Tiers: limits})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		b := &pgx.Batch{}
		if err := q.Queue(b, tn, "projects"); err != nil {
			t.Fatal(err)
		}
		b.Queue("INSERT INTO projects (id, name) VALUES ($1, 'p')", fmt.Sprint("b", i))
		br := postgres.For(p, tn).SendBatch(ctx, b)
		_, err := br.Exec()
		err = q.Error(tn, "projects", err)
		_ = br.Close()
		var qe *tenancy.QuotaError
		switch {
		case i < 3 && err != nil:
			t.Fatalf("batch %d: %v", i, err)
		case i == 3 && (!errors.As(err, &qe) || qe.Usage != 3):
			t.Fatalf("fourth batch: %v, want a QuotaError at 3 of 3", err)
		}
	}
	if n := countProjects(t, p, tn); n != 3 {
		t.Fatalf("%d projects, want 3: the refused batch's insert must not apply", n)
	}
}
