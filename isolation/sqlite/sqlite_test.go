package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
)

const notesDDL = `CREATE TABLE IF NOT EXISTS notes (
	id INTEGER PRIMARY KEY,
	tenant_id TEXT NOT NULL,
	title TEXT NOT NULL)`

func setup(t *testing.T, cfg sqlite.Config, tenants ...*tenancy.Tenant) *sqlite.Provider {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	p, err := sqlite.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	for _, tn := range tenants {
		if err := p.Initialize(context.Background(), tn); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Exec(context.Background(), tn, notesDDL); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func tenant(ident string) *tenancy.Tenant {
	return &tenancy.Tenant{ID: "id-" + ident, Identifier: ident, Name: ident, Status: tenancy.StatusActive}
}

func TestFilePerTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := tenant("acme-corp"), tenant("globex")
	p := setup(t, sqlite.Config{}, a, b)

	var idA int64
	if err := p.QueryRow(ctx, a, "INSERT INTO notes (tenant_id, title) VALUES (?, 'a-secret') RETURNING id", a.ID).Scan(&idA); err != nil {
		t.Fatal(err)
	}
	var title string
	if err := p.QueryRow(ctx, b, "SELECT title FROM notes WHERE id = ?", idA).Scan(&title); !errors.Is(err, isolation.ErrNoRows) {
		t.Fatalf("B read A's note: %q, %v", title, err)
	}
	if n, err := p.Exec(ctx, b, "UPDATE notes SET title = 'pwned' WHERE id = ?", idA); err != nil || n != 0 {
		t.Fatalf("B updated A's note: %d, %v", n, err)
	}
	if n, err := p.Exec(ctx, b, "DELETE FROM notes WHERE id = ?", idA); err != nil || n != 0 {
		t.Fatalf("B deleted A's note: %d, %v", n, err)
	}
	if err := p.QueryRow(ctx, a, "SELECT title FROM notes WHERE id = ?", idA).Scan(&title); err != nil || title != "a-secret" {
		t.Fatalf("A's note: %q, %v", title, err)
	}
	pa, _ := p.Path(a)
	pb, _ := p.Path(b)
	if pa == pb || filepath.Dir(pa) != filepath.Dir(pb) {
		t.Fatalf("paths %q and %q", pa, pb)
	}
	var mode string
	if err := p.QueryRow(ctx, a, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v", mode, err)
	}
}

func TestTxCommitAndRollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := tenant("acme-corp")
	p := setup(t, sqlite.Config{}, a)
	boom := errors.New("boom")
	err := p.Tx(ctx, a, func(tx isolation.Tx) error {
		if tx.SQL() == nil || tx.Pgx() != nil {
			t.Error("SQLite Tx must expose *sql.Tx only")
		}
		if _, err := tx.Exec(ctx, "INSERT INTO notes (tenant_id, title) VALUES (?, 'rolled back')", a.ID); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if err := p.Tx(ctx, a, func(tx isolation.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO notes (tenant_id, title) VALUES (?, 'kept')", a.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = p.Tx(ctx, a, func(tx isolation.Tx) error {
			_, _ = tx.Exec(ctx, "INSERT INTO notes (tenant_id, title) VALUES (?, 'panicked')", a.ID)
			panic("handler bug")
		})
	}()
	rows, err := p.Query(ctx, a, "SELECT title FROM notes")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil || strings.Join(got, ",") != "kept" {
		t.Fatalf("rows %v, %v", got, err)
	}
}

func TestRefusesEscapes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	p := setup(t, sqlite.Config{Dir: dir})
	for _, id := range []string{"../x", "../../etc/passwd", "a/b", "ACME", "acme\n", "", `a"; --`} {
		bad := &tenancy.Tenant{ID: "x", Identifier: id}
		if err := p.Initialize(ctx, bad); !errors.Is(err, tenancy.ErrInvalidIdentifier) {
			t.Errorf("Initialize(%q): %v", id, err)
		}
		if _, err := p.Exec(ctx, bad, "SELECT 1"); !errors.Is(err, tenancy.ErrInvalidIdentifier) {
			t.Errorf("Exec(%q): %v", id, err)
		}
	}
	if _, err := p.Exec(ctx, nil, "SELECT 1"); !errors.Is(err, tenancy.ErrNoTenant) {
		t.Errorf("nil tenant: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("files created: %v", entries)
	}
	if _, err := sqlite.New(sqlite.Config{Dir: dir + "?mode=ro"}); err == nil {
		t.Fatal("a directory with '?' was accepted")
	}
}

func TestDestroyRemovesFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := tenant("acme-corp"), tenant("globex")
	dir := t.TempDir()
	p := setup(t, sqlite.Config{Dir: dir}, a, b)
	if _, err := p.Exec(ctx, a, "INSERT INTO notes (tenant_id, title) VALUES (?, 'x')", a.ID); err != nil {
		t.Fatal(err)
	}
	if err := p.Destroy(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := p.Destroy(ctx, a); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "acme-corp") {
			t.Fatalf("left behind %s", e.Name())
		}
	}
	var n int
	if err := p.QueryRow(ctx, b, "SELECT count(*) FROM notes").Scan(&n); err != nil {
		t.Fatalf("B after A's Destroy: %v", err)
	}
}

// TestLeakUnderLoad: many tenants, concurrent reads and writes, a cap of 4
// open files: every read sees its own rows only.
func TestLeakUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var tenants []*tenancy.Tenant
	for i := range 20 {
		tenants = append(tenants, tenant(fmt.Sprintf("tenant-%d", i)))
	}
	p := setup(t, sqlite.Config{MaxOpen: 4}, tenants...)
	var wg sync.WaitGroup
	errs := make(chan error, len(tenants)*4)
	counts := make([]int, len(tenants))
	var mu sync.Mutex
	for i, tn := range tenants {
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(i), uint64(w)))
				for op := range 20 {
					if r.IntN(2) == 0 {
						if _, err := p.Exec(ctx, tn, "INSERT INTO notes (tenant_id, title) VALUES (?, ?)", tn.ID, fmt.Sprintf("%s:%d", tn.ID, op)); err != nil {
							errs <- err
							return
						}
						mu.Lock()
						counts[i]++
						mu.Unlock()
						continue
					}
					rows, err := p.Query(ctx, tn, "SELECT tenant_id, title FROM notes")
					if err != nil {
						errs <- err
						return
					}
					for rows.Next() {
						var tid, title string
						if err := rows.Scan(&tid, &title); err != nil {
							errs <- err
							return
						}
						if tid != tn.ID || !strings.HasPrefix(title, tn.ID+":") {
							errs <- fmt.Errorf("%s read (%s, %s)", tn.ID, tid, title)
						}
					}
					if err := rows.Err(); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := p.OpenCount(); n > 4 {
		t.Errorf("%d files open, cap 4", n)
	}
	for i, tn := range tenants {
		var n int
		if err := p.QueryRow(ctx, tn, "SELECT count(*) FROM notes").Scan(&n); err != nil || n != counts[i] {
			t.Errorf("%s holds %d rows (%v), want %d", tn.ID, n, err, counts[i])
		}
	}
}
