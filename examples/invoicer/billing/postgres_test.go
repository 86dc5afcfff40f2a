package billing

import (
	"errors"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var rolesOnce sync.Once

// setupRoles creates the cluster-wide roles, as an administrator would: the
// application and owner login roles, and the tenant role granted to both.
func setupRoles(t *testing.T) {
	t.Helper()
	testenv.Admin(t)
	rolesOnce.Do(func() {
		testenv.EnsureRole(t, testenv.AppRole)
		testenv.EnsureRole(t, testenv.OwnerRole)
		testenv.AdminExec(t, `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenancy_tenant') THEN
    CREATE ROLE tenancy_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END $$`)
		testenv.AdminExec(t, "GRANT tenancy_tenant TO tenancy_app, tenancy_owner")
	})
}

// pgEnv is a fresh database where tenant schemas are created and migrated
// by the owner role (as MIGRATION_DATABASE_URL would), and the store runs
// as the application role, which owns nothing (as DATABASE_URL would).
type pgEnv struct {
	super   *pgxpool.Pool
	admin   *postgres.Schema // the owner's provider: schemas and migrations
	app     *postgres.Schema // the application's provider: requests
	store   *PostgresStore
	tenants *memstore.Store
	journal *migrate.PostgresJournal
	runner  *migrate.Runner
}

func newPGEnv(t *testing.T, migrations fs.FS) *pgEnv {
	t.Helper()
	setupRoles(t)
	ctx := t.Context()
	superDSN := testenv.NewDatabase(t)
	super := testenv.Pool(t, superDSN)
	db := pgx.Identifier{super.Config().ConnConfig.Database}.Sanitize()
	if _, err := super.Exec(ctx, "GRANT CREATE, CONNECT ON DATABASE "+db+" TO "+testenv.OwnerRole); err != nil {
		t.Fatal(err)
	}
	owner := testenv.Pool(t, testenv.WithParam(testenv.WithUser(superDSN, testenv.OwnerRole), "pool_max_conns", "8"))
	admin, err := postgres.NewSchema(ctx, owner, postgres.SchemaConfig{Config: postgres.Config{Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	app, err := postgres.NewSchema(ctx, testenv.Pool(t, testenv.WithUser(superDSN, testenv.AppRole)), postgres.SchemaConfig{Config: postgres.Config{Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	journal, err := migrate.NewPostgresJournal(ctx, owner, "tenancy")
	if err != nil {
		t.Fatal(err)
	}
	e := &pgEnv{super: super, admin: admin, app: app, tenants: memstore.New(), journal: journal}
	e.runner = e.newRunner(t, migrations)
	if e.store, err = NewPostgres(app); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *pgEnv) newRunner(t *testing.T, migrations fs.FS) *migrate.Runner {
	t.Helper()
	r, err := migrate.New(migrate.Config{Migrations: migrations, Targets: e.admin, Store: e.tenants, Journal: e.journal, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *pgEnv) newTenant(t *testing.T) *tenancy.Tenant {
	t.Helper()
	return provision(t, e.tenants, e.admin, e.runner, e.runner.Latest())
}

func (e *pgEnv) schema(t *testing.T, tn *tenancy.Tenant) string {
	t.Helper()
	name, err := e.admin.SchemaName(tn)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func pgMigrations(t *testing.T) fs.FS {
	t.Helper()
	m, err := Migrations(isolation.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPostgres shares one database between its subtests: creating one is
// slow.
func TestPostgres(t *testing.T) {
	t.Parallel()
	e := newPGEnv(t, pgMigrations(t))
	// Store returns once its parallel subtests are done, so that the
	// doctor in SealedSchemas finds no tenant schema half migrated.
	t.Run("Store", func(t *testing.T) {
		testStore(t, fixture{store: e.store, newTenant: e.newTenant})
	})
	t.Run("SealedSchemas", func(t *testing.T) {
		testSealedSchemas(t, e)
	})
}

// testSealedSchemas names another tenant's schema outright, in a tenant
// statement as the application role: the boundary policies the migrations
// sealed its tables with show nothing and refuse every write.
func testSealedSchemas(t *testing.T, e *pgEnv) {
	ctx := t.Context()
	a, b := e.newTenant(t), e.newTenant(t)
	bc := mustCustomer(t, e.store, b, "B's customer", "secret@b.example")
	mustInvoice(t, e.store, b, oneItem(bc.ID, 100))
	other := pgx.Identifier{e.schema(t, b)}.Sanitize()

	// The rows are there, for the superuser.
	var stored int
	if err := e.super.QueryRow(ctx, "SELECT count(*) FROM "+other+".customers").Scan(&stored); err != nil || stored != 1 {
		t.Fatalf("superuser counts %d customers in %s, %v; want 1", stored, other, err)
	}

	asA := postgres.For(e.app, a)
	for _, table := range []string{"customers", "invoices", "line_items", "invoice_counter"} {
		var n int
		err := asA.QueryRow(ctx, "SELECT count(*) FROM "+other+"."+table).Scan(&n)
		if err == nil && n != 0 || err != nil && sqlState(err) != "42501" {
			t.Errorf("A reads %s.%s: %d rows, %v; want nothing", other, table, n, err)
		}
	}
	for _, stmt := range []string{
		"INSERT INTO " + other + ".customers (name, email) VALUES ('planted', 'planted@a.example')",
		"UPDATE " + other + ".customers SET name = 'taken'",
		"DELETE FROM " + other + ".line_items",
		"UPDATE " + other + ".invoice_counter SET next_number = 1000",
	} {
		tag, err := asA.Exec(ctx, stmt)
		if err == nil && tag.RowsAffected() != 0 || err != nil && sqlState(err) != "42501" {
			t.Errorf("%s as A: %v, %v; want nothing changed", stmt, tag, err)
		}
	}
	// B's data is as it was: one customer, and its next number follows.
	if list, err := e.store.ListCustomers(ctx, b, Page{}); err != nil || len(list) != 1 || list[0] != bc {
		t.Fatalf("B's customers %+v, %v", list, err)
	}
	if inv := mustInvoice(t, e.store, b, oneItem(bc.ID, 1)); inv.Number != "INV-0002" {
		t.Fatalf("B's next invoice is %s, want INV-0002", inv.Number)
	}

	// The isolation doctor finds nothing wrong with the tenant schemas or
	// the application role.
	report, err := postgres.Doctor(ctx, e.super, postgres.DoctorConfig{AppRole: testenv.AppRole, ExcludeSchemas: []string{"tenancy"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range report.Findings {
		t.Errorf("doctor: %v", f)
	}
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// TestPostgresLaterMigration adds a migration after tenants exist and have
// data: one run of the migration runner brings every tenant schema to it,
// while reads go on.
func TestPostgresLaterMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	full := pgMigrations(t)
	first, err := fs.ReadFile(full, "00001_invoicing.sql")
	if err != nil {
		t.Fatal(err)
	}
	e := newPGEnv(t, fstest.MapFS{"00001_invoicing.sql": {Data: first}})

	type tenantData struct {
		tn  *tenancy.Tenant
		inv Invoice
	}
	var data []tenantData
	for range 3 {
		tn := provision(t, e.tenants, e.admin, e.runner, 1)
		c := mustCustomer(t, e.store, tn, "Bob", "bob@example.com")
		inv := mustInvoice(t, e.store, tn, oneItem(c.ID, 100))
		if inv, err = e.store.Transition(ctx, tn, inv.ID, ActionIssue); err != nil {
			t.Fatal(err)
		}
		data = append(data, tenantData{tn, inv})
	}

	// Read every tenant's invoices over and over while the migration runs.
	var (
		reads  atomic.Int64
		stop   = make(chan struct{})
		done   = make(chan error, 1)
		warmed = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			for _, d := range data {
				list, err := e.store.ListInvoices(ctx, d.tn, InvoiceFilter{Status: StatusIssued})
				if err != nil || len(list) != 1 || list[0].ID != d.inv.ID {
					done <- errors.Join(errors.New("read during migration failed"), err)
					return
				}
			}
			if reads.Add(1) == 1 {
				close(warmed)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	<-warmed
	report, err := e.newRunner(t, full).Up(ctx, migrate.Options{})
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if len(report.Results) != len(data) {
		t.Fatalf("migrated %d targets, want %d", len(report.Results), len(data))
	}
	for _, r := range report.Results {
		if r.Status != migrate.StatusMigrated || r.From != 1 || r.To != 2 {
			t.Errorf("%s: %s from %d to %d, want migrated from 1 to 2", r.Target, r.Status, r.From, r.To)
		}
	}
	for _, d := range data {
		schema := e.schema(t, d.tn)
		rows, err := e.super.Query(ctx, "SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname", schema)
		if err != nil {
			t.Fatal(err)
		}
		indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"customers_name_idx", "invoices_status_number_idx"} {
			if !slices.Contains(indexes, want) {
				t.Errorf("%s lacks %s: %v", schema, want, indexes)
			}
		}
		got, err := e.store.GetInvoice(ctx, d.tn, d.inv.ID)
		if err != nil || got.Number != d.inv.Number || got.Status != StatusIssued {
			t.Errorf("%s after migration: %+v, %v", schema, got, err)
		}
	}
	t.Logf("%d rounds of reads during the migration", reads.Load())
}
