package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func mustRLS(t testing.TB, pool *pgxpool.Pool) *postgres.RLS {
	t.Helper()
	p, err := postgres.NewRLS(context.Background(), pool, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSchemaBoundary: in schema isolation, a statement in B's scope that
// names A's schema reads nothing and cannot write, for a table with a
// tenant column and for one without (sealed by its migration), as every
// kind of connecting role.
func TestSchemaBoundary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	admin, err := postgres.NewSchema(ctx, testenv.Pool(t, e.owner), postgres.SchemaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range dsnKinds {
		t.Run(kind, func(t *testing.T) {
			tenants := newTenants(2)
			a, b := tenants[0], tenants[1]
			p := openSchema(t, e, e.dsn(kind), tenants, nil).(*postgres.Schema)
			targets, err := admin.Targets(tenants)
			if err != nil {
				t.Fatal(err)
			}
			for _, tg := range targets {
				db, err := tg.Open(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := db.ExecContext(ctx, "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)"); err != nil {
					t.Fatal(err)
				}
				if err := tg.Finish(ctx, db); err != nil {
					t.Fatal(err)
				}
				_ = db.Close()
			}
			insertNote(t, p, a, "a-secret")
			if _, err := p.Exec(ctx, a, "INSERT INTO customers VALUES (1, 'a-customer')"); err != nil {
				t.Fatal(err)
			}
			schemaA, _ := p.SchemaName(a)
			for _, tbl := range []string{"notes", "customers"} {
				q := pgx.Identifier{schemaA, tbl}.Sanitize()
				var n int
				if err := p.QueryRow(ctx, b, "SELECT count(*) FROM "+q).Scan(&n); err != nil || n != 0 {
					t.Fatalf("B read %d rows of %s (err %v)", n, q, err)
				}
				set := map[string]string{"notes": "title = 'pwned'", "customers": "name = 'pwned'"}[tbl]
				if n, err := p.Exec(ctx, b, "UPDATE "+q+" SET "+set); err != nil || n != 0 {
					t.Fatalf("B updated %d rows of %s (err %v)", n, q, err)
				}
				if n, err := p.Exec(ctx, b, "DELETE FROM "+q); err != nil || n != 0 {
					t.Fatalf("B deleted %d rows of %s (err %v)", n, q, err)
				}
			}
			if _, err := p.Exec(ctx, b, "INSERT INTO "+pgx.Identifier{schemaA, "notes"}.Sanitize()+" (id, title) VALUES ('x', 'b-stray')"); !isPolicyViolation(err) {
				t.Fatalf("B wrote into A's notes: %v", err)
			}
			if _, err := p.Exec(ctx, b, "INSERT INTO "+pgx.Identifier{schemaA, "customers"}.Sanitize()+" VALUES (2, 'b-stray')"); !isPolicyViolation(err) {
				t.Fatalf("B wrote into A's customers: %v", err)
			}
			assertNotes(t, p, a, "a-secret")
			var name string
			if err := p.QueryRow(ctx, a, "SELECT name FROM customers").Scan(&name); err != nil || name != "a-customer" {
				t.Fatalf("A's customer: %q %v", name, err)
			}
		})
	}
}

// TestFailClosed: an unknown schema, a missing table or database, or a
// tenant-less statement on a connection that served a tenant: an error,
// never rows of another tenant or of public.
func TestFailClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)

	t.Run("tenant-less statements", func(t *testing.T) {
		ensureSharedNotes(t, e)
		pool := testenv.Pool(t, e.owner, func(c *pgxpool.Config) { c.MaxConns = 1 })
		tn := newTenants(1)[0]
		insertNote(t, mustRLS(t, pool), tn, "mine")
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
		_, err = tx.Exec(ctx, "INSERT INTO notes (id, title) VALUES ('x', 'orphan')")
		if !isPolicyViolation(err) && pgCode(err) != "23502" {
			t.Fatalf("tenant-less insert: want a refusal, got %v", err)
		}
	})

	t.Run("unknown schema or missing table", func(t *testing.T) {
		ensureSharedNotes(t, e)
		// public.notes holds a row: a schema tenant must never fall back to it.
		insertNote(t, mustRLS(t, testenv.Pool(t, e.app)), newTenants(1)[0], "public-row")
		tenants := newTenants(2)
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
		if _, err := p.Exec(ctx, newTenants(1)[0], "SELECT 1"); pgCode(err) != "3D000" {
			t.Fatalf("want invalid_catalog_name, got %v", err)
		}
	})

	t.Run("unknown placement", func(t *testing.T) {
		p := mustRLS(t, testenv.Pool(t, e.app))
		tn := newTenants(1)[0]
		tn.Placement = "nowhere"
		if _, err := p.Exec(ctx, tn, "SELECT 1"); !errors.Is(err, isolation.ErrUnknownPlacement) {
			t.Fatalf("want ErrUnknownPlacement, got %v", err)
		}
	})
}

// TestForeignKeys: keys written with the DDL helpers carry the tenant, so a
// tenant can neither attach rows to another's nor learn its IDs; a key
// without the tenant makes Destroy refuse before deleting anything, naming
// the key.
func TestForeignKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ensureSharedNotes(t, e)
	owner := testenv.Pool(t, e.owner)
	stmts := []string{
		`CREATE TABLE projects (id text NOT NULL, ` + postgres.TenantIDColumn + `, name text NOT NULL, ` + postgres.PrimaryKey("id") + `)`,
		`CREATE TABLE tasks (id text NOT NULL, ` + postgres.TenantIDColumn + `, project_id text NOT NULL, title text NOT NULL, ` +
			postgres.PrimaryKey("id") + `, ` + postgres.ForeignKey([]string{"project_id"}, "projects", []string{"id"}) + ` ON DELETE CASCADE)`,
	}
	stmts = append(stmts, postgres.EnableRLS("projects")...)
	stmts = append(stmts, postgres.EnableRLS("tasks")...)
	mustExec(t, owner, stmts...)
	if err := postgres.GrantSchema(ctx, owner, "public", postgres.DefaultRole); err != nil {
		t.Fatal(err)
	}
	p := mustRLS(t, testenv.Pool(t, e.app))
	tenants := newTenants(2)
	a, b := tenants[0], tenants[1]
	for _, tn := range tenants {
		if _, err := p.Exec(ctx, tn, "INSERT INTO projects (id, name) VALUES ('p-'||$1::text, 'project')", tn.Identifier); err != nil {
			t.Fatal(err)
		}
	}
	// B points a task at A's project, and at one that exists nowhere: the
	// same refusal, so nothing is learnt.
	_, errA := p.Exec(ctx, b, "INSERT INTO tasks (id, project_id, title) VALUES ('t1', $1, 'stray')", "p-"+a.Identifier)
	_, errNone := p.Exec(ctx, b, "INSERT INTO tasks (id, project_id, title) VALUES ('t2', 'p-nowhere', 'stray')")
	if pgCode(errA) != "23503" || pgCode(errNone) != "23503" {
		t.Fatalf("want foreign key violations alike, got %v and %v", errA, errNone)
	}
	if _, err := p.Exec(ctx, b, "INSERT INTO tasks (id, project_id, title) VALUES ('t3', $1, 'own')", "p-"+b.Identifier); err != nil {
		t.Fatal(err)
	}
	if err := p.Destroy(ctx, a); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := p.QueryRow(ctx, b, "SELECT count(*) FROM tasks").Scan(&n); err != nil || n != 1 {
		t.Fatalf("B's tasks after A's purge: %d (err %v)", n, err)
	}

	// A key without the tenant column: checked without row-level
	// security, it lets B hang a row on A's.
	mustExec(t, owner, append(append([]string{
		`CREATE TABLE loose_parent (id text PRIMARY KEY, ` + postgres.TenantIDColumn + `)`,
		`CREATE TABLE loose_child (id text PRIMARY KEY, ` + postgres.TenantIDColumn + `, parent_id text REFERENCES loose_parent (id) ON DELETE CASCADE)`,
	}, postgres.EnableRLS("loose_parent")...), postgres.EnableRLS("loose_child")...)...)
	if err := postgres.GrantSchema(ctx, owner, "public", postgres.DefaultRole); err != nil {
		t.Fatal(err)
	}
	c := tenants[1]
	d := newTenants(1)[0]
	insertNote(t, p, d, "d-note")
	if _, err := p.Exec(ctx, d, "INSERT INTO loose_parent (id) VALUES ('lp')"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, c, "INSERT INTO loose_child (id, parent_id) VALUES ('lc', 'lp')"); err != nil {
		t.Fatalf("the loose key was expected to accept the row (that is its flaw): %v", err)
	}
	err := p.Destroy(ctx, d)
	if err == nil || !strings.Contains(err.Error(), "loose_child_parent_id_fkey") {
		t.Fatalf("Destroy with a loose key: want a refusal naming it, got %v", err)
	}
	assertNotes(t, p, d, "d-note")
	if err := p.QueryRow(ctx, c, "SELECT count(*) FROM loose_child").Scan(&n); err != nil || n != 1 {
		t.Fatalf("C's child after the refused purge: %d (err %v)", n, err)
	}
}

// TestPurgeAcrossSchemas: Destroy and Residue reach tenant tables in every
// schema, not only those on the search path.
func TestPurgeAcrossSchemas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ensureSharedNotes(t, e)
	owner := testenv.Pool(t, e.owner)
	mustExec(t, owner, "CREATE SCHEMA billing", "SET search_path TO billing")
	conn, err := owner.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, conn, "SET search_path TO billing")
	mustExec(t, conn, append([]string{`CREATE TABLE invoices (id text PRIMARY KEY, ` + postgres.TenantIDColumn + `)`}, postgres.EnableRLS("invoices")...)...)
	if err := postgres.GrantSchema(ctx, conn, "billing", postgres.DefaultRole); err != nil {
		t.Fatal(err)
	}
	mustExec(t, conn, "RESET search_path")
	conn.Release()
	p := mustRLS(t, testenv.Pool(t, e.app))
	tenants := newTenants(2)
	a, b := tenants[0], tenants[1]
	for _, tn := range tenants {
		insertNote(t, p, tn, tn.Identifier)
		if _, err := p.Exec(ctx, tn, "INSERT INTO billing.invoices (id) VALUES ($1)", "i-"+tn.Identifier); err != nil {
			t.Fatal(err)
		}
	}
	left, err := p.Residue(ctx, a)
	if err != nil || !strings.Contains(strings.Join(left, ";"), "billing.invoices") {
		t.Fatalf("residue before purge: %v (err %v)", left, err)
	}
	if err := p.Destroy(ctx, a); err != nil {
		t.Fatal(err)
	}
	if left, err := p.Residue(ctx, a); err != nil || len(left) != 0 {
		t.Fatalf("residue after purge: %v (err %v)", left, err)
	}
	var n int
	if err := testenv.Pool(t, e.super).QueryRow(ctx, "SELECT count(*) FROM billing.invoices WHERE tenant_id = $1", b.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("B's invoices: %d (err %v)", n, err)
	}
}

// TestTemporarySetup: the tenant role may not create temporary tables. A
// user that owns the database takes the privilege from PUBLIC itself; one
// that does not gets the SQL to run.
func TestTemporarySetup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setupRoles(t)
	name := testenv.RandomName("tenancy_test_")
	admin := testenv.Admin(t)
	mustExec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	super := testenv.WithDatabase(testenv.DatabaseURL(), name)
	_, err := postgres.NewRLS(ctx, testenv.Pool(t, testenv.WithUser(super, testenv.AppRole)), postgres.Config{})
	var setup *postgres.SetupError
	if !errors.As(err, &setup) || !strings.Contains(err.Error(), "REVOKE TEMPORARY ON DATABASE "+name+" FROM PUBLIC, tenancy_tenant") {
		t.Fatalf("want a SetupError with the REVOKE, got %v", err)
	}
	report, err := postgres.Doctor(ctx, testenv.Pool(t, super), postgres.DoctorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if !contains(codes(report), "role-temporary tenancy_tenant") {
		t.Fatalf("doctor did not report the TEMPORARY privilege: %v", codes(report))
	}
	if _, err := postgres.NewRLS(ctx, testenv.Pool(t, super), postgres.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.NewRLS(ctx, testenv.Pool(t, testenv.WithUser(super, testenv.AppRole)), postgres.Config{}); err != nil {
		t.Fatalf("after the superuser's revoke: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestDatabasePools: tenant pools stay under the total cap, are reused, and
// are closed when idle.
func TestDatabasePools(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(5)
	openDatabase(t, e, e.app, tenants, nil) // creates the databases and tables
	p, err := postgres.NewDatabase(ctx, testenv.Pool(t, e.app), postgres.DatabaseConfig{
		MaxConnsPerTenant: 1, MaxTotalConns: 2, IdleTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	errs := make(chan error, 50)
	for i := range 50 {
		go func() {
			tn := tenants[i%len(tenants)]
			var n int
			err := p.QueryRow(ctx, tn, "SELECT count(*) FROM notes WHERE tenant_id <> $1", tn.ID).Scan(&n)
			if pools, conns := p.OpenPools(); err == nil && (pools > 2 || conns > 2) {
				err = errors.New("over the cap")
			}
			errs <- err
		}()
	}
	for range 50 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if pools, _ := p.OpenPools(); pools == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("idle tenant pools were not closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRLSDestroyOrder: RLS Destroy deletes children before parents, so
// foreign keys without ON DELETE CASCADE do not stop it.
func TestRLSDestroyOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(2)
	a, b := tenants[0], tenants[1]
	p := openRLS(t, e, e.app, tenants, nil)
	owner := testenv.Pool(t, e.owner)
	mustExec(t, owner, append([]string{`CREATE TABLE comments (
	id bigint GENERATED ALWAYS AS IDENTITY,
	` + postgres.TenantIDColumn + `,
	note_id text NOT NULL,
	body text NOT NULL,
	` + postgres.PrimaryKey("id") + `,
	` + postgres.ForeignKey([]string{"note_id"}, "notes", []string{"id"}) + `)`}, postgres.EnableRLS("comments")...)...)
	if err := postgres.GrantSchema(ctx, owner, "public", postgres.DefaultRole); err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		id, _ := insertNote(t, p, tn, tn.ID)
		if _, err := p.Exec(ctx, tn, "INSERT INTO comments (note_id, body) VALUES ($1, 'c')", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Destroy(ctx, a); err != nil {
		t.Fatal(err)
	}
	var notes, comments int
	if err := testenv.Pool(t, e.super).QueryRow(ctx, "SELECT (SELECT count(*) FROM notes WHERE tenant_id = $1), (SELECT count(*) FROM comments WHERE tenant_id = $1)", a.ID).Scan(&notes, &comments); err != nil {
		t.Fatal(err)
	}
	if notes != 0 || comments != 0 {
		t.Fatalf("after Destroy, A has %d notes and %d comments", notes, comments)
	}
	assertNotes(t, p, b, b.ID)
}

// TestRLSDestroyOwnRowsOnly: another permissive policy (rows every tenant
// may read) must neither make Destroy reach other tenants' rows nor make
// Residue count them.
func TestRLSDestroyOwnRowsOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(2)
	a, b := tenants[0], tenants[1]
	p := openRLS(t, e, e.super, tenants, nil).(*postgres.RLS)
	mustExec(t, testenv.Pool(t, e.owner), "CREATE POLICY shared_read ON notes FOR SELECT USING (title = 'public')")
	insertNote(t, p, a, "a-own")
	insertNote(t, p, b, "public")
	if err := p.Destroy(ctx, a); err != nil {
		t.Fatal(err)
	}
	left, err := p.Residue(ctx, a)
	if err != nil || len(left) != 0 {
		t.Fatalf("residue of A: %v, %v", left, err)
	}
	assertNotes(t, p, b, "public")
}

// TestRoleSetup: a user that may not create or join the tenant role gets one
// error holding the SQL to run; a superuser or BYPASSRLS tenant role is
// refused; a superuser DSN creates a safe role.
func TestRoleSetup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	weak := testenv.RandomName("tenancy_weak_")
	role := testenv.RandomName("tenancy_t_")
	testenv.EnsureRole(t, weak)
	t.Cleanup(func() {
		testenv.AdminExec(t, "DROP ROLE IF EXISTS "+role)
		testenv.AdminExec(t, "DROP ROLE IF EXISTS "+weak)
	})
	weakPool := testenv.Pool(t, testenv.WithUser(e.super, weak))

	_, err := postgres.NewRLS(ctx, weakPool, postgres.Config{Role: role})
	var setup *postgres.SetupError
	if !errors.As(err, &setup) || !strings.Contains(err.Error(), "CREATE ROLE "+role) || !strings.Contains(err.Error(), "GRANT "+role+" TO "+weak) {
		t.Fatalf("missing role: want a SetupError with the SQL, got %v", err)
	}

	testenv.AdminExec(t, "CREATE ROLE "+role+" NOLOGIN")
	_, err = postgres.NewRLS(ctx, weakPool, postgres.Config{Role: role})
	if !errors.As(err, &setup) || !strings.Contains(err.Error(), "GRANT "+role+" TO "+weak) {
		t.Fatalf("no membership: want a SetupError with GRANT, got %v", err)
	}

	testenv.AdminExec(t, "ALTER ROLE "+role+" BYPASSRLS")
	_, err = postgres.NewRLS(ctx, testenv.Pool(t, e.super), postgres.Config{Role: role})
	if !errors.As(err, &setup) || !strings.Contains(err.Error(), "BYPASSRLS") {
		t.Fatalf("BYPASSRLS role: want a SetupError, got %v", err)
	}
	testenv.AdminExec(t, "DROP ROLE "+role)

	// A superuser DSN creates the role itself, safe by construction.
	if _, err := postgres.NewRLS(ctx, testenv.Pool(t, e.super), postgres.Config{Role: role}); err != nil {
		t.Fatal(err)
	}
	var super, bypass, login bool
	if err := testenv.Admin(t).QueryRow(ctx, "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1", role).Scan(&super, &bypass, &login); err != nil {
		t.Fatal(err)
	}
	if super || bypass || login {
		t.Fatalf("created role: super %v bypassrls %v login %v", super, bypass, login)
	}
	if _, err := postgres.NewRLS(ctx, weakPool, postgres.Config{Role: "Bad-Name"}); err == nil {
		t.Fatal("an invalid role name was accepted")
	}
}
