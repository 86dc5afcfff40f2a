package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/netproxy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestLeakThroughPgBouncer repeats the leak test through PgBouncer in
// transaction pooling mode, where consecutive transactions of one client
// connection land on different server connections and session state would
// leak between clients. pgx runs in exec mode, as PgBouncer 1.18 requires.
func TestLeakThroughPgBouncer(t *testing.T) {
	t.Parallel()
	bouncer := testenv.PgBouncerURL(t)
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			dsn := viaBouncer(t, bouncer, e.app)
			runLeakTest(t, s, e, dsn, nil)
		})
	}
}

// viaBouncer returns dsn rewritten to go through PgBouncer, in exec mode.
func viaBouncer(t *testing.T, bouncer, dsn string) string {
	t.Helper()
	b, err := url.Parse(bouncer)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = b.Host
	return testenv.WithParam(u.String(), "default_query_exec_mode", "exec")
}

// TestExecModesHonoured: every pgx exec mode a DSN may ask for keeps
// isolation and works for every strategy, except the describe modes in
// schema isolation, which are refused: pgx would describe a statement before
// the tenant's search path is set (against public's table of the same name,
// which exists here).
func TestExecModesHonoured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ensureSharedNotes(t, e)
	for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"} {
		dsn := testenv.WithParam(e.app, "default_query_exec_mode", mode)
		if mode == "cache_describe" || mode == "describe_exec" {
			_, err := postgres.NewSchema(context.Background(), testenv.Pool(t, dsn), postgres.SchemaConfig{})
			if err == nil || !strings.Contains(err.Error(), "default_query_exec_mode") {
				t.Errorf("%s: schema isolation accepted the mode: %v", mode, err)
			}
		}
		for _, s := range strategies {
			if (s.name == "schema" || s.name == "hybrid") && (mode == "cache_describe" || mode == "describe_exec") {
				continue
			}
			t.Run(mode+"/"+s.name, func(t *testing.T) {
				tenants := newTenants(2, "")
				p := s.open(t, e, testenv.WithParam(e.app, "default_query_exec_mode", mode), tenants, nil)
				checkCrossTenant(t, p, tenants[0], tenants[1])
			})
		}
	}
}

// TestOneRoundTrip counts client/server exchanges through a loopback proxy:
// a warm one-shot statement costs exactly one round trip, tenant setting
// included, in RLS and schema isolation alike.
func TestOneRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target, err := url.Parse(e.app)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := netproxy.Start(target.Host, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	target.Host = proxy.Addr()
	oneConn := func(c *pgxpool.Config) {
		c.MaxConns = 1
		c.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	}
	ctx := context.Background()
	for _, s := range []strategy{{"rls", openRLS}, {"schema", openSchema}} {
		t.Run(s.name, func(t *testing.T) {
			tenants := newTenants(2, "")
			p := s.open(t, e, target.String(), tenants, oneConn)
			a := tenants[0]
			for i := range 25 {
				insertNote(t, p, a, "note-"+strings.Repeat("x", i))
			}
			// Warm every statement so the count is about steady state.
			calls := map[string]func() error{
				"QueryRow": func() error {
					var n int
					return p.QueryRow(ctx, a, "SELECT count(*) FROM notes WHERE tenant_id = $1", a.ID).Scan(&n)
				},
				"Query20": func() error {
					rows, err := p.Query(ctx, a, "SELECT id, title FROM notes ORDER BY created_at DESC LIMIT 20")
					if err != nil {
						return err
					}
					n := 0
					for rows.Next() {
						n++
					}
					if n != 20 {
						return errors.New("want 20 rows")
					}
					return rows.Err()
				},
				"Exec": func() error {
					_, err := p.Exec(ctx, a, "UPDATE notes SET title = title WHERE tenant_id = $1", a.ID)
					return err
				},
			}
			for name, call := range calls {
				if err := call(); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				before := proxy.Exchanges()
				if err := call(); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got := proxy.Exchanges() - before; got != 1 {
					t.Errorf("%s took %d round trips, want 1", name, got)
				}
			}
			// A transaction costs its statements plus one for COMMIT: BEGIN
			// and the tenant share the first round trip.
			before := proxy.Exchanges()
			err := p.Tx(ctx, a, func(tx isolation.Tx) error {
				var n int
				return tx.QueryRow(ctx, "SELECT count(*) FROM notes WHERE tenant_id = $1", a.ID).Scan(&n)
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := proxy.Exchanges() - before; got != 3 {
				t.Errorf("Tx with one statement took %d round trips, want 3", got)
			}
		})
	}
}

// TestStatementsPerSchema: two tenant schemas at different versions share a
// connection; each statement is parsed in its own schema, so each tenant gets
// its own row shape, and a schema changed under a prepared statement is
// prepared again transparently.
func TestStatementsPerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(2, "")
	a, b := tenants[0], tenants[1]
	p := openSchema(t, e, e.app, tenants, func(c *pgxpool.Config) { c.MaxConns = 1 }).(*postgres.Schema)
	schemaA, _ := p.SchemaName(a)
	schemaB, _ := p.SchemaName(b)
	owner := testenv.Pool(t, e.owner)
	mustExec(t, owner, "ALTER TABLE "+pgx.Identifier{schemaB, "notes"}.Sanitize()+" ADD COLUMN extra text NOT NULL DEFAULT 'b-extra'")
	insertNote(t, p, a, "a1")
	insertNote(t, p, b, "b1")

	columns := func(tn *tenancy.Tenant) []string {
		t.Helper()
		rows, err := p.Query(ctx, tn, "SELECT * FROM notes")
		if err != nil {
			t.Fatalf("%s: %v", tn.ID, err)
		}
		defer rows.Close()
		var names []string
		for _, f := range rows.(interface {
			FieldDescriptions() []pgconn.FieldDescription
		}).FieldDescriptions() {
			names = append(names, f.Name)
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return names
	}
	for range 3 {
		if got := strings.Join(columns(a), ","); got != "id,tenant_id,title,created_at" {
			t.Fatalf("A's columns: %s", got)
		}
		if got := strings.Join(columns(b), ","); got != "id,tenant_id,title,created_at,extra" {
			t.Fatalf("B's columns: %s", got)
		}
	}
	// Migrate A under its prepared statement: the next call still works and
	// sees the new shape.
	mustExec(t, owner, "ALTER TABLE "+pgx.Identifier{schemaA, "notes"}.Sanitize()+" ADD COLUMN extra2 int NOT NULL DEFAULT 7")
	if got := strings.Join(columns(a), ","); got != "id,tenant_id,title,created_at,extra2" {
		t.Fatalf("A's columns after migration: %s", got)
	}
}

// TestStatementCacheBound: with more schemas than the per-connection bound,
// the oldest statements are deallocated on the server, and results stay
// correct.
func TestStatementCacheBound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(6, "")
	owner, err := postgres.NewSchema(ctx, testenv.Pool(t, e.owner), postgres.SchemaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		if err := owner.Initialize(ctx, tn); err != nil {
			t.Fatal(err)
		}
		name, _ := owner.SchemaName(tn)
		createNotes(t, e.owner, name)
	}
	pool := testenv.Pool(t, e.app, func(c *pgxpool.Config) { c.MaxConns = 1 })
	p, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{Config: postgres.Config{StatementCacheCapacity: 3}})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		for _, tn := range tenants {
			title := tn.ID + "-" + string(rune('a'+round))
			insertNote(t, p, tn, title)
		}
	}
	for _, tn := range tenants {
		assertNotes(t, p, tn, tn.ID+"-a", tn.ID+"-b", tn.ID+"-c")
	}
	var prepared int
	if err := p.QueryRow(ctx, tenants[0], "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'tenancy\\_%'").Scan(&prepared); err != nil {
		t.Fatal(err)
	}
	// The bound, plus the tenant statement, plus the one being prepared now
	// before the evicted one is deallocated in the next pipeline.
	if prepared > 3+2 {
		t.Fatalf("%d statements prepared on the connection, bound is 3", prepared)
	}
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

// TestDestroy: each strategy removes exactly one tenant's data.
func TestDestroy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tenants := newTenants(2, "")
			a, b := tenants[0], tenants[1]
			p := s.open(t, e, e.super, tenants, nil)
			insertNote(t, p, a, "a1")
			insertNote(t, p, b, "b1")
			if err := p.Destroy(ctx, a); err != nil {
				t.Fatal(err)
			}
			if err := p.Destroy(ctx, a); err != nil {
				t.Fatalf("second Destroy: %v", err)
			}
			assertNotes(t, p, b, "b1")
			var n int
			err := p.QueryRow(ctx, a, "SELECT count(*) FROM notes").Scan(&n)
			if err == nil && n != 0 {
				t.Fatalf("destroyed tenant still has %d rows", n)
			}
		})
	}
}

// TestRLSDestroyOrder: RLS Destroy deletes children before parents, so
// foreign keys without ON DELETE CASCADE do not stop it.
func TestRLSDestroyOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(2, "")
	a, b := tenants[0], tenants[1]
	p := openRLS(t, e, e.app, tenants, nil)
	owner := testenv.Pool(t, e.owner)
	mustExec(t, owner, append([]string{`CREATE TABLE comments (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	` + postgres.TenantIDColumn + `,
	note_id uuid NOT NULL REFERENCES notes (id),
	body text NOT NULL)`}, postgres.EnableRLS("comments")...)...)
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

// TestDatabasePools: tenant pools stay under the total cap, are reused, and
// are closed when idle.
func TestDatabasePools(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(5, "")
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

// TestStatementCacheRepairs: a caller's statement that fails with "no such
// prepared statement" makes the executor forget and close its statements,
// and the connection keeps working; a cold statement encodes its arguments
// exactly as a warm one does.
func TestStatementCacheRepairs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(1, "")
	tn := tenants[0]
	for _, s := range []strategy{{"rls", openRLS}, {"schema", openSchema}} {
		t.Run(s.name, func(t *testing.T) {
			p := s.open(t, e, e.app, tenants, func(c *pgxpool.Config) { c.MaxConns = 1 })
			insertNote(t, p, tn, "before")
			if _, err := p.Exec(ctx, tn, "DEALLOCATE no_such_statement"); pgCode(err) != "26000" {
				t.Fatalf("want invalid_sql_statement_name, got %v", err)
			}
			for range 3 {
				insertNote(t, p, tn, "after")
			}

			// Cold and warm calls encode []byte and a map alike.
			for i := range 2 {
				var text string
				var obj map[string]any
				err := p.QueryRow(ctx, tn, "SELECT $1::text, $2::jsonb", []byte("hi"), map[string]any{"n": 1}).Scan(&text, &obj)
				if err != nil || text != "hi" || obj["n"] != 1.0 {
					t.Fatalf("call %d: %q %v %v", i, text, obj, err)
				}
			}
		})
	}
}

// TestRLSDestroyOwnRowsOnly: another permissive policy (rows every tenant
// may read) must neither make Destroy reach other tenants' rows nor make
// Residue count them.
func TestRLSDestroyOwnRowsOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(2, "")
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
