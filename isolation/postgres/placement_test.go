package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// second is the placement name of the second server in these tests.
const second = "second"

var secondRoles sync.Once

// newEnvOn is newEnv on the server of url: a fresh database there, with the
// same roles.
func newEnvOn(t testing.TB, url string) env {
	t.Helper()
	secondRoles.Do(func() {
		testenv.EnsureRoleOn(t, url, testenv.AppRole)
		testenv.EnsureRoleOn(t, url, testenv.OwnerRole)
		admin := testenv.AdminOn(t, url)
		testenv.AdminExecOn(t, admin, `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenancy_tenant') THEN
    CREATE ROLE tenancy_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END $$`)
		testenv.AdminExecOn(t, admin, "GRANT tenancy_tenant TO tenancy_app, tenancy_owner")
	})
	super := testenv.NewDatabaseOn(t, url)
	pool := testenv.Pool(t, super)
	db := pool.Config().ConnConfig.Database
	mustExec(t, pool,
		"GRANT ALL ON SCHEMA public TO "+testenv.OwnerRole,
		"GRANT CREATE, CONNECT ON DATABASE "+pgx.Identifier{db}.Sanitize()+" TO "+testenv.OwnerRole)
	return env{super: super, owner: testenv.WithUser(super, testenv.OwnerRole), app: testenv.WithUser(super, testenv.AppRole)}
}

// twoServers is a database on each of two servers: the default one
// (TEST_DATABASE_URL) and the second (TEST_DATABASE_URL2).
type twoServers struct{ def, sec env }

func newTwoServers(t testing.TB) twoServers {
	t.Helper()
	url2 := testenv.SecondDatabaseURL(t)
	return twoServers{def: newEnv(t), sec: newEnvOn(t, url2)}
}

// envOf returns the env holding t.
func (s twoServers) envOf(t *tenancy.Tenant) env {
	if t.Placement == second {
		return s.sec
	}
	return s.def
}

// placedStrategy opens a provider over both servers for the DSN kind, the
// tenants' storage prepared on the server each is placed on.
type placedStrategy struct {
	name  string
	place func(i int, t *tenancy.Tenant)
	open  func(t testing.TB, s twoServers, kind string, tenants []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) (isolation.Provider, []*pgxpool.Pool)
}

// alternate places even tenants on the second server, odd ones on the
// default.
func alternate(i int, t *tenancy.Tenant) {
	if i%2 == 0 {
		t.Placement = second
	}
}

var placedStrategies = []placedStrategy{
	{name: "rls", place: alternate, open: openPlacedRLS},
	{name: "schema", place: alternate, open: openPlacedSchema},
	// Tiers alternate too, offset by one, so that every tier is on both
	// servers.
	{name: "hybrid", place: func(i int, t *tenancy.Tenant) {
		if ((i+1)/2)%2 == 0 {
			t.Placement = second
		}
	}, open: openPlacedHybrid},
}

func pools2(t testing.TB, s twoServers, kind string, poolCfg func(*pgxpool.Config)) (*pgxpool.Pool, *pgxpool.Pool) {
	return testenv.Pool(t, s.def.dsn(kind), poolCfgOrNil(poolCfg)...), testenv.Pool(t, s.sec.dsn(kind), poolCfgOrNil(poolCfg)...)
}

func placedConfig(sec *pgxpool.Pool) postgres.Config {
	return postgres.Config{Placements: map[string]*pgxpool.Pool{second: sec}}
}

func openPlacedRLS(t testing.TB, s twoServers, kind string, _ []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) (isolation.Provider, []*pgxpool.Pool) {
	t.Helper()
	ensureSharedNotes(t, s.def)
	ensureSharedNotes(t, s.sec)
	def, sec := pools2(t, s, kind, poolCfg)
	p, err := postgres.NewRLS(context.Background(), def, placedConfig(sec))
	if err != nil {
		t.Fatal(err)
	}
	return p, []*pgxpool.Pool{def, sec}
}

func openPlacedSchema(t testing.TB, s twoServers, kind string, tenants []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) (isolation.Provider, []*pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	admin, err := postgres.NewSchema(ctx, testenv.Pool(t, s.def.owner), postgres.SchemaConfig{Config: placedConfig(testenv.Pool(t, s.sec.owner))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		if err := admin.Initialize(ctx, tn); err != nil {
			t.Fatal(err)
		}
		name, _ := admin.SchemaName(tn)
		createNotes(t, s.envOf(tn).owner, name, tn)
	}
	def, sec := pools2(t, s, kind, poolCfg)
	p, err := postgres.NewSchema(ctx, def, postgres.SchemaConfig{Config: placedConfig(sec)})
	if err != nil {
		t.Fatal(err)
	}
	return p, []*pgxpool.Pool{def, sec}
}

func openPlacedHybrid(t testing.TB, s twoServers, kind string, tenants []*tenancy.Tenant, poolCfg func(*pgxpool.Config)) (isolation.Provider, []*pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	var enterprise []*tenancy.Tenant
	for i, tn := range tenants {
		tn.Tier = "starter"
		if i%2 == 0 {
			tn.Tier = "enterprise"
			enterprise = append(enterprise, tn)
		}
	}
	ensureSharedNotes(t, s.def)
	ensureSharedNotes(t, s.sec)
	openPlacedSchema(t, s, "owner", enterprise, nil) // creates the schemas
	def, sec := pools2(t, s, kind, poolCfg)
	rls, err := postgres.NewRLS(ctx, def, placedConfig(sec))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := postgres.NewSchema(ctx, def, postgres.SchemaConfig{Config: placedConfig(sec)})
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
	return h, []*pgxpool.Pool{def, sec}
}

// TestPlacementConformance runs the conformance suite with tenants spread
// over two servers, under RLS, schema and hybrid isolation, as the
// application role, the owner and a superuser.
func TestPlacementConformance(t *testing.T) {
	t.Parallel()
	for _, s := range placedStrategies {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			srv := newTwoServers(t)
			for _, kind := range dsnKinds {
				t.Run(kind, func(t *testing.T) {
					isolationtest.Run(t, func(t *testing.T, tenants []*tenancy.Tenant, maxConns int) isolationtest.Fixture {
						for i, tn := range tenants {
							s.place(i, tn)
						}
						p, pools := s.open(t, srv, kind, tenants, func(c *pgxpool.Config) { c.MaxConns = int32(maxConns) })
						admin, _ := s.open(t, srv, "superuser", nil, nil)
						return isolationtest.Fixture{Provider: p, Admin: admin, Sessions: func(ctx context.Context) ([]isolationtest.Session, error) {
							return sessions(ctx, pools...)
						}}
					})
				})
			}
		})
	}
}

// serverHolds reports how many notes of tenant id the database of e holds,
// read as its superuser, outside any tenant scope.
func serverHolds(t testing.TB, e env, schema, id string) int {
	t.Helper()
	var n int
	err := testenv.Pool(t, e.super).QueryRow(context.Background(),
		"SELECT count(*) FROM "+pgx.Identifier{schema, "notes"}.Sanitize()+" WHERE tenant_id = $1", id).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPlacementRouting: a tenant's rows go to the server its Placement
// names and nowhere else ("default" naming the default server), a
// placement naming no server is refused at lookup by every entry point, and
// the pools are one per server, shared by all tenants.
func TestPlacementRouting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTwoServers(t)
	tenants := newTenants(3)
	onDef, onSec, onDefault := tenants[0], tenants[1], tenants[2]
	onSec.Placement = second
	onDefault.Placement = postgres.DefaultServer

	t.Run("rls", func(t *testing.T) {
		p, _ := openPlacedRLS(t, s, "app", nil, nil)
		for _, tn := range tenants {
			insertNote(t, p, tn, "n-"+tn.Identifier)
		}
		for _, c := range []struct {
			tn       *tenancy.Tenant
			def, sec int
		}{{onDef, 1, 0}, {onSec, 0, 1}, {onDefault, 1, 0}} {
			if got := serverHolds(t, s.def, "public", c.tn.ID); got != c.def {
				t.Errorf("%s: default server holds %d notes, want %d", c.tn.Placement, got, c.def)
			}
			if got := serverHolds(t, s.sec, "public", c.tn.ID); got != c.sec {
				t.Errorf("%s: second server holds %d notes, want %d", c.tn.Placement, got, c.sec)
			}
			assertNotes(t, p, c.tn, "n-"+c.tn.Identifier)
		}
		targets, err := p.(*postgres.RLS).Targets(tenants)
		if err != nil {
			t.Fatal(err)
		}
		if len(targets) != 2 {
			t.Fatalf("want a shared target per server (2), got %d", len(targets))
		}
	})

	t.Run("schema", func(t *testing.T) {
		p, _ := openPlacedSchema(t, s, "app", tenants, nil)
		for _, tn := range tenants {
			insertNote(t, p, tn, "n-"+tn.Identifier)
		}
		sch := p.(*postgres.Schema)
		for _, c := range []struct {
			tn  *tenancy.Tenant
			env env
		}{{onDef, s.def}, {onSec, s.sec}, {onDefault, s.def}} {
			name, _ := sch.SchemaName(c.tn)
			if got := serverHolds(t, c.env, name, c.tn.ID); got != 1 {
				t.Errorf("%s: its server holds %d notes, want 1", c.tn.Identifier, got)
			}
			pool, err := sch.PoolFor(c.tn)
			if err != nil {
				t.Fatal(err)
			}
			if pool.Config().ConnConfig.Port != testenv.Pool(t, c.env.super).Config().ConnConfig.Port ||
				pool.Config().ConnConfig.Database != testenv.Pool(t, c.env.super).Config().ConnConfig.Database {
				t.Errorf("%s: PoolFor returned a pool on another server", c.tn.Identifier)
			}
		}
		// One pool per server, whatever the number of tenants.
		a, _ := sch.PoolFor(onDef)
		b, _ := sch.PoolFor(onDefault)
		if a != b || a != sch.Pool() {
			t.Error("tenants of the default server do not share its pool")
		}
	})

	t.Run("unknown placement", func(t *testing.T) {
		rls, _ := openPlacedRLS(t, s, "app", nil, nil)
		schema, _ := openPlacedSchema(t, s, "owner", nil, nil)
		for name, p := range map[string]isolation.Provider{"rls": rls, "schema": schema} {
			lost := newTenants(1)[0]
			lost.Placement = "mars"
			calls := map[string]error{
				"Exec":       func() error { _, err := p.Exec(ctx, lost, "SELECT 1"); return err }(),
				"Query":      func() error { _, err := p.Query(ctx, lost, "SELECT 1"); return err }(),
				"QueryRow":   p.QueryRow(ctx, lost, "SELECT 1").Scan(new(int)),
				"Tx":         p.Tx(ctx, lost, func(isolation.Tx) error { return nil }),
				"Initialize": p.Initialize(ctx, lost),
				"Destroy":    p.Destroy(ctx, lost),
				"Targets":    func() error { _, err := p.(isolation.Migratable).Targets([]*tenancy.Tenant{lost}); return err }(),
				"Residue":    func() error { _, err := p.(isolation.ResidueChecker).Residue(ctx, lost); return err }(),
			}
			for call, err := range calls {
				if !errors.Is(err, isolation.ErrUnknownPlacement) {
					t.Errorf("%s %s: want ErrUnknownPlacement, got %v", name, call, err)
				}
			}
		}
	})
}

// TestPlacementPurgeEveryServer: rows or a schema a tenant left on a server
// it is no longer placed on (as after a move) are residue, and Destroy
// removes them from every server.
func TestPlacementPurgeEveryServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTwoServers(t)
	tn, other := newTenants(2)[0], newTenants(1)[0]

	t.Run("rls", func(t *testing.T) {
		p, _ := openPlacedRLS(t, s, "app", nil, nil)
		admin, _ := openPlacedRLS(t, s, "superuser", nil, nil)
		moved := *tn
		moved.Placement = second
		insertNote(t, p, tn, "old home")
		insertNote(t, p, &moved, "new home")
		insertNote(t, p, other, "other")
		left, err := admin.(isolation.ResidueChecker).Residue(ctx, &moved)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 2 || !strings.Contains(strings.Join(left, ";"), "server default") || !strings.Contains(strings.Join(left, ";"), "server second") {
			t.Fatalf("residue %v, want rows on both servers", left)
		}
		if err := admin.Destroy(ctx, &moved); err != nil {
			t.Fatal(err)
		}
		if left, err := admin.(isolation.ResidueChecker).Residue(ctx, &moved); err != nil || len(left) != 0 {
			t.Fatalf("after Destroy: residue %v, err %v", left, err)
		}
		if serverHolds(t, s.def, "public", tn.ID)+serverHolds(t, s.sec, "public", tn.ID) != 0 {
			t.Fatal("rows left after Destroy")
		}
		assertNotes(t, p, other, "other")
	})

	t.Run("schema", func(t *testing.T) {
		moved := *tn
		moved.Placement = second
		// The tenant's schema exists on both servers.
		openPlacedSchema(t, s, "owner", []*tenancy.Tenant{tn, &moved}, nil)
		admin, _ := openPlacedSchema(t, s, "superuser", nil, nil)
		left, err := admin.(isolation.ResidueChecker).Residue(ctx, &moved)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 2 {
			t.Fatalf("residue %v, want the schema on both servers", left)
		}
		if err := admin.Destroy(ctx, &moved); err != nil {
			t.Fatal(err)
		}
		if left, err := admin.(isolation.ResidueChecker).Residue(ctx, &moved); err != nil || len(left) != 0 {
			t.Fatalf("after Destroy: residue %v, err %v", left, err)
		}
	})
}

// TestDoctorServers: the doctor inspects every server and names the one a
// finding is on; a tenant placed on no configured server is a finding, and
// CheckPlacements refuses it.
func TestDoctorServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTwoServers(t)
	ensureSharedNotes(t, s.def)
	ensureSharedNotes(t, s.sec)
	// An unguarded tenant table on the second server only.
	mustExec(t, testenv.Pool(t, s.sec.owner), "CREATE TABLE leaky (tenant_id text NOT NULL, body text)")
	servers := postgres.Servers{"": testenv.Pool(t, s.def.super), second: testenv.Pool(t, s.sec.super)}
	tenants := newTenants(3)
	tenants[1].Placement = second
	tenants[2].Placement = "mars"
	r, err := postgres.DoctorServers(ctx, servers, postgres.DoctorConfig{AppRole: testenv.AppRole}, tenants)
	if err != nil {
		t.Fatal(err)
	}
	var leaky, placement bool
	for _, f := range r.Findings {
		if f.Code == postgres.FindingRLSDisabled && strings.Contains(f.Object, "leaky") {
			if f.Server != second {
				t.Errorf("finding %v names server %q, want %q", f, f.Server, second)
			}
			leaky = true
		}
		if f.Code == postgres.FindingPlacementUnknown {
			if !strings.Contains(f.Object, tenants[2].Identifier) {
				t.Errorf("placement finding names %q", f.Object)
			}
			placement = true
		}
		if f.Server == postgres.DefaultServer && strings.Contains(f.Object, "leaky") {
			t.Errorf("finding on the default server for a table it lacks: %v", f)
		}
	}
	if !leaky || !placement {
		t.Fatalf("findings %v: want the unguarded table on %s and the unknown placement", r.Findings, second)
	}
	err = postgres.CheckPlacements(tenants, servers)
	if !errors.Is(err, isolation.ErrUnknownPlacement) || !strings.Contains(err.Error(), tenants[2].Identifier) ||
		strings.Contains(err.Error(), tenants[1].Identifier) {
		t.Fatalf("CheckPlacements: %v", err)
	}
	if err := postgres.CheckPlacements(tenants[:2], servers); err != nil {
		t.Fatalf("CheckPlacements of placed tenants: %v", err)
	}
}
