package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// NoteStore conformance: the fake, SQLite (a file per tenant) and
// PostgreSQL (one table under row-level security, used as an application
// role that owns nothing) must behave alike.

// storeFixture is a NoteStore and a way to get fresh tenants for it.
type storeFixture struct {
	store     NoteStore
	newTenant func(t *testing.T) *tenancy.Tenant
}

func testNoteStore(t *testing.T, fx storeFixture) {
	ctx := context.Background()
	create := func(t *testing.T, tn *tenancy.Tenant, title, body string) Note {
		t.Helper()
		n, err := fx.store.Create(ctx, tn, NewNote{Title: title, Body: body})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		return n
	}

	t.Run("CreateAndGet", func(t *testing.T) {
		t.Parallel()
		tn := fx.newTenant(t)
		before := time.Now().Add(-time.Minute)
		n := create(t, tn, "Hello", "First note!")
		if u, err := uuid.Parse(n.ID); err != nil || u.String() != n.ID {
			t.Fatalf("id %q is not a canonical UUID", n.ID)
		}
		if n.TenantID != tn.ID || n.Title != "Hello" || n.Body != "First note!" {
			t.Fatalf("created %+v", n)
		}
		if n.CreatedAt.Location() != time.UTC || n.CreatedAt.Before(before) || !n.UpdatedAt.Equal(n.CreatedAt) {
			t.Fatalf("timestamps %v / %v", n.CreatedAt, n.UpdatedAt)
		}
		got, err := fx.store.Get(ctx, tn, n.ID)
		if err != nil || got != n {
			t.Fatalf("get = %+v, %v; want %+v", got, err, n)
		}
		upper, err := fx.store.Get(ctx, tn, strings.ToUpper(n.ID))
		if err != nil || upper != n {
			t.Fatalf("get by uppercase ID = %+v, %v", upper, err)
		}
	})

	t.Run("EmptyTenantListsNothing", func(t *testing.T) {
		t.Parallel()
		got, err := fx.store.List(ctx, fx.newTenant(t), Page{Limit: 50})
		if err != nil || len(got) != 0 {
			t.Fatalf("list = %+v, %v", got, err)
		}
	})

	t.Run("ListNewestFirstAndPages", func(t *testing.T) {
		t.Parallel()
		tn := fx.newTenant(t)
		var ids []string
		for i := range 5 {
			ids = append(ids, create(t, tn, fmt.Sprintf("note %d", i), "").ID)
			time.Sleep(time.Millisecond)
		}
		slices.Reverse(ids)
		for _, p := range []Page{{Limit: 50}, {Limit: 2}, {Limit: 2, Offset: 2}, {Limit: 2, Offset: 4}, {Limit: 3, Offset: 5}} {
			got, err := fx.store.List(ctx, tn, p)
			if err != nil {
				t.Fatalf("list %+v: %v", p, err)
			}
			want := ids[min(p.Offset, len(ids)):min(p.Offset+p.Limit, len(ids))]
			var gotIDs []string
			for _, n := range got {
				gotIDs = append(gotIDs, n.ID)
			}
			if !slices.Equal(gotIDs, want) {
				t.Fatalf("list %+v = %v, want %v", p, gotIDs, want)
			}
		}
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		tn := fx.newTenant(t)
		n := create(t, tn, "Draft", "keep me")
		time.Sleep(time.Millisecond)
		title := "Final"
		u, err := fx.store.Update(ctx, tn, n.ID, NotePatch{Title: &title})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if u.Title != "Final" || u.Body != "keep me" || !u.CreatedAt.Equal(n.CreatedAt) || !u.UpdatedAt.After(n.UpdatedAt) || u.TenantID != tn.ID {
			t.Fatalf("updated %+v from %+v", u, n)
		}
		empty := ""
		u2, err := fx.store.Update(ctx, tn, n.ID, NotePatch{Body: &empty})
		if err != nil || u2.Title != "Final" || u2.Body != "" {
			t.Fatalf("update body = %+v, %v", u2, err)
		}
		same, err := fx.store.Update(ctx, tn, n.ID, NotePatch{})
		if err != nil || same != u2 {
			t.Fatalf("empty update = %+v, %v; want %+v", same, err, u2)
		}
		got, _ := fx.store.Get(ctx, tn, n.ID)
		if got != u2 {
			t.Fatalf("stored %+v, want %+v", got, u2)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		tn := fx.newTenant(t)
		n := create(t, tn, "Doomed", "")
		keep := create(t, tn, "Kept", "")
		if err := fx.store.Delete(ctx, tn, n.ID); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := fx.store.Get(ctx, tn, n.ID); !errors.Is(err, ErrNoteNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
		if err := fx.store.Delete(ctx, tn, n.ID); !errors.Is(err, ErrNoteNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if got, err := fx.store.List(ctx, tn, Page{Limit: 10}); err != nil || len(got) != 1 || got[0].ID != keep.ID {
			t.Fatalf("list after delete = %+v, %v", got, err)
		}
	})

	t.Run("OtherTenantsNoteIsNotFound", func(t *testing.T) {
		t.Parallel()
		owner, other := fx.newTenant(t), fx.newTenant(t)
		n := create(t, owner, "Owner's", "private")
		create(t, other, "Other's", "")
		if _, err := fx.store.Get(ctx, other, n.ID); !errors.Is(err, ErrNoteNotFound) {
			t.Fatalf("get as other: %v", err)
		}
		title, body := "stolen", "overwritten"
		if _, err := fx.store.Update(ctx, other, n.ID, NotePatch{Title: &title, Body: &body}); !errors.Is(err, ErrNoteNotFound) {
			t.Fatalf("update as other: %v", err)
		}
		if err := fx.store.Delete(ctx, other, n.ID); !errors.Is(err, ErrNoteNotFound) {
			t.Fatalf("delete as other: %v", err)
		}
		got, err := fx.store.Get(ctx, owner, n.ID)
		if err != nil || got != n {
			t.Fatalf("owner's note after other's attempts = %+v, %v; want %+v", got, err, n)
		}
		list, err := fx.store.List(ctx, other, Page{Limit: 50})
		if err != nil || len(list) != 1 || list[0].TenantID != other.ID {
			t.Fatalf("other lists %+v, %v", list, err)
		}
	})

	t.Run("MalformedAndUnknownIDs", func(t *testing.T) {
		t.Parallel()
		tn := fx.newTenant(t)
		n := create(t, tn, "Exists", "")
		title := "x"
		for _, id := range []string{"", "xyz", "' OR 1=1 --", "{" + n.ID + "}", "urn:uuid:" + n.ID, strings.ReplaceAll(n.ID, "-", ""), n.ID + "\n", uuid.NewString()} {
			if _, err := fx.store.Get(ctx, tn, id); !errors.Is(err, ErrNoteNotFound) {
				t.Errorf("get %q: %v", id, err)
			}
			if _, err := fx.store.Update(ctx, tn, id, NotePatch{Title: &title}); !errors.Is(err, ErrNoteNotFound) {
				t.Errorf("update %q: %v", id, err)
			}
			if err := fx.store.Delete(ctx, tn, id); !errors.Is(err, ErrNoteNotFound) {
				t.Errorf("delete %q: %v", id, err)
			}
		}
		if got, err := fx.store.Get(ctx, tn, n.ID); err != nil || got != n {
			t.Fatalf("note changed: %+v, %v", got, err)
		}
	})

	t.Run("CharactersNotBytes", func(t *testing.T) {
		t.Parallel()
		tn := fx.newTenant(t)
		title, body := strings.Repeat("é", maxTitleLen), strings.Repeat("漢", maxBodyLen)
		n := create(t, tn, title, body)
		got, err := fx.store.Get(ctx, tn, n.ID)
		if err != nil || got.Title != title || got.Body != body {
			t.Fatalf("round trip lost characters: %v", err)
		}
	})
}

func TestNoteStoreFake(t *testing.T) {
	t.Parallel()
	testNoteStore(t, storeFixture{
		store: newFakeNotes(),
		newTenant: func(*testing.T) *tenancy.Tenant {
			id := testenv.RandomName("t-")
			return &tenancy.Tenant{ID: id, Identifier: id, Name: "Test", Status: tenancy.StatusActive}
		},
	})
}

// testLogger logs to the test's output, shown when it fails or with -v.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(tenancy.NewLogHandler(slog.NewTextHandler(t.Output(), nil)))
}

// openTestBackend opens the backend as the server does: migrations and
// seeds included.
func openTestBackend(t *testing.T, cfg Config) *backend {
	t.Helper()
	b, err := openBackend(t.Context(), cfg, backendOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open backend: %v", err)
	}
	t.Cleanup(b.close)
	if err := service.MigrateAll(t.Context(), b.migrator, b.logger); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := b.seed(t.Context()); err != nil {
		t.Fatalf("seed: %v", err)
	}
	return b
}

// provisioner returns fresh tenants provisioned through the lifecycle, as
// the admin subcommand does.
func (b *backend) provisioner(t *testing.T) func(t *testing.T) *tenancy.Tenant {
	return func(t *testing.T) *tenancy.Tenant {
		t.Helper()
		ident := testenv.RandomName("note-")
		tn, err := b.lifecycle.Provision(context.Background(), &tenancy.Tenant{ID: "id-" + ident, Identifier: ident, Name: "Test"})
		if err != nil {
			t.Fatalf("provision: %v", err)
		}
		return tn
	}
}

func TestNoteStoreSQLite(t *testing.T) {
	t.Parallel()
	b := openTestBackend(t, Config{DataDir: t.TempDir(), TenantStore: service.StoreDB, SeedDemo: true})
	testNoteStore(t, storeFixture{store: b.notes, newTenant: b.provisioner(t)})
}

// postgresConfig returns a configuration on a fresh database: requests as
// testenv.AppRole (not superuser, NOBYPASSRLS, owns nothing), migrations as
// the superuser.
func postgresConfig(t *testing.T) (Config, string) {
	t.Helper()
	dsn := testenv.NewDatabase(t)
	testenv.EnsureRole(t, testenv.AppRole)
	return Config{
		DatabaseURL:          testenv.WithUser(dsn, testenv.AppRole),
		MigrationDatabaseURL: dsn,
		TenantStore:          service.StoreDB,
		SeedDemo:             true,
	}, dsn
}

// TestPostgres shares one database between its subtests: creating one is
// slow.
func TestPostgres(t *testing.T) {
	t.Parallel()
	cfg, superDSN := postgresConfig(t)
	b := openTestBackend(t, cfg)
	t.Run("NoteStore", func(t *testing.T) {
		t.Parallel()
		testNoteStore(t, storeFixture{store: b.notes, newTenant: b.provisioner(t)})
	})
	t.Run("RowLevelSecurity", func(t *testing.T) {
		t.Parallel()
		testRowLevelSecurity(t, b, cfg, superDSN)
	})
	t.Run("ConcurrentTenantsOnASmallPool", func(t *testing.T) {
		t.Parallel()
		small := cfg
		small.DatabaseURL = testenv.WithParam(cfg.DatabaseURL, "pool_max_conns", "2")
		testConcurrentTenants(t, openTestBackend(t, small))
	})
}

// testRowLevelSecurity checks the notes table as the database sees it: the
// rows carry the tenant, and the tenant role sees and writes only the
// tenant it is set to, or nothing when none is set.
func testRowLevelSecurity(t *testing.T, b *backend, cfg Config, superDSN string) {
	ctx := t.Context()
	acmeT, err := b.tenants.Get(ctx, acmeID)
	if err != nil {
		t.Fatal(err)
	}
	n, err := b.notes.Create(ctx, acmeT, NewNote{Title: "RLS", Body: "row"})
	if err != nil {
		t.Fatal(err)
	}
	super := testenv.Pool(t, superDSN)

	var stored string
	if err := super.QueryRow(ctx, "SELECT tenant_id FROM notes WHERE id = $1", n.ID).Scan(&stored); err != nil || stored != acmeID {
		t.Fatalf("stored tenant_id = %q, %v; want %s", stored, err, acmeID)
	}

	// asTenantRole runs fn in a transaction as the tenant role, with
	// app.tenant_id set to tenantID unless it is empty.
	asTenantRole := func(tenantID string, fn func(tx pgx.Tx) error) error {
		return pgx.BeginFunc(ctx, super, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT set_config('role', $1, true)", postgres.DefaultRole); err != nil {
				return err
			}
			if tenantID != "" {
				if _, err := tx.Exec(ctx, "SELECT set_config('app.tenant_id', $1, true)", tenantID); err != nil {
					return err
				}
			}
			return fn(tx)
		})
	}
	count := func(tenantID string) int {
		var c int
		if err := asTenantRole(tenantID, func(tx pgx.Tx) error { return tx.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&c) }); err != nil {
			t.Fatalf("count as %q: %v", tenantID, err)
		}
		return c
	}
	if c := count(""); c != 0 {
		t.Fatalf("no tenant set: sees %d rows, want 0", c)
	}
	if c := count(globexID); c != 0 {
		t.Fatalf("globex sees %d rows, want 0", c)
	}
	if c := count(acmeID); c != 1 {
		t.Fatalf("acme sees %d rows, want 1", c)
	}
	pgCode := func(err error) string {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return pgErr.Code
		}
		return fmt.Sprint(err)
	}
	err = asTenantRole("", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO notes (title) VALUES ('orphan')")
		return err
	})
	// tenant_id's default is NULL without a tenant: the policy or the NOT
	// NULL constraint refuses the row, whichever PostgreSQL checks first.
	if code := pgCode(err); code != "42501" && code != "23502" {
		t.Fatalf("insert without a tenant: %v, want a policy or NOT NULL violation", err)
	}
	err = asTenantRole(globexID, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO notes (tenant_id, title) VALUES ($1, 'planted')", acmeID)
		return err
	})
	if pgCode(err) != "42501" { // insufficient_privilege: the policy's WITH CHECK
		t.Fatalf("insert into another tenant: %v, want a policy violation", err)
	}
	err = asTenantRole(globexID, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE notes SET title = 'taken' WHERE id = $1", n.ID)
		if err == nil && tag.RowsAffected() != 0 {
			return fmt.Errorf("updated %d rows", tag.RowsAffected())
		}
		return err
	})
	if err != nil {
		t.Fatalf("update of another tenant's row: %v", err)
	}

	// The application role is not exempt either: without a tenant it
	// reads nothing.
	app := testenv.Pool(t, cfg.DatabaseURL)
	var c int
	if err := app.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&c); err == nil && c != 0 || err != nil && pgCode(err) != "42501" {
		t.Fatalf("application role without a tenant: count %d, %v; want nothing", c, err)
	}

	report, err := b.doctor(ctx)
	if err != nil {
		t.Fatalf("doctor: %v", err)
	}
	if len(report.Findings) != 0 {
		t.Fatalf("doctor findings: %v", report.Findings)
	}
}

// testConcurrentTenants runs many tenants at once over b, whose pool has two
// connections, so that each connection serves tenant after tenant: no
// request may see or write another tenant's notes.
func testConcurrentTenants(t *testing.T, b *backend) {
	newTenant := b.provisioner(t)
	tenants := make([]*tenancy.Tenant, 8)
	for i := range tenants {
		tenants[i] = newTenant(t)
	}
	const perTenant = 10
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, len(tenants)*perTenant)
	for _, tn := range tenants {
		for i := range perTenant {
			wg.Go(func() {
				n, err := b.notes.Create(ctx, tn, NewNote{Title: fmt.Sprintf("%s %d", tn.Identifier, i)})
				if err != nil {
					errs <- err
					return
				}
				if n.TenantID != tn.ID {
					errs <- fmt.Errorf("note of %s stored for %s", tn.ID, n.TenantID)
				}
				list, err := b.notes.List(ctx, tn, Page{Limit: 100})
				if err != nil {
					errs <- err
					return
				}
				for _, l := range list {
					if l.TenantID != tn.ID || !strings.HasPrefix(l.Title, tn.Identifier+" ") {
						errs <- fmt.Errorf("%s sees %+v", tn.ID, l)
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, tn := range tenants {
		list, err := b.notes.List(ctx, tn, Page{Limit: 100})
		if err != nil || len(list) != perTenant {
			t.Fatalf("%s has %d notes, %v; want %d", tn.ID, len(list), err, perTenant)
		}
	}
}

// TestPostgresMigrationMatchesLibrary keeps the SQL migration in step with
// what the library would emit: the tenant_id column and the RLS statements.
func TestPostgresMigrationMatchesLibrary(t *testing.T) {
	t.Parallel()
	b, err := migrationFiles.ReadFile("migrations/postgres/00001_notes.sql")
	if err != nil {
		t.Fatal(err)
	}
	sql := string(b)
	want := append([]string{postgres.TenantIDColumn}, postgres.EnableRLS("notes")[:3]...)
	for _, stmt := range want {
		if !strings.Contains(sql, stmt) {
			t.Errorf("migration lacks %q", stmt)
		}
	}
}

// TestSQLiteRestartKeepsNotes restarts on the same DATA_DIR with the
// in-memory tenant store, as `go run` twice does: the seeds are provisioned
// again with the same IDs and find their files and notes.
func TestSQLiteRestartKeepsNotes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := Config{DataDir: dir, TenantStore: service.StoreMemory, SeedDemo: true}
	b := openTestBackend(t, cfg)
	acmeT, err := b.tenants.Get(t.Context(), acmeID)
	if err != nil {
		t.Fatal(err)
	}
	n, err := b.notes.Create(t.Context(), acmeT, NewNote{Title: "survives"})
	if err != nil {
		t.Fatal(err)
	}
	b.close()
	for _, f := range []string{"acme-corp.db", "globex.db", journalFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}

	b2 := openTestBackend(t, cfg)
	got, err := b2.notes.Get(t.Context(), acmeT, n.ID)
	if err != nil || got != n {
		t.Fatalf("after restart: %+v, %v; want %+v", got, err, n)
	}
	globexT, _ := b2.tenants.Get(t.Context(), globexID)
	if list, err := b2.notes.List(t.Context(), globexT, Page{Limit: 10}); err != nil || len(list) != 0 {
		t.Fatalf("globex lists %+v, %v", list, err)
	}
}

// TestSeedIsIdempotent opens the backend twice on one database: the second
// start finds the seeds and leaves them (and a suspension) alone.
func TestSeedIsIdempotent(t *testing.T) {
	t.Parallel()
	cfg := Config{DataDir: t.TempDir(), TenantStore: service.StoreDB, SeedDemo: true}
	b := openTestBackend(t, cfg)
	if _, err := b.lifecycle.Suspend(t.Context(), globexID, "testing"); err != nil {
		t.Fatal(err)
	}
	b.close()
	b2 := openTestBackend(t, cfg)
	list, err := b2.tenants.List(t.Context(), tenancy.ListParams{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tn := range list {
		got = append(got, tn.Identifier+"="+string(tn.Status))
	}
	if want := []string{"acme-corp=active", "globex=suspended"}; !slices.Equal(got, want) {
		t.Fatalf("tenants after restart %v, want %v", got, want)
	}
}
