package billing

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/go-tenancy/tenancy/store/memstore"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// sqliteFixture opens a file per tenant under a temporary directory, with
// tenants created and migrated as the app will: the tenant store lists
// them, the runner migrates each file.
func sqliteFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	p, err := sqlite.New(sqlite.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	journalDB, err := p.Open(filepath.Join(dir, "_migrations.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = journalDB.Close() })
	journal, err := migrate.NewSQLiteJournal(t.Context(), journalDB)
	if err != nil {
		t.Fatal(err)
	}
	migrations, err := Migrations(isolation.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	tenants := memstore.New()
	runner, err := migrate.New(migrate.Config{Migrations: migrations, Targets: p, Store: tenants, Journal: journal, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{
		store: NewSQLite(p),
		newTenant: func(t *testing.T) *tenancy.Tenant {
			t.Helper()
			return provision(t, tenants, p, runner, 2)
		},
	}
}

// provision creates a tenant in the tenant store and its storage, and
// migrates it to version want.
func provision(t *testing.T, tenants tenancy.Store, p isolation.Provider, runner *migrate.Runner, want int64) *tenancy.Tenant {
	t.Helper()
	ctx := context.Background()
	ident := testenv.RandomName("inv-")
	tn, err := tenants.Create(ctx, &tenancy.Tenant{ID: "id-" + ident, Identifier: ident, Name: "Test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Initialize(ctx, tn); err != nil {
		t.Fatal(err)
	}
	report, err := runner.Up(ctx, migrate.Options{Tenant: ident})
	if err != nil {
		t.Fatalf("migrate %s: %v", ident, err)
	}
	if len(report.Results) != 1 || report.Results[0].To != want {
		t.Fatalf("migrate %s: %+v, want version %d", ident, report.Results, want)
	}
	return tn
}

func TestSQLiteStore(t *testing.T) {
	t.Parallel()
	testStore(t, sqliteFixture(t))
}
