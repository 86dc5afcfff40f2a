package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var citusRoles sync.Once

// citusEnv is the Citus coordinator of TEST_CITUS_URL, its citus database
// shared by the tests (a Citus database needs the extension on every node),
// each test working in schemas of its own. The tenant role can log in, as
// Citus needs; the application role is granted it.
type citusEnv struct{ super, app string }

func newCitusEnv(t testing.TB) citusEnv {
	t.Helper()
	url := testenv.CitusURL(t)
	admin := testenv.AdminOn(t, url)
	citusRoles.Do(func() {
		testenv.EnsureRoleOn(t, url, testenv.AppRole)
		testenv.AdminExecOn(t, admin, `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenancy_tenant') THEN
    CREATE ROLE tenancy_tenant LOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END $$`)
		testenv.AdminExecOn(t, admin, "ALTER ROLE tenancy_tenant LOGIN")
		testenv.AdminExecOn(t, admin, "GRANT tenancy_tenant TO tenancy_app")
		testenv.AdminExecOn(t, admin, "REVOKE TEMPORARY ON DATABASE citus FROM PUBLIC")
	})
	return citusEnv{super: url, app: testenv.WithUser(url, testenv.AppRole)}
}

// dropSchemaAtEnd drops schema on the coordinator (and so on the workers)
// when t ends.
func dropSchemaAtEnd(t testing.TB, super, schema string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := testenv.AdminOn(t, super).Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
}

// citusRLS creates the notes table in a schema of the test's own,
// distributed on tenant_id, and returns a configuration whose pools start
// with that schema on their search path.
func citusRLS(t testing.TB, e citusEnv) func(dsn string) string {
	t.Helper()
	ctx := context.Background()
	schema := testenv.RandomName("citus_rls_")
	admin := testenv.AdminOn(t, e.super)
	dropSchemaAtEnd(t, e.super, schema)
	conn, err := admin.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	mustExec(t, conn, "CREATE SCHEMA "+schema, "SET search_path TO "+schema)
	mustExec(t, conn, notesDDL...)
	mustExec(t, conn, postgres.DistributeTable(schema+".notes"), "RESET search_path")
	if err := postgres.GrantSchema(ctx, conn, schema, postgres.DefaultRole); err != nil {
		t.Fatal(err)
	}
	return func(dsn string) string { return testenv.WithParam(dsn, "search_path", schema) }
}

func openCitusRLS(t testing.TB, dsn string, poolCfg func(*pgxpool.Config)) *postgres.RLS {
	t.Helper()
	p, err := postgres.NewRLS(context.Background(), testenv.Pool(t, dsn, poolCfgOrNil(poolCfg)...), postgres.Config{Citus: true})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// citusSchemas creates a distributed schema per tenant holding its notes
// table, sealed for the tenant.
func citusSchemas(t testing.TB, e citusEnv, tenants []*tenancy.Tenant) {
	t.Helper()
	ctx := context.Background()
	admin, err := postgres.NewSchema(ctx, testenv.AdminOn(t, e.super), postgres.SchemaConfig{Config: postgres.Config{Citus: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		name, _ := admin.SchemaName(tn)
		dropSchemaAtEnd(t, e.super, name)
		if err := admin.Initialize(ctx, tn); err != nil {
			t.Fatal(err)
		}
		conn, err := testenv.AdminOn(t, e.super).Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, conn, "SET search_path TO "+pgx.Identifier{name}.Sanitize())
		mustExec(t, conn, notesDDL...)
		mustExec(t, conn, "RESET search_path")
		conn.Release()
		if err := postgres.GrantSchema(ctx, testenv.AdminOn(t, e.super), name, postgres.DefaultRole); err != nil {
			t.Fatal(err)
		}
		if err := postgres.SealSchemaCitus(ctx, testenv.AdminOn(t, e.super), name, tn.ID); err != nil {
			t.Fatal(err)
		}
		mustExec(t, testenv.AdminOn(t, e.super), postgres.DistributeSchema(name))
	}
}

func openCitusSchema(t testing.TB, dsn string, poolCfg func(*pgxpool.Config)) *postgres.Schema {
	t.Helper()
	p, err := postgres.NewSchema(context.Background(), testenv.Pool(t, dsn, poolCfgOrNil(poolCfg)...), postgres.SchemaConfig{Config: postgres.Config{Citus: true}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCitusConformance runs the conformance suite on a Citus cluster as the
// application role: row-level security over a table distributed on
// tenant_id, and a schema per tenant under schema-based sharding. Its
// LeakUnderLoad runs 50 tenants over 8 goroutines each.
func TestCitusConformance(t *testing.T) {
	t.Parallel()
	e := newCitusEnv(t)
	t.Run("rls", func(t *testing.T) {
		t.Parallel()
		withPath := citusRLS(t, e)
		isolationtest.Run(t, func(t *testing.T, tenants []*tenancy.Tenant, maxConns int) isolationtest.Fixture {
			p := openCitusRLS(t, withPath(e.app), func(c *pgxpool.Config) { c.MaxConns = int32(maxConns) })
			admin := openCitusRLS(t, withPath(e.super), nil)
			return isolationtest.Fixture{Provider: p, Admin: admin, Sessions: func(ctx context.Context) ([]isolationtest.Session, error) {
				return sessions(ctx, p.Pool())
			}}
		})
	})
	t.Run("schema", func(t *testing.T) {
		t.Parallel()
		isolationtest.Run(t, func(t *testing.T, tenants []*tenancy.Tenant, maxConns int) isolationtest.Fixture {
			citusSchemas(t, e, tenants)
			p := openCitusSchema(t, e.app, func(c *pgxpool.Config) { c.MaxConns = int32(maxConns) })
			admin := openCitusSchema(t, e.super, nil)
			return isolationtest.Fixture{Provider: p, Admin: admin, Sessions: func(ctx context.Context) ([]isolationtest.Session, error) {
				return sessions(ctx, p.Pool())
			}}
		})
	})
}

// TestCitusNeedsSetLocal: the rows a tenant writes through the provider
// land on a worker's shard and are read back there; without Citus mode
// (set_config, which never reaches the workers) the same provider reads
// nothing and may not insert, so the mode is what makes it work.
func TestCitusNeedsSetLocal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newCitusEnv(t)
	withPath := citusRLS(t, e)
	tn := newTenants(1)[0]
	citus := openCitusRLS(t, withPath(e.app), nil)
	insertNote(t, citus, tn, "on a worker")
	assertNotes(t, citus, tn, "on a worker")
	if err := citus.Tx(ctx, tn, func(tx isolation.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO notes (id, title) VALUES ('tx', 'in a transaction')")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	assertNotes(t, citus, tn, "in a transaction", "on a worker")

	plain, err := postgres.NewRLS(ctx, testenv.Pool(t, withPath(e.app)), postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := plain.QueryRow(ctx, tn, "SELECT count(*) FROM notes").Scan(&n); err != nil || n != 0 {
		t.Fatalf("set_config on Citus: count %d, err %v; want 0 rows (the workers see no tenant)", n, err)
	}
	if _, err := plain.Exec(ctx, tn, "INSERT INTO notes (id, title) VALUES ('x', 'x')"); !isPolicyViolation(err) && err == nil {
		t.Fatalf("set_config on Citus: insert succeeded")
	}

	// A failed statement leaves nothing open on the connection.
	one := openCitusRLS(t, withPath(e.app), func(c *pgxpool.Config) { c.MaxConns = 1 })
	if _, err := one.Exec(ctx, tn, "INSERT INTO notes (id, title) VALUES ('tx', 'duplicate')"); pgCode(err) != "23505" {
		t.Fatalf("duplicate insert: %v", err)
	}
	ss, err := sessions(ctx, one.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].TenantSetting != "" || ss[0].CurrentUser != ss[0].SessionUser {
		t.Fatalf("after a failed statement the connection carries %+v", ss)
	}
	assertNotes(t, one, tn, "in a transaction", "on a worker")
}

// TestCitusNotForDatabase: a database per tenant has no Citus mode.
func TestCitusNotForDatabase(t *testing.T) {
	t.Parallel()
	_, err := postgres.NewDatabase(context.Background(), nil, postgres.DatabaseConfig{Config: postgres.Config{Citus: true}})
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("NewDatabase with Citus: %v", err)
	}
}

// TestCitusDoctor: on a Citus coordinator the doctor inspects every shard
// of a distributed tenant table, and reports one whose policies differ from
// the table's.
func TestCitusDoctor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newCitusEnv(t)
	withPath := citusRLS(t, e)
	admin := testenv.Pool(t, withPath(e.super))
	cfg := postgres.DoctorConfig{AppRole: testenv.AppRole}
	r, err := postgres.Doctor(ctx, admin, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Findings {
		if f.Code == postgres.FindingShardPolicy {
			t.Fatalf("healthy shards reported: %v", f)
		}
	}
	// Drop the policy on the shards only: the coordinator's table keeps it.
	var schema string
	if err := admin.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	mustExec(t, admin, "SELECT run_command_on_shards('"+schema+".notes', $$DROP POLICY "+postgres.PolicyName+" ON %s$$)")
	r, err = postgres.Doctor(ctx, admin, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range r.Findings {
		if f.Code == postgres.FindingShardPolicy {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("shards without the policy not reported: %v", r.Findings)
	}
}
