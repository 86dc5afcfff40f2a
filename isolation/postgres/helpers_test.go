package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// notesDDL creates the tenant table every test uses, in the current search
// path, with the column definition and policies the package provides.
var notesDDL = append([]string{`CREATE TABLE notes (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	` + postgres.TenantIDColumn + `,
	title text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT clock_timestamp())`},
	postgres.EnableRLS("notes")...)

var rolesOnce sync.Once

// setupRoles creates the cluster-wide roles the tests use: the application
// login role, the owner login role and the tenant role, with the tenant role
// granted to both login roles (an administrator's job in production).
func setupRoles(t *testing.T) {
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

// env is a fresh database with DSNs for the three kinds of user isolation
// must hold against.
type env struct {
	super, owner, app string
}

// dsnKinds names the DSNs every isolation test runs through.
var dsnKinds = []string{"app", "owner", "superuser"}

func (e env) dsn(kind string) string {
	switch kind {
	case "app":
		return e.app
	case "owner":
		return e.owner
	}
	return e.super
}

func newEnv(t *testing.T) env {
	t.Helper()
	setupRoles(t)
	super := testenv.NewDatabase(t)
	pool := testenv.Pool(t, super)
	db := pool.Config().ConnConfig.Database
	mustExec(t, pool,
		"GRANT ALL ON SCHEMA public TO "+testenv.OwnerRole,
		"GRANT CREATE, CONNECT ON DATABASE "+pgx.Identifier{db}.Sanitize()+" TO "+testenv.OwnerRole)
	return env{
		super: super,
		owner: testenv.WithUser(super, testenv.OwnerRole),
		app:   testenv.WithUser(super, testenv.AppRole),
	}
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func mustExec(t *testing.T, db execer, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(context.Background(), s); err != nil {
			t.Fatalf("exec %q: %v", s, err)
		}
	}
}

// createNotes creates the notes table in schema (as the owner of dsn) and
// grants the tenant role its use.
func createNotes(t *testing.T, dsn, schema string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	mustExec(t, conn, "SET search_path TO "+pgx.Identifier{schema}.Sanitize())
	mustExec(t, conn, notesDDL...)
	if err := postgres.GrantSchema(ctx, conn, schema, postgres.DefaultRole); err != nil {
		t.Fatal(err)
	}
}

// newTenants returns n active tenants with random identifiers, so that
// cluster-wide names (databases) never collide between tests.
func newTenants(n int, tier string) []*tenancy.Tenant {
	base := testenv.RandomName("t")
	out := make([]*tenancy.Tenant, n)
	for i := range out {
		ident := fmt.Sprintf("%s-%d", base, i)
		out[i] = &tenancy.Tenant{ID: "id-" + ident, Identifier: ident, Name: ident, Status: tenancy.StatusActive, Tier: tier}
	}
	return out
}

// strategy opens one isolation strategy on an env: it prepares tenants'
// storage as an administrator would (owner or superuser), then returns a
// provider connected with the DSN under test.
type strategy struct {
	name string
	open func(t *testing.T, e env, dsn string, tenants []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) isolation.Provider
}

var strategies = []strategy{
	{name: "rls", open: openRLS},
	{name: "schema", open: openSchema},
	{name: "database", open: openDatabase},
	{name: "hybrid", open: openHybrid},
}

func openRLS(t *testing.T, e env, dsn string, _ []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) isolation.Provider {
	t.Helper()
	ensureSharedNotes(t, e)
	p, err := postgres.NewRLS(context.Background(), testenv.Pool(t, dsn, poolCfgOrNil(poolCfg)...), postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var sharedNotes sync.Map // env.super -> struct{}

func ensureSharedNotes(t *testing.T, e env) {
	t.Helper()
	if _, loaded := sharedNotes.LoadOrStore(e.super, struct{}{}); !loaded {
		createNotes(t, e.owner, "public")
	}
}

func openSchema(t *testing.T, e env, dsn string, tenants []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) isolation.Provider {
	t.Helper()
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
		createNotes(t, e.owner, name)
	}
	p, err := postgres.NewSchema(ctx, testenv.Pool(t, dsn, poolCfgOrNil(poolCfg)...), postgres.SchemaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func openDatabase(t *testing.T, e env, dsn string, tenants []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) isolation.Provider {
	t.Helper()
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
		createNotes(t, testenv.WithUser(tenantSuper, testenv.OwnerRole), "public")
	}
	cfg := postgres.DatabaseConfig{MaxConnsPerTenant: 2, MaxTotalConns: 4}
	p, err := postgres.NewDatabase(ctx, testenv.Pool(t, dsn, poolCfgOrNil(poolCfg)...), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// openHybrid puts the "enterprise" tenants (every other one) in schemas and
// the rest in shared tables under RLS, on the same database.
func openHybrid(t *testing.T, e env, dsn string, tenants []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) isolation.Provider {
	t.Helper()
	var enterprise, starter []*tenancy.Tenant
	for i, tn := range tenants {
		if i%2 == 0 {
			tn.Tier = "enterprise"
			enterprise = append(enterprise, tn)
		} else {
			tn.Tier = "starter"
			starter = append(starter, tn)
		}
	}
	h, err := isolation.NewHybrid(isolation.HybridConfig{
		Tiers:   map[string]tenancy.Isolation{"enterprise": tenancy.IsolationSchema},
		Default: tenancy.IsolationRLS,
		Providers: map[tenancy.Isolation]isolation.Provider{
			tenancy.IsolationRLS:    openRLS(t, e, dsn, starter, poolCfg),
			tenancy.IsolationSchema: openSchema(t, e, dsn, enterprise, poolCfg),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func poolCfgOrNil(f func(*pgxpool.Config)) []func(*pgxpool.Config) {
	if f == nil {
		return nil
	}
	return []func(*pgxpool.Config){f}
}

// insertNote inserts a note for tn and returns its ID and stored tenant_id.
func insertNote(t *testing.T, p isolation.Provider, tn *tenancy.Tenant, title string) (id, tenantID string) {
	t.Helper()
	err := p.QueryRow(context.Background(), tn, "INSERT INTO notes (title) VALUES ($1) RETURNING id::text, tenant_id", title).Scan(&id, &tenantID)
	if err != nil {
		t.Fatalf("insert note for %s: %v", tn.Identifier, err)
	}
	return id, tenantID
}
