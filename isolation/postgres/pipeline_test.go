package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/netproxy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestThroughPgBouncer runs the conformance suite through PgBouncer in
// transaction pooling mode, where consecutive transactions of one client
// connection land on different server connections: with Pooler set to
// PoolerTransaction only unnamed statements are sent, so no statement of
// another client can answer to a name of this one.
func TestThroughPgBouncer(t *testing.T) {
	t.Parallel()
	bouncer := testenv.PgBouncerURL(t)
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			dsn := viaBouncer(t, bouncer, e.app)
			isolationtest.Run(t, func(t *testing.T, tenants []*tenancy.Tenant, maxConns int) isolationtest.Fixture {
				f := suiteFixture(t, s, e, dsn, tenants, maxConns)
				f.Sessions = nil // the pooler's client connections are not server sessions
				return f
			})
		})
	}
}

// TestPoolerProbe: a provider configured without a pooler that finds its
// connections sharing server sessions logs a warning.
func TestPoolerProbe(t *testing.T) {
	t.Parallel()
	bouncer := testenv.PgBouncerURL(t)
	e := newEnv(t)
	ensureSharedNotes(t, e)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := postgres.NewRLS(context.Background(), testenv.Pool(t, viaBouncer(t, bouncer, e.app)), postgres.Config{Logger: logger}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "PoolerTransaction") {
		t.Fatalf("no warning through PgBouncer; logs: %s", logs.String())
	}
	logs.Reset()
	if _, err := postgres.NewRLS(context.Background(), testenv.Pool(t, e.app), postgres.Config{Logger: logger}); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Fatalf("a warning without a pooler: %s", logs.String())
	}
}

// viaBouncer returns dsn rewritten to go through PgBouncer; pgx's own calls
// (the test's raw ones) use the exec mode, as PgBouncer 1.18 requires.
func viaBouncer(t testing.TB, bouncer, dsn string) string {
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

// TestExecModesHonoured: whatever pgx exec mode a DSN asks for, every
// strategy works and keeps tenants apart: tenant statements go through the
// provider's own pipeline.
func TestExecModesHonoured(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ensureSharedNotes(t, e)
	for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"} {
		for _, s := range strategies {
			t.Run(mode+"/"+s.name, func(t *testing.T) {
				tenants := newTenants(2)
				a, b := tenants[0], tenants[1]
				p := s.open(t, e, testenv.WithParam(e.app, "default_query_exec_mode", mode), tenants, nil)
				id, _ := insertNote(t, p, a, "a-secret")
				var title string
				if err := p.QueryRow(ctx, b, "SELECT title FROM notes WHERE id = $1", id).Scan(&title); !errors.Is(err, isolation.ErrNoRows) {
					t.Fatalf("B read A's note: %q %v", title, err)
				}
				if err := p.Tx(ctx, b, func(tx isolation.Tx) error {
					_, err := tx.Exec(ctx, "INSERT INTO notes (id, title) VALUES ($1, 'b-tx')", "b1")
					return err
				}); err != nil {
					t.Fatal(err)
				}
				assertNotes(t, p, a, "a-secret")
				assertNotes(t, p, b, "b-tx")
			})
		}
	}
}

// TestOneRoundTrip counts client/server exchanges through a loopback proxy:
// a warm one-shot statement costs exactly one round trip, tenant statement
// included, through the provider, the pgx-typed Querier and a batch; a
// transaction costs its statements plus one for COMMIT.
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
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			tenants := newTenants(2)
			p := s.open(t, e, target.String(), tenants, oneConn)
			a := tenants[0]
			for i := range 25 {
				insertNote(t, p, a, "note-"+strings.Repeat("x", i))
			}
			q := postgres.For(p, a)
			calls := map[string]func() error{
				"QueryRow": func() error {
					var n int
					return p.QueryRow(ctx, a, "SELECT count(*) FROM notes WHERE tenant_id = $1", a.ID).Scan(&n)
				},
				"Query20": func() error {
					rows, err := p.Query(ctx, a, "SELECT id, title FROM notes ORDER BY title DESC LIMIT 20")
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
				"Querier.CollectRows": func() error {
					rows, err := q.Query(ctx, "SELECT id, title FROM notes ORDER BY title LIMIT 5")
					if err != nil {
						return err
					}
					got, err := pgx.CollectRows(rows, pgx.RowToStructByName[struct{ ID, Title string }])
					if err == nil && len(got) != 5 {
						err = errors.New("want 5 rows")
					}
					return err
				},
				"Querier.SendBatch": func() error {
					b := &pgx.Batch{}
					b.Queue("SELECT count(*) FROM notes")
					b.Queue("UPDATE notes SET title = title WHERE false")
					b.Queue("SELECT title FROM notes ORDER BY title LIMIT 1")
					return q.SendBatch(ctx, b).Close()
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
			// BEGIN and the tenant share the first round trip.
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

func TestStatementsPerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(2)
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
		if got := strings.Join(columns(a), ","); got != "id,tenant_id,title" {
			t.Fatalf("A's columns: %s", got)
		}
		if got := strings.Join(columns(b), ","); got != "id,tenant_id,title,extra" {
			t.Fatalf("B's columns: %s", got)
		}
	}
	// Migrate A under its prepared statement: the next call still works and
	// sees the new shape.
	mustExec(t, owner, "ALTER TABLE "+pgx.Identifier{schemaA, "notes"}.Sanitize()+" ADD COLUMN extra2 int NOT NULL DEFAULT 7")
	if got := strings.Join(columns(a), ","); got != "id,tenant_id,title,extra2" {
		t.Fatalf("A's columns after migration: %s", got)
	}
}
func TestStatementCacheBound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(6)
	owner, err := postgres.NewSchema(ctx, testenv.Pool(t, e.owner), postgres.SchemaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		if err := owner.Initialize(ctx, tn); err != nil {
			t.Fatal(err)
		}
		name, _ := owner.SchemaName(tn)
		createNotes(t, e.owner, name, tn)
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
func TestStatementCacheRepairs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(1)
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

// TestPoolerTransactionUnnamed: with a transaction pooler configured, no
// named statement is ever prepared: a pooler would hand it to another
// client.
func TestPoolerTransactionUnnamed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ensureSharedNotes(t, e)
	pool := testenv.Pool(t, e.app, func(c *pgxpool.Config) { c.MaxConns = 1 })
	p, err := postgres.NewRLS(ctx, pool, postgres.Config{Pooler: postgres.PoolerTransaction})
	if err != nil {
		t.Fatal(err)
	}
	tn := newTenants(1)[0]
	for i := range 3 {
		insertNote(t, p, tn, fmt.Sprint("n", i))
	}
	assertNotes(t, p, tn, "n0", "n1", "n2")
	b := &pgx.Batch{}
	b.Queue("SELECT count(*) FROM notes")
	b.Queue("SELECT title FROM notes WHERE title = $1", "n1")
	if err := postgres.For(p, tn).SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Tx(ctx, tn, func(tx isolation.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE notes SET title = title WHERE title = $1", "n2")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var named int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_statements", pgx.QueryExecModeSimpleProtocol).Scan(&named); err != nil || named != 0 {
		t.Fatalf("%d named statements on the connection (err %v)", named, err)
	}
}
