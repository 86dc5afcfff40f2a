package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgMigrations returns the first n of a PostgreSQL migration set whose
// tables carry the RLS policies, so that one set serves every strategy.
func pgMigrations(n int) fstest.MapFS {
	all := []string{
		"-- +goose Up\nCREATE TABLE notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), " + postgres.TenantIDColumn + ", title text NOT NULL);\n" +
			strings.Join(postgres.EnableRLS("notes"), ";\n") + ";\n-- +goose Down\nDROP TABLE notes;\n",
		"-- +goose Up\nCREATE TABLE tags (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), " + postgres.TenantIDColumn + ", name text NOT NULL);\n" +
			strings.Join(postgres.EnableRLS("tags"), ";\n") + ";\n-- +goose Down\nDROP TABLE tags;\n",
		"-- +goose Up\nALTER TABLE notes ADD COLUMN body text NOT NULL DEFAULT '';\n-- +goose Down\nALTER TABLE notes DROP COLUMN body;\n",
	}
	fsys := fstest.MapFS{}
	for i := range n {
		fsys[fmt.Sprintf("%03d_step.sql", i+1)] = &fstest.MapFile{Data: []byte(all[i])}
	}
	return fsys
}

func sqliteMigrations(n int) fstest.MapFS {
	all := []string{
		"-- +goose Up\nCREATE TABLE notes (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, title TEXT NOT NULL);\n-- +goose Down\nDROP TABLE notes;\n",
		"-- +goose Up\nCREATE TABLE tags (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL);\n-- +goose Down\nDROP TABLE tags;\n",
		"-- +goose Up\nALTER TABLE notes ADD COLUMN body TEXT NOT NULL DEFAULT '';\n-- +goose Down\nALTER TABLE notes DROP COLUMN body;\n",
	}
	fsys := fstest.MapFS{}
	for i := range n {
		fsys[fmt.Sprintf("%03d_step.sql", i+1)] = &fstest.MapFile{Data: []byte(all[i])}
	}
	return fsys
}

// countingTargets wraps a real provider and counts the targets opened.
type countingTargets struct {
	isolation.Migratable
	opened atomic.Int64
}

func (c *countingTargets) Targets(tenants []*tenancy.Tenant) ([]isolation.Target, error) {
	targets, err := c.Migratable.Targets(tenants)
	for i := range targets {
		open := targets[i].Open
		targets[i].Open = func(ctx context.Context) (*sql.DB, error) {
			c.opened.Add(1)
			return open(ctx)
		}
	}
	return targets, err
}

type pgEnv struct {
	dsn     string
	pool    *pgxpool.Pool
	store   *memstore.Store
	journal *migrate.PostgresJournal
	tenants []*tenancy.Tenant
}

func newPGEnv(t *testing.T, n int) *pgEnv {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.NewDatabase(t)
	pool := testenv.Pool(t, dsn, func(c *pgxpool.Config) { c.MaxConns = 8 })
	journal, err := migrate.NewPostgresJournal(ctx, pool, "tenancy")
	if err != nil {
		t.Fatal(err)
	}
	e := &pgEnv{dsn: dsn, pool: pool, store: memstore.New(), journal: journal}
	base := testenv.RandomName("m")
	for i := range n {
		tier := "starter"
		if i%2 == 0 {
			tier = "enterprise"
		}
		tn, err := e.store.Create(ctx, &tenancy.Tenant{Identifier: fmt.Sprintf("%s-%d", base, i), Name: "T", Tier: tier})
		if err != nil {
			t.Fatal(err)
		}
		e.tenants = append(e.tenants, tn)
	}
	return e
}

// strategy builds a migratable provider on the env's pool and initializes
// the tenants' storage, as provisioning would.
type strategy struct {
	name string
	open func(t *testing.T, e *pgEnv) isolation.Provider
}

var strategies = []strategy{
	{"rls", func(t *testing.T, e *pgEnv) isolation.Provider {
		p, err := postgres.NewRLS(context.Background(), e.pool, postgres.Config{})
		must(t, err)
		return p
	}},
	{"schema", func(t *testing.T, e *pgEnv) isolation.Provider {
		p, err := postgres.NewSchema(context.Background(), e.pool, postgres.SchemaConfig{})
		must(t, err)
		return initAll(t, p, e.tenants)
	}},
	{"database", func(t *testing.T, e *pgEnv) isolation.Provider {
		p, err := postgres.NewDatabase(context.Background(), e.pool, postgres.DatabaseConfig{})
		must(t, err)
		t.Cleanup(func() {
			for _, tn := range e.tenants {
				_ = p.Destroy(context.Background(), tn)
			}
			p.Close()
		})
		return initAll(t, p, e.tenants)
	}},
	{"hybrid", func(t *testing.T, e *pgEnv) isolation.Provider {
		ctx := context.Background()
		rls, err := postgres.NewRLS(ctx, e.pool, postgres.Config{})
		must(t, err)
		schema, err := postgres.NewSchema(ctx, e.pool, postgres.SchemaConfig{})
		must(t, err)
		h, err := isolation.NewHybrid(isolation.HybridConfig{
			Tiers:     map[string]tenancy.Isolation{"enterprise": tenancy.IsolationSchema},
			Default:   tenancy.IsolationRLS,
			Providers: map[tenancy.Isolation]isolation.Provider{tenancy.IsolationRLS: rls, tenancy.IsolationSchema: schema},
		})
		must(t, err)
		return initAll(t, h, e.tenants)
	}},
}

func initAll(t *testing.T, p isolation.Provider, tenants []*tenancy.Tenant) isolation.Provider {
	t.Helper()
	for _, tn := range tenants {
		must(t, p.Initialize(context.Background(), tn))
	}
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func runner(t *testing.T, fsys fstest.MapFS, targets isolation.Migratable, store tenancy.Store, journal migrate.Journal) *migrate.Runner {
	t.Helper()
	r, err := migrate.New(migrate.Config{Migrations: fsys, Targets: targets, Store: store, Journal: journal, Concurrency: 3})
	must(t, err)
	return r
}

// TestUpEveryStrategy migrates from empty, then to a newer version, for
// every strategy, and checks the tenant role can use what was created.
func TestUpEveryStrategy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := newPGEnv(t, 4)
			p := s.open(t, e)
			targets := &countingTargets{Migratable: p.(isolation.Migratable)}

			report, err := runner(t, pgMigrations(1), targets, e.store, e.journal).Up(ctx, migrate.Options{})
			must(t, err)
			if report.Latest != 1 || report.Count(migrate.StatusMigrated) != len(report.Results) {
				t.Fatalf("first run: %+v", report.Results)
			}
			for _, tn := range e.tenants {
				if _, err := p.Exec(ctx, tn, "INSERT INTO notes (title) VALUES ('v1')"); err != nil {
					t.Fatalf("%s after v1: %v", tn.Identifier, err)
				}
			}

			r3 := runner(t, pgMigrations(3), targets, e.store, e.journal)
			report, err = r3.Up(ctx, migrate.Options{})
			must(t, err)
			for _, res := range report.Results {
				if res.Status != migrate.StatusMigrated || res.From != 1 || res.To != 3 {
					t.Fatalf("second run: %+v", res)
				}
			}
			for _, tn := range e.tenants {
				var n int
				if err := p.QueryRow(ctx, tn, "SELECT count(*) FROM notes WHERE body = ''").Scan(&n); err != nil || n != 1 {
					t.Fatalf("%s after v3: %d rows, %v", tn.Identifier, n, err)
				}
				if _, err := p.Exec(ctx, tn, "INSERT INTO tags (name) VALUES ('t')"); err != nil {
					t.Fatalf("%s tags: %v", tn.Identifier, err)
				}
			}

			// Nothing to do: the journal answers, no target is opened.
			opened := targets.opened.Load()
			report, err = r3.Up(ctx, migrate.Options{})
			must(t, err)
			if report.Count(migrate.StatusSkipped) != len(report.Results) || targets.opened.Load() != opened {
				t.Fatalf("no-op run opened %d targets: %+v", targets.opened.Load()-opened, report.Results)
			}
			// Verify opens them all and finds them current.
			report, err = r3.Up(ctx, migrate.Options{Verify: true})
			must(t, err)
			if report.Count(migrate.StatusCurrent) != len(report.Results) {
				t.Fatalf("verify run: %+v", report.Results)
			}
		})
	}
}

// TestOneTenantFails: a planted conflict in one tenant schema fails that
// tenant only; the report names it; the next run, after the fix, finishes
// it and skips the rest.
func TestOneTenantFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newPGEnv(t, 5)
	p, err := postgres.NewSchema(ctx, e.pool, postgres.SchemaConfig{})
	must(t, err)
	initAll(t, p, e.tenants)
	bad := e.tenants[2]
	badSchema, _ := p.SchemaName(bad)
	must(t, execSQL(e.pool, "CREATE TABLE "+badSchema+".tags (planted int)"))

	r := runner(t, pgMigrations(3), p, e.store, e.journal)
	report, err := r.Up(ctx, migrate.Options{})
	if !errors.Is(err, migrate.ErrFailed) {
		t.Fatalf("want ErrFailed, got %v", err)
	}
	failed := report.Failed()
	if len(failed) != 1 || failed[0].Identifier != bad.Identifier || !strings.Contains(failed[0].Error, "002_step.sql") || failed[0].To != 1 {
		t.Fatalf("failed: %+v", failed)
	}
	if report.Count(migrate.StatusMigrated) != 4 {
		t.Fatalf("others: %+v", report.Results)
	}
	status, err := r.Status(ctx)
	must(t, err)
	if len(status.Failed()) != 1 || status.Count(migrate.StatusCurrent) != 4 {
		t.Fatalf("status: %+v", status.Results)
	}

	must(t, execSQL(e.pool, "DROP TABLE "+badSchema+".tags"))
	report, err = r.Up(ctx, migrate.Options{})
	must(t, err)
	if report.Count(migrate.StatusSkipped) != 4 || report.Count(migrate.StatusMigrated) != 1 {
		t.Fatalf("rerun: %+v", report.Results)
	}
	for _, res := range report.Results {
		if res.Identifier == bad.Identifier && (res.From != 1 || res.To != 3) {
			t.Fatalf("rerun of the failed tenant: %+v", res)
		}
	}
}

func execSQL(pool *pgxpool.Pool, sql string) error {
	_, err := pool.Exec(context.Background(), sql)
	return err
}

// TestConcurrentRuns: two runners (two pools, as two processes would have)
// start at once on the same database; both finish, each migration is
// applied once per target.
func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newPGEnv(t, 6)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		pool := testenv.Pool(t, e.dsn, func(c *pgxpool.Config) { c.MaxConns = 4 })
		p, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{})
		must(t, err)
		initAll(t, p, e.tenants)
		journal, err := migrate.NewPostgresJournal(ctx, pool, "tenancy")
		must(t, err)
		r := runner(t, pgMigrations(3), p, e.store, journal)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.Up(ctx, migrate.Options{Verify: true})
		}()
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	p, _ := postgres.NewSchema(ctx, e.pool, postgres.SchemaConfig{})
	for _, tn := range e.tenants {
		name, _ := p.SchemaName(tn)
		var applied int
		must(t, e.pool.QueryRow(ctx, "SELECT count(*) FROM "+name+".goose_db_version WHERE version_id > 0").Scan(&applied))
		if applied != 3 {
			t.Fatalf("%s: %d migrations recorded, want 3", name, applied)
		}
	}
}

func TestDryRunAndTenantFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newPGEnv(t, 3)
	p, err := postgres.NewSchema(ctx, e.pool, postgres.SchemaConfig{})
	must(t, err)
	initAll(t, p, e.tenants)
	r := runner(t, pgMigrations(2), p, e.store, e.journal)

	report, err := r.Up(ctx, migrate.Options{DryRun: true})
	must(t, err)
	if report.Count(migrate.StatusPending) != 3 {
		t.Fatalf("dry run: %+v", report.Results)
	}
	var tables int
	must(t, e.pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'notes'").Scan(&tables))
	if tables != 0 {
		t.Fatalf("dry run created %d tables", tables)
	}

	one := e.tenants[1]
	report, err = r.Up(ctx, migrate.Options{Tenant: one.Identifier})
	must(t, err)
	if len(report.Results) != 1 || report.Results[0].Identifier != one.Identifier || report.Results[0].Status != migrate.StatusMigrated {
		t.Fatalf("one tenant: %+v", report.Results)
	}
	if _, err := r.Up(ctx, migrate.Options{Tenant: "no-such-tenant"}); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Fatalf("unknown tenant: %v", err)
	}

	must(t, r.Forget(ctx, one))
	status, err := r.Status(ctx)
	must(t, err)
	if status.Count(migrate.StatusPending) != 3 {
		t.Fatalf("after Forget: %+v", status.Results)
	}
}

// TestSQLite runs the same flows on SQLite files with the SQLite journal.
func TestSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	p, err := sqlite.New(sqlite.Config{Dir: dir})
	must(t, err)
	t.Cleanup(p.Close)
	jdb, err := p.Open(dir + "/_journal.db")
	must(t, err)
	t.Cleanup(func() { _ = jdb.Close() })
	journal, err := migrate.NewSQLiteJournal(ctx, jdb)
	must(t, err)
	store := memstore.New()
	var tenants []*tenancy.Tenant
	for i := range 4 {
		tn, err := store.Create(ctx, &tenancy.Tenant{Identifier: fmt.Sprintf("lite-%d", i), Name: "T"})
		must(t, err)
		tenants = append(tenants, tn)
	}
	targets := &countingTargets{Migratable: p}

	report, err := runner(t, sqliteMigrations(1), targets, store, journal).Up(ctx, migrate.Options{})
	must(t, err)
	if report.Count(migrate.StatusMigrated) != 4 {
		t.Fatalf("v1: %+v", report.Results)
	}
	// Plant a conflict in one file: it fails alone, and recovers after the fix.
	if _, err := p.Exec(ctx, tenants[1], "CREATE TABLE tags (planted INTEGER)"); err != nil {
		t.Fatal(err)
	}
	r3 := runner(t, sqliteMigrations(3), targets, store, journal)
	report, err = r3.Up(ctx, migrate.Options{})
	if !errors.Is(err, migrate.ErrFailed) || len(report.Failed()) != 1 || report.Failed()[0].Identifier != "lite-1" {
		t.Fatalf("planted failure: %v %+v", err, report.Results)
	}
	if _, err := p.Exec(ctx, tenants[1], "DROP TABLE tags"); err != nil {
		t.Fatal(err)
	}
	report, err = r3.Up(ctx, migrate.Options{})
	must(t, err)
	if report.Count(migrate.StatusMigrated) != 1 || report.Count(migrate.StatusSkipped) != 3 {
		t.Fatalf("rerun: %+v", report.Results)
	}
	for _, tn := range tenants {
		if _, err := p.Exec(ctx, tn, "INSERT INTO notes (tenant_id, title, body) VALUES (?, 'x', 'y')", tn.ID); err != nil {
			t.Fatalf("%s: %v", tn.Identifier, err)
		}
	}
	opened := targets.opened.Load()
	if _, err := r3.Up(ctx, migrate.Options{}); err != nil || targets.opened.Load() != opened {
		t.Fatalf("no-op run opened targets (%v)", err)
	}

	// Two runs at once on the same files finish, each applying once.
	for _, tn := range tenants {
		must(t, journal.Delete(ctx, "file/"+tn.Identifier))
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r3.Up(ctx, migrate.Options{})
		}()
	}
	wg.Wait()
	must(t, errors.Join(errs...))
}

// TestGrantsRepairedAndVersionTableClosed: every opened target gets its
// grants again (a failed grant step is repaired by the next run), and tenant
// statements cannot reach the migration version table.
func TestGrantsRepairedAndVersionTableClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newPGEnv(t, 1)
	p, err := postgres.NewSchema(ctx, e.pool, postgres.SchemaConfig{})
	must(t, err)
	initAll(t, p, e.tenants)
	tn := e.tenants[0]
	r := runner(t, pgMigrations(1), p, e.store, e.journal)
	_, err = r.Up(ctx, migrate.Options{})
	must(t, err)

	var n int
	err = p.QueryRow(ctx, tn, "SELECT count(*) FROM "+isolation.VersionTable).Scan(&n)
	if code := pgErrCode(err); code != "42501" {
		t.Fatalf("tenant read the version table: %d rows, %v", n, err)
	}

	name, _ := p.SchemaName(tn)
	must(t, execSQL(e.pool, "REVOKE ALL ON "+name+".notes FROM "+postgres.DefaultRole))
	if _, err := p.Exec(ctx, tn, "INSERT INTO notes (title) VALUES ('x')"); pgErrCode(err) != "42501" {
		t.Fatalf("the revoke did not take: %v", err)
	}
	_, err = r.Up(ctx, migrate.Options{Verify: true})
	must(t, err)
	if _, err := p.Exec(ctx, tn, "INSERT INTO notes (title) VALUES ('x')"); err != nil {
		t.Fatalf("grants were not repaired: %v", err)
	}
}

func pgErrCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// TestForgetAndResidue: Residue names a tenant's journal records, and only
// its own; after Forget there are none.
func TestForgetAndResidue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	p, err := sqlite.New(sqlite.Config{Dir: dir})
	must(t, err)
	t.Cleanup(p.Close)
	jdb, err := p.Open(dir + "/_journal.db")
	must(t, err)
	t.Cleanup(func() { _ = jdb.Close() })
	journal, err := migrate.NewSQLiteJournal(ctx, jdb)
	must(t, err)
	store := memstore.New()
	gone, err := store.Create(ctx, &tenancy.Tenant{Identifier: "gone", Name: "Gone"})
	must(t, err)
	keep, err := store.Create(ctx, &tenancy.Tenant{Identifier: "keep", Name: "Keep"})
	must(t, err)
	r := runner(t, sqliteMigrations(1), p, store, journal)
	_, err = r.Up(ctx, migrate.Options{})
	must(t, err)

	left, err := r.Residue(ctx, gone)
	must(t, err)
	if len(left) != 1 || !strings.HasPrefix(left[0], "migration journal record ") || !strings.Contains(left[0], "gone") {
		t.Fatalf("Residue = %q, want the one record of gone", left)
	}
	must(t, r.Forget(ctx, gone))
	if left, err := r.Residue(ctx, gone); err != nil || len(left) != 0 {
		t.Fatalf("after Forget: %q, %v", left, err)
	}
	if left, err := r.Residue(ctx, keep); err != nil || len(left) != 1 {
		t.Fatalf("the other tenant's record: %q, %v", left, err)
	}
	must(t, r.Forget(ctx, gone)) // twice is fine
}

// plantFailure makes migration 002 (CREATE TABLE tags) fail in tn's schema,
// as a tenant whose schema drifted would.
func plantFailure(t *testing.T, e *pgEnv, p *postgres.Schema, tn *tenancy.Tenant) {
	t.Helper()
	name, err := p.SchemaName(tn)
	must(t, err)
	_, err = e.pool.Exec(context.Background(), "CREATE TABLE "+name+".tags (drifted int)")
	must(t, err)
}

// TestCanary plants a failing migration in some tenants and checks that a
// canary run stops the rollout when its failure rate is exceeded, naming
// the failed tenants and opening none of the held ones, and goes on when
// the failures stay within the rate.
func TestCanary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		opts migrate.Options
		// plant lists the tenants (by index) whose migration 002 fails.
		plant      []int
		wantHalt   bool
		wantOpened int64
		// wantFailed lists the tenants (by index) reported failed.
		wantFailed []int
	}{
		{name: "canary fails, rollout halts", opts: migrate.Options{Canary: 3}, plant: []int{1, 5},
			wantHalt: true, wantOpened: 3, wantFailed: []int{1}},
		{name: "failures within the rate, rollout goes on", opts: migrate.Options{Canary: 3, MaxFailureRate: 0.5}, plant: []int{1, 5},
			wantOpened: 6, wantFailed: []int{1, 5}},
		{name: "two of three fail, above the rate", opts: migrate.Options{Canary: 3, MaxFailureRate: 0.5}, plant: []int{0, 2, 4},
			wantHalt: true, wantOpened: 3, wantFailed: []int{0, 2}},
		{name: "tier canary fails", opts: migrate.Options{CanaryTier: "starter"}, plant: []int{3},
			wantHalt: true, wantOpened: 3, wantFailed: []int{3}},
		{name: "tier canary passes", opts: migrate.Options{CanaryTier: "starter", Canary: 2}, plant: []int{4},
			wantOpened: 6, wantFailed: []int{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newPGEnv(t, 6)
			p, err := postgres.NewSchema(ctx, e.pool, postgres.SchemaConfig{})
			must(t, err)
			initAll(t, p, e.tenants)
			for _, i := range tt.plant {
				plantFailure(t, e, p, e.tenants[i])
			}
			targets := &countingTargets{Migratable: p}
			report, err := runner(t, pgMigrations(3), targets, e.store, e.journal).Up(ctx, tt.opts)
			if report == nil {
				t.Fatalf("no report: %v", err)
			}
			if !errors.Is(err, migrate.ErrFailed) || errors.Is(err, migrate.ErrHalted) != tt.wantHalt {
				t.Fatalf("err = %v, want ErrFailed, and ErrHalted: %v", err, tt.wantHalt)
			}
			if got := targets.opened.Load(); got != tt.wantOpened {
				t.Errorf("opened %d targets, want %d", got, tt.wantOpened)
			}
			var failed []string
			for _, res := range report.Failed() {
				failed = append(failed, res.Identifier)
				if !strings.Contains(res.Error, "002_step.sql") {
					t.Errorf("%s: error %q does not name the migration", res.Identifier, res.Error)
				}
			}
			var want []string
			for _, i := range tt.wantFailed {
				want = append(want, e.tenants[i].Identifier)
				if !strings.Contains(err.Error(), e.tenants[i].Identifier) {
					t.Errorf("error %q does not name %s", err, e.tenants[i].Identifier)
				}
			}
			if strings.Join(failed, ",") != strings.Join(want, ",") {
				t.Errorf("failed %v, want %v", failed, want)
			}
			held := report.Count(migrate.StatusHeld)
			if tt.wantHalt != (held > 0) || held+int(tt.wantOpened) != len(e.tenants) {
				t.Errorf("%d held, %d opened of %d", held, tt.wantOpened, len(e.tenants))
			}
			// A held tenant was never touched: its schema has no version
			// table.
			for _, res := range report.Results {
				if res.Status != migrate.StatusHeld {
					continue
				}
				var n int
				must(t, e.pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'tenant_' || replace($1, '-', '_') AND tablename = $2", res.Identifier, isolation.VersionTable).Scan(&n))
				if n != 0 {
					t.Errorf("held tenant %s has a version table", res.Identifier)
				}
			}
			// The next run without a canary migrates the held ones.
			if tt.wantHalt {
				report, _ = runner(t, pgMigrations(3), targets, e.store, e.journal).Up(ctx, migrate.Options{})
				if report.Count(migrate.StatusHeld) != 0 || len(report.Failed()) != len(tt.plant) {
					t.Errorf("rerun: %d held, %d failed, want 0 and %d", report.Count(migrate.StatusHeld), len(report.Failed()), len(tt.plant))
				}
			}
		})
	}
}

func TestCanaryBadOptions(t *testing.T) {
	t.Parallel()
	r, err := migrate.New(migrate.Config{Migrations: pgMigrations(1), Targets: &countingTargets{}, Store: memstore.New(), Journal: &migrate.PostgresJournal{}})
	must(t, err)
	for _, opts := range []migrate.Options{{Canary: -1}, {Canary: 1, MaxFailureRate: 1.5}, {MaxFailureRate: -0.1}} {
		if _, err := r.Up(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "rate must be from 0 to 1") {
			t.Errorf("Up(%+v) = %v, want a clear error", opts, err)
		}
	}
}

// TestSessionReset migrates schema targets on borrowed pool connections
// with migrations that change their session (a setting, a temporary
// table, the role), and checks that the connection goes back to the pool
// as it was: none of it, nor the target's search path, tenant or
// asynchronous commits, reaches the next borrower.
func TestSessionReset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newPGEnv(t, 3)
	pool := testenv.Pool(t, e.dsn, func(c *pgxpool.Config) { c.MaxConns = 1 })
	p, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{})
	must(t, err)
	initAll(t, p, e.tenants)
	var before string
	must(t, pool.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&before))
	fsys := fstest.MapFS{"001_leaky.sql": &fstest.MapFile{Data: []byte(`-- +goose Up
CREATE TABLE notes (id int);
SELECT set_config('app.leak', 'yes', false);
CREATE TEMP TABLE leak (x int);
SET ROLE ` + postgres.DefaultRole + `;
RESET ROLE;
SET SESSION statement_timeout = '1234';
`)}}
	journal, err := migrate.NewPostgresJournal(ctx, e.pool, "tenancy")
	must(t, err)
	report, err := runner(t, fsys, p, e.store, journal).Up(ctx, migrate.Options{})
	must(t, err)
	if report.Count(migrate.StatusMigrated) != 3 {
		t.Fatalf("migrated %d of 3: %+v", report.Count(migrate.StatusMigrated), report.Results)
	}
	var path, leak, tenant, sync, timeout string
	var temps int
	must(t, pool.QueryRow(ctx, `SELECT current_setting('search_path'), coalesce(current_setting('app.leak', true), ''),
	coalesce(current_setting('`+postgres.TenantSetting+`', true), ''), current_setting('synchronous_commit'), current_setting('statement_timeout'),
	(SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relname = 'leak')`).Scan(&path, &leak, &tenant, &sync, &timeout, &temps))
	if path != before || leak != "" || tenant != "" || sync != "on" || timeout == "1234ms" || temps != 0 {
		t.Errorf("the pooled connection kept session state: search_path %q (was %q), app.leak %q, tenant %q, synchronous_commit %s, statement_timeout %s, %d temp tables",
			path, before, leak, tenant, sync, timeout, temps)
	}
}

// TestSmallSharedPool runs the journal's locks and the targets on one pool
// with fewer connections than the run needs at once: the run slows down
// but completes.
func TestSmallSharedPool(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newPGEnv(t, 4)
	pool := testenv.Pool(t, e.dsn, func(c *pgxpool.Config) { c.MaxConns = 2 })
	p, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{})
	must(t, err)
	initAll(t, p, e.tenants)
	journal, err := migrate.NewPostgresJournal(ctx, pool, "tenancy")
	must(t, err)
	r, err := migrate.New(migrate.Config{Migrations: pgMigrations(2), Targets: p, Store: e.store, Journal: journal, Concurrency: 3})
	must(t, err)
	report, err := r.Up(ctx, migrate.Options{})
	must(t, err)
	if report.Count(migrate.StatusMigrated) != 4 {
		t.Fatalf("migrated %d of 4", report.Count(migrate.StatusMigrated))
	}
}
