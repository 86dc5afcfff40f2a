package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
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
// TestConformance runs the provider conformance suite.
func TestConformance(t *testing.T) {
	t.Parallel()
	isolationtest.Run(t, func(t *testing.T, tenants []*tenancy.Tenant, maxConns int) isolationtest.Fixture {
		p, err := sqlite.New(sqlite.Config{Dir: t.TempDir(), MaxOpen: 8, MaxConnsPerTenant: maxConns})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		for _, tn := range tenants {
			if err := p.Initialize(context.Background(), tn); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Exec(context.Background(), tn, isolationtest.NotesSQLite); err != nil {
				t.Fatal(err)
			}
		}
		return isolationtest.Fixture{Provider: p}
	})
}

// TestAttachRefused: a tenant's statement cannot attach another tenant's
// file, on the provider's connections or on a handle from Open.
func TestAttachRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := tenant("acme-corp"), tenant("globex")
	p := setup(t, sqlite.Config{}, a, b)
	if _, err := p.Exec(ctx, b, "INSERT INTO notes (tenant_id, title) VALUES (?, 'b-secret')", b.ID); err != nil {
		t.Fatal(err)
	}
	pathB, _ := p.Path(b)
	for _, stmt := range []string{
		"ATTACH DATABASE '" + pathB + "' AS other",
		"ATTACH '" + pathB + "' AS other",
		"ATTACH DATABASE 'file:" + pathB + "?mode=ro' AS other",
	} {
		if _, err := p.Exec(ctx, a, stmt); err == nil || !strings.Contains(strings.ToLower(err.Error()), "not authorized") {
			t.Fatalf("%s: want not authorized, got %v", stmt, err)
		}
	}
	err := p.Tx(ctx, a, func(tx isolation.Tx) error {
		_, err := tx.Exec(ctx, "ATTACH DATABASE '"+pathB+"' AS other")
		return err
	})
	if err == nil {
		t.Fatal("ATTACH in a transaction succeeded")
	}
	pathA, _ := p.Path(a)
	db, err := p.Open(pathA)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "ATTACH DATABASE '"+pathB+"' AS other"); err == nil {
		t.Fatal("ATTACH on a handle from Open succeeded")
	}
}

// TestNativeAccess: database/sql code runs on the tenant's *sql.Conn and
// *sql.Tx, which are dead once their callback returns.
func TestNativeAccess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := tenant("acme-corp"), tenant("globex")
	p := setup(t, sqlite.Config{}, a, b)
	var heldTx *sql.Tx
	err := p.BeginFunc(ctx, a, nil, func(tx *sql.Tx) error {
		heldTx = tx
		_, err := tx.ExecContext(ctx, "INSERT INTO notes (tenant_id, title) VALUES (?, 'a-native')", a.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := heldTx.ExecContext(ctx, "INSERT INTO notes (tenant_id, title) VALUES (?, 'held')", a.ID); !errors.Is(err, sql.ErrTxDone) {
		t.Fatalf("held *sql.Tx: want ErrTxDone, got %v", err)
	}
	var heldConn *sql.Conn
	err = p.Conn(ctx, b, func(c *sql.Conn) error {
		heldConn = c
		var n int
		if err := c.QueryRowContext(ctx, "SELECT count(*) FROM notes").Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			t.Errorf("B's connection sees %d notes", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := heldConn.ExecContext(ctx, "SELECT 1"); !errors.Is(err, sql.ErrConnDone) {
		t.Fatalf("held *sql.Conn: want ErrConnDone, got %v", err)
	}
	var title string
	if err := p.QueryRow(ctx, a, "SELECT title FROM notes").Scan(&title); err != nil || title != "a-native" {
		t.Fatalf("A's notes: %q %v", title, err)
	}
}

// TestIdleFilesClosed: a tenant database unused for IdleTimeout is closed.
func TestIdleFilesClosed(t *testing.T) {
	t.Parallel()
	a := tenant("acme-corp")
	p := setup(t, sqlite.Config{IdleTimeout: 50 * time.Millisecond}, a)
	deadline := time.Now().Add(5 * time.Second)
	for p.OpenCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle tenant database was not closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n int
	if err := p.QueryRow(context.Background(), a, "SELECT count(*) FROM notes").Scan(&n); err != nil {
		t.Fatalf("reopening after eviction: %v", err)
	}
}
