// Package isolationtest is the conformance suite of isolation providers:
// every provider (row-level security, schema and database per tenant,
// hybrid, SQLite files, and any written later) passes the same tests, against
// a real database, as every role it may connect as.
//
// Run it from a provider's tests with a Setup that opens the provider for
// the tenants given, each with an empty notes table (NotesPostgres or
// NotesSQLite) in its storage:
//
//	func TestConformance(t *testing.T) {
//		isolationtest.Run(t, func(t *testing.T, tenants []*tenancy.Tenant, maxConns int) isolationtest.Fixture {
//			// create storage and tables for tenants, open a provider whose
//			// pools hold at most maxConns connections
//			return isolationtest.Fixture{Provider: p, Sessions: ...}
//		})
//	}
package isolationtest

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
)

// NotesPostgres creates the suite's table in the current search path on
// PostgreSQL, under row-level security keyed on tenant_id; append the
// statements that put it under the strategy's policies (postgres.EnableRLS
// and, in a tenant schema, postgres.SealSchema) when running them.
const NotesPostgres = `CREATE TABLE notes (
	id text NOT NULL,
	tenant_id text NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), ''),
	title text NOT NULL,
	PRIMARY KEY (tenant_id, id))`

// NotesSQLite creates the suite's table in a tenant's SQLite file.
const NotesSQLite = `CREATE TABLE notes (
	id TEXT PRIMARY KEY,
	tenant_id TEXT NOT NULL,
	title TEXT NOT NULL)`

// Fixture is a provider under test.
type Fixture struct {
	// Provider serves the tenants Setup was given.
	Provider isolation.Provider
	// Admin, when not nil, is the same strategy on an administrator's
	// connection (the lifecycle's), for Destroy and Residue, which may need
	// rights the application role lacks (dropping a schema or database).
	Admin isolation.Provider
	// Sessions, where the provider shares connections between tenants,
	// reports what each connection of its pools carries when idle; nil
	// where nothing is shared (a SQLite file per tenant).
	Sessions func(ctx context.Context) ([]Session, error)
}

// Session is what one idle pooled connection carries.
type Session struct {
	// TenantSetting is the value of the tenant setting ("" when unset).
	TenantSetting string
	// CurrentUser and SessionUser must be equal: no role is left switched.
	CurrentUser, SessionUser string
	// SearchPathChanged reports a search path other than the connection's
	// default.
	SearchPathChanged bool
	// TempObjects counts the connection's temporary relations.
	TempObjects int
	// ForeignStatements lists prepared statements that are not the
	// provider's own.
	ForeignStatements []string
	// AdvisoryLocks counts advisory locks the connection holds.
	AdvisoryLocks int
	// Listening lists the channels the connection listens on.
	Listening []string
}

func (s Session) problems() []string {
	var out []string
	if s.TenantSetting != "" {
		out = append(out, fmt.Sprintf("tenant setting %q", s.TenantSetting))
	}
	if s.CurrentUser != s.SessionUser {
		out = append(out, fmt.Sprintf("role %q (session user %q)", s.CurrentUser, s.SessionUser))
	}
	if s.SearchPathChanged {
		out = append(out, "a changed search path")
	}
	if s.TempObjects > 0 {
		out = append(out, fmt.Sprintf("%d temporary objects", s.TempObjects))
	}
	if len(s.ForeignStatements) > 0 {
		out = append(out, fmt.Sprintf("prepared statements %v", s.ForeignStatements))
	}
	if s.AdvisoryLocks > 0 {
		out = append(out, fmt.Sprintf("%d advisory locks", s.AdvisoryLocks))
	}
	if len(s.Listening) > 0 {
		out = append(out, fmt.Sprintf("LISTEN on %v", s.Listening))
	}
	return out
}

// Setup opens the provider under test for tenants: each tenant's storage
// exists and holds an empty notes table, and every pool the provider shares
// between tenants holds at most maxConns connections. Register cleanup with
// t.Cleanup.
type Setup func(t *testing.T, tenants []*tenancy.Tenant, maxConns int) Fixture

// Run runs the suite. Subtests run in parallel, each on tenants of its own.
func Run(t *testing.T, setup Setup) {
	t.Helper()
	for _, c := range []struct {
		name string
		fn   func(*testing.T, Setup)
	}{
		{"CrossTenant", testCrossTenant},
		{"FailClosed", testFailClosed},
		{"Transactions", testTransactions},
		{"HeldTransaction", testHeldTransaction},
		{"LeakUnderLoad", testLeakUnderLoad},
		{"DestroyAndResidue", testDestroy},
		{"SessionState", testSessionState},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, setup)
		})
	}
}

// Tenants returns n active tenants with random identifiers, so that
// cluster-wide names (databases) never collide between tests.
func Tenants(n int) []*tenancy.Tenant {
	base := "t" + randomHex(5)
	out := make([]*tenancy.Tenant, n)
	for i := range out {
		ident := fmt.Sprintf("%s-%d", base, i)
		out[i] = &tenancy.Tenant{ID: "id-" + ident, Identifier: ident, Name: ident, Status: tenancy.StatusActive}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

// sqlOf writes the suite's statements in p's dialect.
type sqlOf struct{ d isolation.Dialect }

// ph returns the n-th placeholder.
func (s sqlOf) ph(n int) string {
	if s.d == isolation.SQLite {
		return "?"
	}
	return fmt.Sprintf("$%d", n)
}

func (s sqlOf) insert() string {
	return "INSERT INTO notes (id, tenant_id, title) VALUES (" + s.ph(1) + ", " + s.ph(2) + ", " + s.ph(3) + ")"
}

func (s sqlOf) byID() string { return "SELECT tenant_id, title FROM notes WHERE id = " + s.ph(1) }

// insertNote inserts a note of q's tenant and returns its ID.
func insertNote(t *testing.T, q isolation.Scoped, title string) string {
	t.Helper()
	id := randomHex(8)
	if _, err := q.Exec(context.Background(), sqlOf{q.Provider.Dialect()}.insert(), id, q.Tenant.ID, title); err != nil {
		t.Fatalf("insert note for %s: %v", q.Tenant.Identifier, err)
	}
	return id
}

// notes returns the titles q's tenant sees, failing on a row of another
// tenant.
func notes(t *testing.T, q isolation.Scoped) []string {
	t.Helper()
	tn := q.Tenant
	rows, err := q.Query(context.Background(), "SELECT tenant_id, title FROM notes ORDER BY title")
	if err != nil {
		t.Fatalf("list notes of %s: %v", tn.Identifier, err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var tid, title string
		if err := rows.Scan(&tid, &title); err != nil {
			t.Fatal(err)
		}
		if tid != tn.ID {
			t.Fatalf("%s read a row of tenant %s (%q)", tn.Identifier, tid, title)
		}
		got = append(got, title)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func assertNotes(t *testing.T, q isolation.Scoped, want ...string) {
	t.Helper()
	if got := notes(t, q); !slices.Equal(got, want) {
		t.Fatalf("%s sees %v, want %v", q.Tenant.Identifier, got, want)
	}
}

// assertClean checks every idle connection of the fixture's pools.
func assertClean(t *testing.T, f Fixture) {
	t.Helper()
	if f.Sessions == nil {
		return
	}
	sessions, err := f.Sessions(context.Background())
	if err != nil {
		t.Fatalf("inspect connections: %v", err)
	}
	if len(sessions) == 0 {
		t.Fatal("Sessions reported no connection to inspect")
	}
	for i, s := range sessions {
		if p := s.problems(); len(p) > 0 {
			t.Errorf("connection %d keeps %s after use", i, strings.Join(p, ", "))
		}
	}
}

func testCrossTenant(t *testing.T, setup Setup) {
	ctx := context.Background()
	tenants := Tenants(2)
	f := setup(t, tenants, 2)
	p := f.Provider
	a, b := isolation.For(p, tenants[0]), isolation.For(p, tenants[1])
	s := sqlOf{p.Dialect()}
	idA := insertNote(t, a, "a-secret")

	var tid, title string
	if err := b.QueryRow(ctx, s.byID(), idA).Scan(&tid, &title); !errors.Is(err, isolation.ErrNoRows) {
		t.Fatalf("B read A's note by ID: %q %q, err %v", tid, title, err)
	}
	if n, err := b.Exec(ctx, "UPDATE notes SET title = 'pwned' WHERE id = "+s.ph(1), idA); err != nil || n != 0 {
		t.Fatalf("B updated A's note: %d rows, err %v", n, err)
	}
	if n, err := b.Exec(ctx, "DELETE FROM notes WHERE id = "+s.ph(1), idA); err != nil || n != 0 {
		t.Fatalf("B deleted A's note: %d rows, err %v", n, err)
	}
	// B claims A's tenant ID: refused, or kept where A never sees it.
	_, _ = b.Exec(ctx, s.insert(), randomHex(8), tenants[0].ID, "forged")
	idB := insertNote(t, b, "b-own")
	_, _ = b.Exec(ctx, "UPDATE notes SET tenant_id = "+s.ph(1)+" WHERE id = "+s.ph(2), tenants[0].ID, idB)
	assertNotes(t, a, "a-secret")

	err := b.Tx(ctx, func(tx isolation.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM notes WHERE id = "+s.ph(1)+" OR title = 'a-secret'", idA).Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("the second tenant's transaction sees %d of the first's rows", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	assertClean(t, f)
}

func testFailClosed(t *testing.T, setup Setup) {
	ctx := context.Background()
	f := setup(t, Tenants(1), 2)
	p := f.Provider
	if _, err := p.Exec(ctx, nil, "SELECT 1"); !errors.Is(err, tenancy.ErrNoTenant) {
		t.Errorf("Exec without a tenant: %v", err)
	}
	if _, err := p.Query(ctx, nil, "SELECT 1"); !errors.Is(err, tenancy.ErrNoTenant) {
		t.Errorf("Query without a tenant: %v", err)
	}
	if err := p.QueryRow(ctx, nil, "SELECT 1").Scan(new(int)); !errors.Is(err, tenancy.ErrNoTenant) {
		t.Errorf("QueryRow without a tenant: %v", err)
	}
	if err := p.Tx(ctx, nil, func(isolation.Tx) error { return nil }); !errors.Is(err, tenancy.ErrNoTenant) {
		t.Errorf("Tx without a tenant: %v", err)
	}
	if _, err := isolation.FromContext(ctx, p); !errors.Is(err, tenancy.ErrNoTenant) {
		t.Errorf("FromContext without a tenant: %v", err)
	}
	for _, bad := range []*tenancy.Tenant{
		{ID: "x1", Identifier: `a"; DROP SCHEMA public; --`},
		{ID: "x1", Identifier: "../../etc"},
		{ID: "x1", Identifier: "acme\n"},
		{ID: "x'; --", Identifier: "acme"},
		{ID: "", Identifier: "acme"},
	} {
		if _, err := p.Exec(ctx, bad, "SELECT 1"); !errors.Is(err, tenancy.ErrInvalidIdentifier) && !errors.Is(err, tenancy.ErrInvalidID) {
			t.Errorf("tenant %q/%q: want a validation error, got %v", bad.ID, bad.Identifier, err)
		}
	}
	assertClean(t, f)
}

func testTransactions(t *testing.T, setup Setup) {
	ctx := context.Background()
	tenants := Tenants(1)
	tn := tenants[0]
	f := setup(t, tenants, 2)
	q := isolation.For(f.Provider, tn)
	s := sqlOf{f.Provider.Dialect()}
	if err := q.Tx(ctx, func(tx isolation.Tx) error {
		_, err := tx.Exec(ctx, s.insert(), randomHex(8), tn.ID, "committed")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := q.Tx(ctx, func(tx isolation.Tx) error {
		if _, err := tx.Exec(ctx, s.insert(), randomHex(8), tn.ID, "rolled-back"); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("want the callback's error, got %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("a panic in the callback was swallowed")
			}
		}()
		_ = q.Tx(ctx, func(tx isolation.Tx) error {
			if _, err := tx.Exec(ctx, s.insert(), randomHex(8), tn.ID, "panicked"); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	assertNotes(t, q, "committed")
	assertClean(t, f)
}

// testHeldTransaction keeps a transaction past its callback, as a goroutine
// or a closure would, and uses it while another tenant's transaction holds
// the only connection: every call must fail and change nothing.
func testHeldTransaction(t *testing.T, setup Setup) {
	ctx := context.Background()
	tenants := Tenants(2)
	a, b := tenants[0], tenants[1]
	f := setup(t, tenants, 1)
	p := f.Provider
	s := sqlOf{p.Dialect()}
	insertNote(t, isolation.For(p, a), "a-own")
	insertNote(t, isolation.For(p, b), "b-own")
	var held isolation.Tx
	if err := p.Tx(ctx, a, func(tx isolation.Tx) error {
		held = tx
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	use := func(when string) {
		t.Helper()
		if _, err := held.Exec(ctx, s.insert(), randomHex(8), a.ID, "held-"+when); !errors.Is(err, isolation.ErrTxClosed) {
			t.Errorf("%s: Exec on an ended transaction: want ErrTxClosed, got %v", when, err)
		}
		rows, err := held.Query(ctx, "SELECT tenant_id, title FROM notes")
		if !errors.Is(err, isolation.ErrTxClosed) {
			t.Errorf("%s: Query on an ended transaction: want ErrTxClosed, got %v", when, err)
		}
		if rows != nil && err == nil {
			rows.Close()
		}
		var tid, title string
		if err := held.QueryRow(ctx, "SELECT tenant_id, title FROM notes").Scan(&tid, &title); !errors.Is(err, isolation.ErrTxClosed) {
			t.Errorf("%s: QueryRow on an ended transaction: want ErrTxClosed, got %v (read %q %q)", when, err, tid, title)
		}
	}
	use("after")
	// B's transaction now holds the only connection.
	done := make(chan struct{})
	if err := p.Tx(ctx, b, func(tx isolation.Tx) error {
		go func() {
			defer close(done)
			use("during another tenant's transaction")
		}()
		<-done
		_, err := tx.Exec(ctx, s.insert(), randomHex(8), b.ID, "b-tx")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	assertNotes(t, isolation.For(p, a), "a-own")
	assertNotes(t, isolation.For(p, b), "b-own", "b-tx")
	assertClean(t, f)
}

// testLeakUnderLoad runs random interleaved reads and writes for 50
// tenants, 8 goroutines each, over two connections: no read may return a
// foreign row, every row must end where it belongs, and the connections
// must carry nothing afterwards.
func testLeakUnderLoad(t *testing.T, setup Setup) {
	const tenantsN, workers, ops = 50, 8, 12
	ctx := context.Background()
	tenants := Tenants(tenantsN)
	f := setup(t, tenants, 2)
	p := f.Provider
	inserted := make([]atomic.Int64, tenantsN)
	var wg sync.WaitGroup
	errs := make(chan error, tenantsN*workers)
	for i, tn := range tenants {
		for w := range workers {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(i), uint64(w)))
				var mine []string
				for op := range ops {
					if err := leakOp(ctx, p, tn, r, &mine, fmt.Sprintf("%s:%d:%d", tn.ID, w, op)); err != nil {
						errs <- fmt.Errorf("tenant %s: %w", tn.Identifier, err)
						return
					}
				}
				inserted[i].Add(int64(len(mine)))
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := sqlOf{p.Dialect()}
	for i, tn := range tenants {
		var n, foreign int64
		err := p.QueryRow(ctx, tn, "SELECT count(*), count(CASE WHEN tenant_id <> "+s.ph(1)+" THEN 1 END) FROM notes", tn.ID).Scan(&n, &foreign)
		if err != nil {
			t.Fatal(err)
		}
		if n != inserted[i].Load() || foreign != 0 {
			t.Errorf("tenant %s holds %d rows (%d foreign), want %d", tn.Identifier, n, foreign, inserted[i].Load())
		}
	}
	assertClean(t, f)
}

func leakOp(ctx context.Context, p isolation.Provider, tn *tenancy.Tenant, r *rand.Rand, mine *[]string, title string) error {
	s := sqlOf{p.Dialect()}
	check := func(tid, got string) error {
		if tid != tn.ID || !strings.HasPrefix(got, tn.ID+":") {
			return fmt.Errorf("read foreign row (%s, %s)", tid, got)
		}
		return nil
	}
	switch op := r.IntN(5); {
	case op == 0 || len(*mine) == 0:
		id := randomHex(8)
		if _, err := p.Exec(ctx, tn, s.insert(), id, tn.ID, title); err != nil {
			return err
		}
		*mine = append(*mine, id)
		return nil
	case op == 1:
		rows, err := p.Query(ctx, tn, "SELECT tenant_id, title FROM notes ORDER BY title DESC LIMIT 20")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var tid, got string
			if err := rows.Scan(&tid, &got); err != nil {
				return err
			}
			if err := check(tid, got); err != nil {
				return err
			}
		}
		return rows.Err()
	case op == 2:
		var tid, got string
		if err := p.QueryRow(ctx, tn, s.byID(), (*mine)[r.IntN(len(*mine))]).Scan(&tid, &got); err != nil {
			return err
		}
		return check(tid, got)
	case op == 3:
		n, err := p.Exec(ctx, tn, "UPDATE notes SET title = "+s.ph(1)+" WHERE id = "+s.ph(2), title+"-updated", (*mine)[r.IntN(len(*mine))])
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("update of own note affected %d rows", n)
		}
		return nil
	default:
		return p.Tx(ctx, tn, func(tx isolation.Tx) error {
			id := randomHex(8)
			if _, err := tx.Exec(ctx, s.insert(), id, tn.ID, title); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM notes WHERE tenant_id <> "+s.ph(1), tn.ID).Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				return fmt.Errorf("transaction saw %d foreign rows", n)
			}
			*mine = append(*mine, id)
			return nil
		})
	}
}

func testDestroy(t *testing.T, setup Setup) {
	ctx := context.Background()
	tenants := Tenants(2)
	a, b := tenants[0], tenants[1]
	f := setup(t, tenants, 2)
	p := f.Provider
	insertNote(t, isolation.For(p, a), "a1")
	insertNote(t, isolation.For(p, b), "b1")
	admin := f.Admin
	if admin == nil {
		admin = p
	}
	rc, hasResidue := admin.(isolation.ResidueChecker)
	if hasResidue {
		left, err := rc.Residue(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			t.Fatal("Residue reports nothing for a tenant with data")
		}
	}
	if err := admin.Destroy(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := admin.Destroy(ctx, a); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	if hasResidue {
		left, err := rc.Residue(ctx, a)
		if err != nil || len(left) != 0 {
			t.Fatalf("after Destroy, residue %v, err %v", left, err)
		}
	}
	var n int
	if err := p.QueryRow(ctx, a, "SELECT count(*) FROM notes").Scan(&n); err == nil && n != 0 {
		t.Fatalf("destroyed tenant still has %d rows", n)
	}
	assertNotes(t, isolation.For(p, b), "b1")
}

// randomName is the form of the statement names the PostgreSQL provider
// uses: a prefix drawn at random per connection, then a number.
var randomName = regexp.MustCompile(`^tenancy_[0-9a-f]{16}_[0-9]+$`)

// testSessionState: what one tenant's statements leave on a connection
// (temporary tables, session-level settings and roles, dropped statements)
// never changes what the next tenant on that connection reads or writes.
func testSessionState(t *testing.T, setup Setup) {
	ctx := context.Background()
	tenants := Tenants(2)
	a, b := tenants[0], tenants[1]
	f := setup(t, tenants, 1)
	p := f.Provider
	if f.Sessions == nil {
		t.Log("the provider shares no connection between tenants")
		return
	}
	qa, qb := isolation.For(p, a), isolation.For(p, b)
	insertNote(t, qa, "a-secret")
	insertNote(t, qb, "b-own")

	attempts := []struct {
		name string
		run  func() error
	}{
		{"temporary table", func() error {
			_, err := qa.Exec(ctx, "CREATE TEMP TABLE notes AS SELECT * FROM notes")
			return err
		}},
		{"temporary table in a transaction", func() error {
			return qa.Tx(ctx, func(tx isolation.Tx) error {
				_, err := tx.Exec(ctx, "CREATE TEMPORARY TABLE notes (id text, tenant_id text, title text)")
				return err
			})
		}},
		{"session-level tenant", func() error {
			_, err := qa.Exec(ctx, "SELECT set_config('app.tenant_id', $1, false)", a.ID)
			return err
		}},
		{"session-level role and search path", func() error {
			_, err := qa.Exec(ctx, "SELECT set_config('search_path', 'pg_temp, public', false), set_config('role', current_user, false)")
			return err
		}},
		{"dropped statements", func() error {
			_, err := qa.Exec(ctx, "DEALLOCATE ALL")
			return err
		}},
		{"a statement prepared under a name like the library's", func() error {
			_, err := qa.Exec(ctx, "PREPARE tenancy_1 AS SELECT pg_catalog.set_config('app.tenant_id', '"+a.ID+"', true)")
			return err
		}},
	}
	want := []string{"b-own"}
	for _, at := range attempts {
		_ = at.run() // refused or not, what follows must hold
		assertNotes(t, qb, want...)
		if _, err := qb.Exec(ctx, "INSERT INTO notes (id, title) VALUES ($1, $2)", randomHex(8), "b-"+at.name); err != nil {
			t.Fatalf("after %s: B's insert: %v", at.name, err)
		}
		var tid string
		if err := qb.QueryRow(ctx, "SELECT tenant_id FROM notes WHERE title = $1", "b-"+at.name).Scan(&tid); err != nil || tid != b.ID {
			t.Fatalf("after %s: B's row was written for tenant %q (err %v)", at.name, tid, err)
		}
		want = append(want, "b-"+at.name)
		slices.Sort(want)
	}
	assertNotes(t, qa, "a-secret")
	// A statement that sets the tenant, where one is prepared, has a name
	// drawn at random for its connection: no application statement can
	// name it by mistake (re-prepare it, say, to set another tenant).
	// tenancy_1 is the application's own, prepared above.
	var list string
	if err := qb.QueryRow(ctx, "SELECT coalesce(string_agg(name, ' '), '') FROM pg_prepared_statements WHERE statement LIKE '%set_config%' AND statement NOT LIKE '%pg_prepared_statements%' AND name <> 'tenancy_1'").Scan(&list); err != nil {
		t.Fatal(err)
	}
	names := strings.Fields(list)
	for _, name := range names {
		if !randomName.MatchString(name) {
			t.Fatalf("the tenant statement is prepared under %q, a name an application could know", name)
		}
	}
}
