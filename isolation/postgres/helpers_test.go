package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var rolesOnce sync.Once

// setupRoles creates the cluster-wide roles the tests use: the application
// login role, the owner login role and the tenant role, with the tenant role
// granted to both login roles (an administrator's job in production).
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

func newEnv(t testing.TB) env {
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

func mustExec(t testing.TB, db execer, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(context.Background(), s); err != nil {
			t.Fatalf("exec %q: %v", s, err)
		}
	}
}

// notesDDL creates the suite's notes table in the current search path under
// the package's policies.
var notesDDL = append([]string{isolationtest.NotesPostgres}, postgres.EnableRLS("notes")...)

// createNotes creates the notes table in schema (as the owner of dsn), grants
// the tenant role its use, and, for a tenant schema, seals it for tenant.
func createNotes(t testing.TB, dsn, schema string, tenant *tenancy.Tenant) {
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
	if tenant != nil {
		if err := postgres.SealSchema(ctx, conn, schema, tenant.ID); err != nil {
			t.Fatal(err)
		}
	}
}

func newTenants(n int) []*tenancy.Tenant { return isolationtest.Tenants(n) }

// strategy opens one isolation strategy on an env: it prepares tenants'
// storage as an administrator would (owner or superuser), then returns a
// provider connected with the DSN under test.
type strategy struct {
	name string
	open func(t testing.TB, e env, dsn string, tenants []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) isolation.Provider
}

var strategies = []strategy{
	{name: "rls", open: openRLS},
	{name: "schema", open: openSchema},
	{name: "schema-partitioned", open: openSchemaPartitioned},
	{name: "database", open: openDatabase},
	{name: "hybrid", open: openHybrid},
}

func poolCfgOrNil(f func(*pgxpool.Config)) []func(*pgxpool.Config) {
	if f == nil {
		return nil
	}
	return []func(*pgxpool.Config){f}
}

// pgConfig is the provider configuration for dsn: through PgBouncer
// (TEST_PGBOUNCER_URL's address), transaction pooling.
func pgConfig(dsn string) postgres.Config {
	b, err1 := url.Parse(os.Getenv("TEST_PGBOUNCER_URL"))
	u, err2 := url.Parse(dsn)
	if err1 == nil && err2 == nil && b.Host != "" && b.Host == u.Host {
		return postgres.Config{Pooler: postgres.PoolerTransaction}
	}
	return postgres.Config{}
}

func openRLS(t testing.TB, e env, dsn string, _ []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) isolation.Provider {
	t.Helper()
	ensureSharedNotes(t, e)
	p, err := postgres.NewRLS(context.Background(), testenv.Pool(t, dsn, poolCfgOrNil(poolCfg)...), pgConfig(dsn))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var sharedNotes sync.Map // env.super -> *sync.Once

func ensureSharedNotes(t testing.TB, e env) {
	t.Helper()
	once, _ := sharedNotes.LoadOrStore(e.super, new(sync.Once))
	once.(*sync.Once).Do(func() { createNotes(t, e.owner, "public", nil) })
}

func openSchema(t testing.TB, e env, dsn string, tenants []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) isolation.Provider {
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
		createNotes(t, e.owner, name, tn)
	}
	p, err := postgres.NewSchema(ctx, testenv.Pool(t, dsn, poolCfgOrNil(poolCfg)...), postgres.SchemaConfig{Config: pgConfig(dsn)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// openSchemaPartitioned is openSchema with the pool split in two
// partitions.
func openSchemaPartitioned(t testing.TB, e env, dsn string, tenants []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) isolation.Provider {
	t.Helper()
	openSchema(t, e, e.owner, tenants, nil)
	p, err := postgres.NewSchema(context.Background(), testenv.Pool(t, dsn, poolCfgOrNil(poolCfg)...), postgres.SchemaConfig{Config: pgConfig(dsn), Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func openDatabase(t testing.TB, e env, dsn string, tenants []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) isolation.Provider {
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
		createNotes(t, testenv.WithUser(tenantSuper, testenv.OwnerRole), "public", nil)
	}
	maxConns := int32(2)
	if poolCfg != nil {
		c := &pgxpool.Config{MaxConns: maxConns}
		poolCfg(c)
		maxConns = c.MaxConns
	}
	cfg := postgres.DatabaseConfig{Config: pgConfig(dsn), MaxConnsPerTenant: maxConns, MaxTotalConns: 2 * int(maxConns)}
	p, err := postgres.NewDatabase(ctx, testenv.Pool(t, dsn, poolCfgOrNil(poolCfg)...), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// openHybrid puts every other tenant (the "enterprise" ones) in a schema and
// the rest in shared tables under RLS, on the same database and pool.
func openHybrid(t testing.TB, e env, dsn string, tenants []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) isolation.Provider {
	t.Helper()
	ctx := context.Background()
	var enterprise []*tenancy.Tenant
	for i, tn := range tenants {
		if i%2 == 0 {
			tn.Tier = "enterprise"
			enterprise = append(enterprise, tn)
		} else {
			tn.Tier = "starter"
		}
	}
	ensureSharedNotes(t, e)
	openSchema(t, e, e.owner, enterprise, nil) // creates the schemas
	pool := testenv.Pool(t, dsn, poolCfgOrNil(poolCfg)...)
	rls, err := postgres.NewRLS(ctx, pool, pgConfig(dsn))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{Config: pgConfig(dsn)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := isolation.NewHybrid(isolation.HybridConfig{
		Tiers:   map[string]tenancy.Isolation{"enterprise": tenancy.IsolationSchema},
		Default: tenancy.IsolationRLS,
		Providers: map[tenancy.Isolation]isolation.Provider{
			tenancy.IsolationRLS:    rls,
			tenancy.IsolationSchema: schema,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// suiteFixture opens s for the conformance suite, with Sessions inspecting every
// pool the provider shares between tenants (and, for a database per tenant,
// the pools of the first tenants).
func suiteFixture(t *testing.T, s strategy, e env, dsn string, tenants []*tenancy.Tenant, maxConns int, extra ...func(*pgxpool.Config)) isolationtest.Fixture {
	t.Helper()
	p := s.open(t, e, dsn, tenants, func(c *pgxpool.Config) {
		c.MaxConns = int32(maxConns)
		for _, f := range extra {
			f(c)
		}
	})
	admin := s.open(t, e, e.super, nil, nil)
	return isolationtest.Fixture{Provider: p, Admin: admin, Sessions: func(ctx context.Context) ([]isolationtest.Session, error) {
		out, err := sessions(ctx, poolsOf(p)...)
		if db, ok := p.(*postgres.Database); ok && err == nil {
			// One tenant pool at a time: the total cap may not fit two.
			for _, tn := range tenants[:min(5, len(tenants))] {
				pool, release, ok := postgres.TenantPool(db, tn)
				if !ok {
					return nil, errors.New("no pool for " + tn.Identifier)
				}
				more, err := sessions(ctx, pool)
				release()
				if err != nil {
					return nil, err
				}
				out = append(out, more...)
			}
		}
		return out, err
	}}
}

// poolsOf returns the shared pools of a provider (RLS, schema, or both in
// hybrid).
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

// sessionSQL reads what a connection carries. It is sent with the simple
// protocol, so that inspecting a connection prepares nothing on it.
const sessionSQL = `SELECT coalesce(current_setting('app.tenant_id', true), ''), current_user::text, session_user::text,
	(SELECT setting <> reset_val FROM pg_settings WHERE name = 'search_path'),
	(SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()),
	ARRAY(SELECT name FROM pg_prepared_statements WHERE name NOT LIKE 'tenancy\_%' ORDER BY 1),
	(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
	ARRAY(SELECT pg_listening_channels() ORDER BY 1)`

// sessions inspects every connection of pools, holding them all at once so
// that each is a different one.
func sessions(ctx context.Context, pools ...*pgxpool.Pool) ([]isolationtest.Session, error) {
	var out []isolationtest.Session
	for _, pool := range pools {
		var held []*pgxpool.Conn
		for range pool.Config().MaxConns {
			c, err := pool.Acquire(ctx)
			if err != nil {
				for _, h := range held {
					h.Release()
				}
				return nil, err
			}
			held = append(held, c)
			var s isolationtest.Session
			err = c.QueryRow(ctx, sessionSQL, pgx.QueryExecModeSimpleProtocol).Scan(&s.TenantSetting, &s.CurrentUser, &s.SessionUser,
				&s.SearchPathChanged, &s.TempObjects, &s.ForeignStatements, &s.AdvisoryLocks, &s.Listening)
			if err != nil {
				for _, h := range held {
					h.Release()
				}
				return nil, err
			}
			out = append(out, s)
		}
		for _, h := range held {
			h.Release()
		}
	}
	return out, nil
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func isPolicyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501" && strings.Contains(pgErr.Message, "row-level security")
}

// insertNote inserts a note for tn and returns its ID and stored tenant_id.
func insertNote(t testing.TB, p isolation.Provider, tn *tenancy.Tenant, title string) (id, tenantID string) {
	t.Helper()
	id = testenv.RandomName("n")
	err := p.QueryRow(context.Background(), tn, "INSERT INTO notes (id, title) VALUES ($1, $2) RETURNING id, tenant_id", id, title).Scan(&id, &tenantID)
	if err != nil {
		t.Fatalf("insert note for %s: %v", tn.Identifier, err)
	}
	return id, tenantID
}

// assertNotes checks that tn sees exactly the notes titled want, all its own.
func assertNotes(t testing.TB, p isolation.Provider, tn *tenancy.Tenant, want ...string) {
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
