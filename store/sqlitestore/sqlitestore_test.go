package sqlitestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/store/sqlitestore"
	"github.com/go-tenancy/tenancy/store/storetest"
)

func open(t testing.TB, path string) *sqlitestore.Store {
	t.Helper()
	return openWith(t, path, sqlitestore.Config{})
}

func openWith(t testing.TB, path string, cfg sqlitestore.Config) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), path, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawDB opens path without the store, for inspection.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", sqlitestore.DSN(path, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func tempPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "tenants.db")
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) tenancy.Store { return open(t, tempPath(t)) })
}

func TestConformanceInMemory(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) tenancy.Store { return open(t, ":memory:") })
}

// TestConformanceCallerHandle runs the suite through New on a handle opened
// with DSN, which the store must leave open.
func TestConformanceCallerHandle(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) tenancy.Store {
		db := rawDB(t, tempPath(t))
		s, err := sqlitestore.New(t.Context(), db, sqlitestore.Config{})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return s
	})
}

func TestNewLeavesHandleOpen(t *testing.T) {
	t.Parallel()
	db := rawDB(t, tempPath(t))
	s, err := sqlitestore.New(t.Context(), db, sqlitestore.Config{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.PingContext(t.Context()); err != nil {
		t.Errorf("caller's handle closed by Store.Close: %v", err)
	}
}

func TestOpenSettings(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	open(t, path)

	// WAL is a property of the file: a plain handle sees it too.
	plain, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var mode string
	if err := plain.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}

	// The per-connection settings come from DSN.
	db, err := sql.Open("sqlite", sqlitestore.DSN(path, 1234*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checks := map[string]string{"busy_timeout": "1234", "foreign_keys": "1", "journal_mode": "wal"}
	for pragma, want := range checks {
		var got string
		if err := db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

func TestOpenRefusesBadPath(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", "tenants.db?_pragma=query_only(1)"} {
		if s, err := sqlitestore.Open(t.Context(), path, sqlitestore.Config{}); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

// TestConcurrentUpdates runs many read-modify-write updates of one tenant
// at once through several stores on one file, as several processes would.
// Deferred transactions would fail some of them with SQLITE_BUSY when a
// reader tries to upgrade to a writer; immediate ones wait their turn.
func TestConcurrentUpdates(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	const stores, workers, each = 4, 4, 10
	var all []*sqlitestore.Store
	for range stores {
		// A long busy timeout: on a loaded machine SQLite's busy handler
		// may let one writer wait a while. Failed lock upgrades, which
		// this test is about, are reported at once whatever the timeout.
		all = append(all, openWith(t, path, sqlitestore.Config{BusyTimeout: time.Minute}))
	}
	tn, err := all[0].Create(t.Context(), &tenancy.Tenant{Identifier: "acme", Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, stores*workers*each)
	for i, s := range all {
		for w := range workers {
			wg.Go(func() {
				for j := range each {
					name := fmt.Sprintf("Acme %d-%d-%d", i, w, j)
					if _, err := s.Update(t.Context(), tn.ID, tenancy.Update{Name: &name}); err != nil {
						errs <- err
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Update: %v", err)
	}
}

// appliedVersions returns how many times each version is recorded.
func appliedVersions(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT version_id, count(*) FROM store_migrations WHERE is_applied GROUP BY version_id ORDER BY 1")
	if err != nil {
		t.Fatalf("read versions: %v", err)
	}
	defer rows.Close()
	out := ""
	for rows.Next() {
		var v, n int
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("%d:%d ", v, n)
	}
	return out
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s, err := sqlitestore.Open(t.Context(), path, sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	created, err := s.Create(t.Context(), &tenancy.Tenant{Identifier: "acme", Name: "Acme", Domains: []string{"acme.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyDomain(t.Context(), created.ID, "acme.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s := open(t, path)
		got, err := s.GetByDomain(t.Context(), "acme.example.com")
		if err != nil {
			t.Fatalf("GetByDomain after reopen: %v", err)
		}
		if !got.CreatedAt.Equal(created.CreatedAt) || got.ID != created.ID || !slices.Equal(got.Domains, created.Domains) {
			t.Errorf("after reopen: %+v, want %+v", got, created)
		}
	}
	if got := appliedVersions(t, rawDB(t, path)); got != "0:1 1:1 2:1 3:1 " {
		t.Errorf("applied versions = %q, want each once", got)
	}
}

// TestConcurrentOpen opens one new file from several handles at once, as
// processes starting together would: all succeed, each migration is
// applied once and no lock is left behind.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	const n = 6
	stores := make([]*sqlitestore.Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = sqlitestore.Open(t.Context(), path, sqlitestore.Config{BusyTimeout: time.Minute})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		if _, err := stores[i].Create(t.Context(), &tenancy.Tenant{Identifier: fmt.Sprintf("tenant-%d", i), Name: "T"}); err != nil {
			t.Errorf("Create through store %d: %v", i, err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	db := rawDB(t, path)
	if got := appliedVersions(t, db); got != "0:1 1:1 2:1 3:1 " {
		t.Errorf("applied versions = %q, want each once", got)
	}
	var locks int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM store_lock").Scan(&locks); err != nil {
		t.Fatal(err)
	}
	if locks != 0 {
		t.Errorf("%d lock rows left after every Open returned", locks)
	}
}

// TestOpenWaitsForLock proves the migration lock is honoured: while
// another process holds a live lease, Open migrates nothing and waits (here
// until its context ends); once the lease has expired it takes over.
func TestOpenWaitsForLock(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	db := rawDB(t, path)
	_, err := db.ExecContext(t.Context(), `CREATE TABLE store_lock (
	id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL, expires_at INTEGER NOT NULL) STRICT;
INSERT INTO store_lock VALUES (1, 'crashed-process', ?)`, time.Now().Add(time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if s, err := sqlitestore.Open(ctx, path, sqlitestore.Config{}); err == nil {
		_ = s.Close()
		t.Fatal("Open succeeded while another process held a live migration lock")
	} else if ctx.Err() == nil {
		// It must have waited for the lock, not failed for another reason.
		t.Errorf("Open failed before its context ended: %v", err)
	}
	var tables int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM sqlite_schema WHERE name = 'tenants'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatal("tenants table created without holding the lock")
	}

	if _, err := db.ExecContext(t.Context(), "UPDATE store_lock SET expires_at = ?", time.Now().Add(-time.Second).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	open(t, path)
}

// TestTimestampFormat checks the stored text: UTC, microseconds, fixed
// width, so that it sorts as it reads.
func TestTimestampFormat(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s := open(t, path)
	created, err := s.Create(t.Context(), &tenancy.Tenant{Identifier: "acme", Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	var createdAt, updatedAt string
	if err := rawDB(t, path).QueryRowContext(t.Context(), "SELECT created_at, updated_at FROM tenants").Scan(&createdAt, &updatedAt); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)
	for _, ts := range []string{createdAt, updatedAt} {
		if !re.MatchString(ts) {
			t.Errorf("stored timestamp %q, want 2006-01-02T15:04:05.000000Z", ts)
		}
	}
	if want := created.CreatedAt.Format("2006-01-02T15:04:05.000000Z"); createdAt != want {
		t.Errorf("created_at = %q, want %q", createdAt, want)
	}
}

// BenchmarkGet measures a lookup of each kind against a store of 1,000
// tenants with two domains each, in a file under the test's temp dir.
func BenchmarkGet(b *testing.B) {
	s := open(b, tempPath(b))
	ctx := b.Context()
	for i := range 1000 {
		_, err := s.Create(ctx, &tenancy.Tenant{ID: fmt.Sprintf("id-%d", i), Identifier: fmt.Sprintf("t%04d", i), Name: "T",
			Aliases: []string{fmt.Sprintf("alias%04d", i)}, Domains: []string{fmt.Sprintf("t%04d.example.com", i)}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.VerifyDomain(ctx, fmt.Sprintf("id-%d", i), fmt.Sprintf("t%04d.example.com", i)); err != nil {
			b.Fatal(err)
		}
	}
	lookups := []struct {
		name   string
		lookup func(i int) error
	}{
		{"ID", func(i int) error { _, err := s.Get(ctx, fmt.Sprintf("id-%d", i%1000)); return err }},
		{"Identifier", func(i int) error { _, err := s.GetByIdentifier(ctx, fmt.Sprintf("t%04d", i%1000)); return err }},
		{"Domain", func(i int) error { _, err := s.GetByDomain(ctx, fmt.Sprintf("t%04d.example.com", i%1000)); return err }},
	}
	for _, l := range lookups {
		lookup := l.lookup
		b.Run(l.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if err := lookup(i); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkCreate measures creating a tenant with two domains (one
// transaction, synchronous=FULL in WAL mode).
func BenchmarkCreate(b *testing.B) {
	s := open(b, tempPath(b))
	i := 0
	for b.Loop() {
		_, err := s.Create(b.Context(), &tenancy.Tenant{Identifier: fmt.Sprintf("t%07d", i), Name: "T",
			Aliases: []string{fmt.Sprintf("alias%07d", i)}, Domains: []string{fmt.Sprintf("t%07d.example.com", i)}})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}
