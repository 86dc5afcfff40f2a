package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/isolation/postgres/internal/sqlcnotes"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestSQLC runs sqlc's pgx/v5 output on the tenant-scoped Querier and
// pgx.Tx of every strategy, as the application role and a superuser: each
// kind of query (:one, :many, :execrows, :exec, :copyfrom, :batchexec,
// :batchone) works and stays in its tenant.
func TestSQLC(t *testing.T) {
	t.Parallel()
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for _, kind := range []string{"app", "superuser"} {
				t.Run(kind, func(t *testing.T) {
					tenants := newTenants(2)
					p := s.open(t, e, e.dsn(kind), tenants, nil)
					checkSQLC(t, p, tenants[0], tenants[1])
				})
			}
		})
	}
}

func checkSQLC(t *testing.T, p isolation.Provider, a, b *tenancy.Tenant) {
	t.Helper()
	ctx := context.Background()
	qa, qb := sqlcnotes.New(postgres.For(p, a)), sqlcnotes.New(postgres.For(p, b))
	n, err := qa.CreateNote(ctx, sqlcnotes.CreateNoteParams{ID: "a1", Title: "a-one"})
	if err != nil || n.TenantID != a.ID {
		t.Fatalf("CreateNote: %+v %v", n, err)
	}
	if _, err := qb.GetNote(ctx, "a1"); !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("B got A's note: %v", err)
	}
	if rows, err := qb.RenameNote(ctx, sqlcnotes.RenameNoteParams{ID: "a1", Title: "pwned"}); err != nil || rows != 0 {
		t.Fatalf("B renamed A's note: %d rows, err %v", rows, err)
	}
	if err := qb.DeleteNote(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	copied, err := qa.CopyNotes(ctx, []sqlcnotes.CopyNotesParams{{ID: "a2", Title: "a-two"}, {ID: "a3", Title: "a-three"}})
	if err != nil || copied != 2 {
		t.Fatalf("CopyNotes: %d, %v", copied, err)
	}
	if _, err := qb.CopyNotes(ctx, []sqlcnotes.CopyNotesParams{{ID: "b1", Title: "b-one"}}); err != nil {
		t.Fatal(err)
	}
	var renamed []int
	qa.RenameNotes(ctx, []sqlcnotes.RenameNotesParams{{ID: "a2", Title: "a-two!"}, {ID: "b1", Title: "pwned"}}).Exec(func(i int, err error) {
		if err != nil {
			t.Errorf("RenameNotes %d: %v", i, err)
		}
		renamed = append(renamed, i)
	})
	var got []string
	qa.GetNotes(ctx, []string{"a2", "a3", "b1"}).QueryRow(func(i int, n sqlcnotes.Note, err error) {
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			got = append(got, "-")
		case err != nil:
			t.Errorf("GetNotes %d: %v", i, err)
		default:
			got = append(got, n.Title)
		}
	})
	if !slices.Equal(got, []string{"a-two!", "a-three", "-"}) || len(renamed) != 2 {
		t.Fatalf("batch read %v after renaming %v", got, renamed)
	}
	list := func(q *sqlcnotes.Queries) []string {
		notes, err := q.ListNotes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var titles []string
		for _, n := range notes {
			titles = append(titles, n.Title)
		}
		return titles
	}
	if got := list(qa); !slices.Equal(got, []string{"a-one", "a-three", "a-two!"}) {
		t.Fatalf("A lists %v", got)
	}
	if got := list(qb); !slices.Equal(got, []string{"b-one"}) {
		t.Fatalf("B lists %v", got)
	}

	// In a transaction: WithTx, rollback, commit, a savepoint, and the
	// transaction held past its end.
	tx, err := postgres.For(p, a).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qa.WithTx(tx).CreateNote(ctx, sqlcnotes.CreateNoteParams{ID: "a4", Title: "rolled back"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	tx, err = postgres.For(p, a).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	qtx := qa.WithTx(tx)
	if _, err := qtx.CreateNote(ctx, sqlcnotes.CreateNoteParams{ID: "a5", Title: "a-five"}); err != nil {
		t.Fatal(err)
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qa.WithTx(sp).CreateNote(ctx, sqlcnotes.CreateNoteParams{ID: "a6", Title: "savepoint"}); err != nil {
		t.Fatal(err)
	}
	if err := sp.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := qa.WithTx(sp).CreateNote(ctx, sqlcnotes.CreateNoteParams{ID: "a7", Title: "after savepoint"}); !errors.Is(err, pgx.ErrTxClosed) {
		t.Fatalf("ended savepoint: want ErrTxClosed, got %v", err)
	}
	if _, err := qtx.CopyNotes(ctx, []sqlcnotes.CopyNotesParams{{ID: "a8", Title: "a-eight"}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for _, call := range []func() error{
		func() error {
			_, err := qtx.CreateNote(ctx, sqlcnotes.CreateNoteParams{ID: "a9", Title: "held"})
			return err
		},
		func() error { _, err := qtx.ListNotes(ctx); return err },
		func() error {
			_, err := qtx.RenameNote(ctx, sqlcnotes.RenameNoteParams{ID: "a5", Title: "held"})
			return err
		},
		func() error {
			_, err := qtx.CopyNotes(ctx, []sqlcnotes.CopyNotesParams{{ID: "a9", Title: "held"}})
			return err
		},
		func() error { return tx.Commit(ctx) },
		func() error { _, err := tx.Begin(ctx); return err },
	} {
		if err := call(); !errors.Is(err, pgx.ErrTxClosed) || !errors.Is(err, isolation.ErrTxClosed) {
			t.Fatalf("call on an ended transaction: want ErrTxClosed, got %v", err)
		}
	}
	if tx.Conn() != nil {
		t.Fatal("an ended transaction still hands out its connection")
	}
	if got := list(qa); !slices.Equal(got, []string{"a-eight", "a-five", "a-one", "a-three", "a-two!"}) {
		t.Fatalf("A lists %v after its transactions", got)
	}
	if got := list(qb); !slices.Equal(got, []string{"b-one"}) {
		t.Fatalf("B lists %v", got)
	}
}

// TestQuerierHelpers: pgx's row helpers and named arguments run on the
// Querier.
func TestQuerierHelpers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(2)
	a, b := tenants[0], tenants[1]
	p := openSchema(t, e, e.app, tenants, nil)
	insertNote(t, p, a, "a-one")
	insertNote(t, p, b, "b-one")
	q := postgres.For(p, a)
	type note struct {
		ID       string
		TenantID string
		Title    string
	}
	rows, err := q.Query(ctx, "SELECT id, tenant_id, title FROM notes WHERE title = @title", pgx.NamedArgs{"title": "a-one"})
	if err != nil {
		t.Fatal(err)
	}
	notes, err := pgx.CollectRows(rows, pgx.RowToStructByName[note])
	if err != nil || len(notes) != 1 || notes[0].TenantID != a.ID {
		t.Fatalf("CollectRows: %+v %v", notes, err)
	}
	err = pgx.BeginFunc(ctx, q, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT id, tenant_id, title FROM notes")
		if err != nil {
			return err
		}
		all, err := pgx.CollectRows(rows, pgx.RowToStructByName[note])
		if err == nil && (len(all) != 1 || all[0].Title != "a-one") {
			t.Errorf("A's transaction reads %+v", all)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ctxB := tenancy.WithTenant(ctx, b)
	qb, err := postgres.FromContext(ctxB, p)
	if err != nil {
		t.Fatal(err)
	}
	var title string
	if err := qb.QueryRow(ctx, "SELECT title FROM notes").Scan(&title); err != nil || title != "b-one" {
		t.Fatalf("FromContext querier reads %q %v", title, err)
	}
}

// TestQuerierRefusals: a Querier that cannot serve refuses every call.
func TestQuerierRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tn := newTenants(1)[0]
	p := openRLS(t, e, e.app, nil, nil)
	sp, err := sqlite.New(sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for name, q := range map[string]*postgres.Querier{
		"no tenant":    postgres.For(p, nil),
		"not postgres": postgres.For(sp, tn),
		"bad tenant":   postgres.For(p, &tenancy.Tenant{ID: "x'--", Identifier: "acme"}),
	} {
		if _, err := q.Exec(ctx, "SELECT 1"); err == nil {
			t.Errorf("%s: Exec ran", name)
		}
		if err := q.QueryRow(ctx, "SELECT 1").Scan(new(int)); err == nil {
			t.Errorf("%s: QueryRow ran", name)
		}
		if _, err := q.Begin(ctx); err == nil {
			t.Errorf("%s: Begin ran", name)
		}
		if err := q.SendBatch(ctx, &pgx.Batch{}).Close(); err == nil {
			t.Errorf("%s: SendBatch ran", name)
		}
	}
	if _, err := postgres.FromContext(ctx, p); !errors.Is(err, tenancy.ErrNoTenant) {
		t.Errorf("FromContext without a tenant: %v", err)
	}
	if _, err := postgres.For(p, tn).BeginTx(ctx, pgx.TxOptions{BeginQuery: "BEGIN; SET ROLE postgres"}); err == nil {
		t.Error("a BeginQuery of the caller's was accepted")
	}
	if _, err := postgres.For(p, tn).BeginTx(ctx, pgx.TxOptions{IsoLevel: "serializable; SET ROLE postgres"}); err == nil {
		t.Error("an isolation level of the caller's was written into BEGIN")
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue("SELECT 1")
	if err := postgres.For(p, tn).SendBatch(ctx, b).Close(); err == nil {
		t.Error("a batch that begins its own transaction was sent")
	}
	tx, err := postgres.For(p, tn).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Prepare(ctx, "mine", "SELECT 1"); err == nil {
		t.Error("Prepare of a named statement was accepted")
	}
}

// recorder is a Tracer that records what it saw.
type recorder struct {
	mu    sync.Mutex
	spans []string
}

func (r *recorder) TraceStatement(ctx context.Context, t *tenancy.Tenant, sql string) (context.Context, func(error)) {
	return ctx, func(err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		r.spans = append(r.spans, t.Identifier+" "+sql+" "+outcome)
	}
}

// TestTracer: every statement run in a tenant's scope is traced once, with
// its tenant and outcome, when its result has been read.
func TestTracer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ensureSharedNotes(t, e)
	rec := &recorder{}
	p, err := postgres.NewRLS(ctx, pgxPool(t, e.app), postgres.Config{Tracer: rec})
	if err != nil {
		t.Fatal(err)
	}
	tn := &tenancy.Tenant{ID: "id-traced", Identifier: "traced"}
	rows, err := p.Query(ctx, tn, "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.spans) != 0 {
		t.Fatalf("traced before the rows were read: %v", rec.spans)
	}
	rows.Close()
	_, _ = p.Exec(ctx, tn, "SELECT no_such_column")
	_ = p.Tx(ctx, tn, func(tx isolation.Tx) error {
		_, err := tx.Exec(ctx, "SELECT 2")
		return err
	})
	bt := &pgx.Batch{}
	bt.Queue("SELECT 3")
	bt.Queue("SELECT 4")
	if err := postgres.For(p, tn).SendBatch(ctx, bt).Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"traced SELECT 1 ok", "traced SELECT no_such_column error", "traced SELECT 2 ok", "traced SELECT 3 ok"}
	if !slices.Equal(rec.spans, want) {
		t.Fatalf("spans %q, want %q", rec.spans, want)
	}
}

func pgxPool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestCopyFromChunks: a large copy arrives whole, in the tenant only, with
// its insert prepared once on the connection.
func TestCopyFromChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(2)
	a, b := tenants[0], tenants[1]
	p := openSchema(t, e, e.app, tenants, func(c *pgxpool.Config) { c.MaxConns = 1 })
	const n = 2500
	n0, err := postgres.For(p, a).CopyFrom(ctx, pgx.Identifier{"notes"}, []string{"id", "title"},
		pgx.CopyFromSlice(n, func(i int) ([]any, error) { return []any{fmt.Sprint("c", i), "copied"}, nil }))
	if err != nil || n0 != n {
		t.Fatalf("copied %d, %v", n0, err)
	}
	var got, prepared int
	if err := p.QueryRow(ctx, a, "SELECT count(*), (SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'tenancy\\_%') FROM notes WHERE tenant_id = $1", a.ID).Scan(&got, &prepared); err != nil {
		t.Fatal(err)
	}
	if got != n || prepared > 3 {
		t.Fatalf("A holds %d notes, %d statements prepared on the connection", got, prepared)
	}
	if err := p.QueryRow(ctx, b, "SELECT count(*) FROM notes").Scan(&got); err != nil || got != 0 {
		t.Fatalf("B holds %d notes (err %v)", got, err)
	}
}
