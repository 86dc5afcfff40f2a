package admin_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/go-tenancy/tenancy/lifecycle"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/go-tenancy/tenancy/store/sqlitestore"
)

// The SQLite migration set: v1 has notes, v2 adds tags.
var (
	sqliteV1 = fstest.MapFS{
		"001_notes.sql": {Data: []byte("-- +goose Up\nCREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL);\n")},
	}
	sqliteV2 = fstest.MapFS{
		"001_notes.sql": sqliteV1["001_notes.sql"],
		"002_tags.sql":  {Data: []byte("-- +goose Up\nCREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n")},
	}
)

// fileApp is an application with a file per tenant on SQLite: a real
// lifecycle manager and migration runner, in-process.
type fileApp struct {
	store    *memstore.Store
	provider *sqlite.Provider
	journal  *migrate.SQLiteJournal
}

func newFileApp(t *testing.T) *fileApp {
	t.Helper()
	dir := t.TempDir()
	provider, err := sqlite.New(sqlite.Config{Dir: filepath.Join(dir, "tenants")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(provider.Close)
	db, err := sql.Open("sqlite", sqlitestore.DSN(filepath.Join(dir, "journal.db"), 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	journal, err := migrate.NewSQLiteJournal(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return &fileApp{store: memstore.New(), provider: provider, journal: journal}
}

// harness returns a CLI whose Open builds the app with migration set set.
func (a *fileApp) harness(t *testing.T, set fs.FS) *harness {
	t.Helper()
	return newHarness(t, func(_ context.Context, c admin.Connect) (*admin.Env, error) {
		quiet := slog.New(slog.DiscardHandler)
		runner, err := migrate.New(migrate.Config{
			Migrations: set, Targets: a.provider, Store: a.store, Journal: a.journal,
			Concurrency: c.Concurrency, Logger: quiet,
		})
		if err != nil {
			return nil, err
		}
		m, err := lifecycle.New(lifecycle.Config{Store: a.store, Provider: a.provider, Migrator: runner, Logger: quiet})
		if err != nil {
			return nil, err
		}
		return &admin.Env{Store: a.store, Persistent: true, Lifecycle: m, Migrator: runner, BaseDomain: "localhost"}, nil
	})
}

func (a *fileApp) tenant(t *testing.T, identifier string) *tenancy.Tenant {
	t.Helper()
	tn, err := a.store.GetByIdentifier(context.Background(), identifier)
	if err != nil {
		t.Fatalf("tenant %s: %v", identifier, err)
	}
	return tn
}

// hasTable reports whether the tenant's file has table.
func (a *fileApp) hasTable(t *testing.T, identifier, table string) bool {
	t.Helper()
	var n int
	err := a.provider.QueryRow(context.Background(), a.tenant(t, identifier),
		"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", table).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestCreateAndPurge(t *testing.T) {
	t.Parallel()
	app := newFileApp(t)
	h := app.harness(t, sqliteV1)

	r := h.run("tenants", "create", "--identifier", "acme-corp", "--name", "Acme Corp", "--tier", "starter",
		"--alias", "ACME", "--domain", "Acme.Example.com", "--id", "t-acme")
	r.wantOK(t)
	if r.stdout != "created acme-corp (id t-acme, status active)\n"+
		"its custom domains resolve once verified: run \"testcli tenants domain list acme-corp\" for the DNS records to publish\n" {
		t.Errorf("create printed %q", r.stdout)
	}
	tn := app.tenant(t, "acme-corp")
	if tn.Status != tenancy.StatusActive || tn.ID != "t-acme" || tn.Tier != "starter" || strings.Join(tn.Domains, ",") != "acme.example.com" || strings.Join(tn.Aliases, ",") != "acme" {
		t.Errorf("created %+v", tn)
	}
	if !app.hasTable(t, "acme-corp", "notes") {
		t.Error("provisioning did not migrate the tenant's file")
	}

	r = h.run("tenants", "create", "--json", "--identifier", "beta", "--name", "Beta", "--isolation", "database")
	r.wantOK(t)
	var created tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || created.Identifier != "beta" || created.Status != tenancy.StatusActive || created.Isolation != tenancy.IsolationDatabase || created.ID == "" {
		t.Errorf("create --json = %+v, %v", created, err)
	}

	h.run("tenants", "create", "--identifier", "acme-corp", "--name", "Again").wantError(t, admin.ExitFailure, `tenant identifier "acme-corp" is already taken`)
	h.run("tenants", "create", "--identifier", "acme-two", "--name", "Two", "--domain", "acme.example.com").wantError(t, admin.ExitFailure, `tenant domain "acme.example.com" is already taken`)
	h.run("tenants", "create", "--identifier", "acme-two", "--name", "Two", "--alias", "acme").wantError(t, admin.ExitFailure, `tenant alias "acme" is already taken`)
	h.run("tenants", "create", "--identifier", "acme-two", "--name", "Two", "--alias", "beta").wantError(t, admin.ExitFailure, `tenant alias "beta" is already taken`)
	h.run("tenants", "create", "--identifier", "acme", "--name", "Two").wantError(t, admin.ExitFailure, `tenant identifier "acme" is already taken`)
	// The takeover of the issue: a custom domain under the base domain.
	h.run("tenants", "create", "--identifier", "acme-two", "--name", "Two", "--domain", "acme.localhost").wantError(t, admin.ExitFailure, "a custom domain cannot be the base domain or a name under it")
	if _, err := app.store.GetByIdentifier(context.Background(), "acme-two"); !errors.Is(err, tenancy.ErrTenantNotFound) {
		t.Errorf("refused creates left acme-two: %v", err)
	}

	// An active tenant is purged only on purpose.
	h.run("tenants", "purge", "acme-corp").wantError(t, admin.ExitFailure, `tenant "acme-corp" is active: delete it first (tenants delete acme-corp), or pass --force`)
	if app.tenant(t, "acme-corp").Status != tenancy.StatusActive {
		t.Fatal("refused purge changed the tenant")
	}
	r = h.run("tenants", "delete", "acme-corp")
	r.wantOK(t)
	r = h.run("tenants", "purge", "acme-corp")
	r.wantOK(t)
	if r.stdout != "purged acme-corp\n" {
		t.Errorf("purge printed %q", r.stdout)
	}
	if _, err := app.store.GetByIdentifier(context.Background(), "acme-corp"); err == nil {
		t.Error("record left after purge")
	}
	if left, err := app.provider.Residue(context.Background(), tn); err != nil || len(left) > 0 {
		t.Errorf("left after purge: %v %v", left, err)
	}
	h.run("tenants", "purge", "acme-corp").wantError(t, admin.ExitFailure, `tenant "acme-corp" not found`)

	// Without a terminal, an active tenant is purged only with --yes too.
	h.run("tenants", "purge", "--force", "beta").wantError(t, admin.ExitFailure, `tenant "beta" is active: purging it needs --yes as well as --force`)
	r = h.run("tenants", "purge", "beta", "--force", "--yes", "--json")
	r.wantOK(t)
	var purged tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &purged); err != nil || purged.Identifier != "beta" {
		t.Errorf("purge --json = %+v, %v", purged, err)
	}
	if n, _ := app.store.Count(context.Background(), ""); n != 0 {
		t.Errorf("%d tenants left", n)
	}
}

func TestLifecycleTransitions(t *testing.T) {
	t.Parallel()
	app := newFileApp(t)
	h := app.harness(t, sqliteV1)
	h.run("tenants", "create", "--identifier", "acme", "--name", "Acme").wantOK(t)
	for _, step := range []struct {
		cmd    string
		status tenancy.Status
	}{{"suspend", tenancy.StatusSuspended}, {"activate", tenancy.StatusActive}, {"delete", tenancy.StatusDeleted}} {
		r := h.run("tenants", step.cmd, "acme")
		r.wantOK(t)
		if r.stdout != "acme is now "+string(step.status)+"\n" || app.tenant(t, "acme").Status != step.status {
			t.Errorf("%s: printed %q, status %s", step.cmd, r.stdout, app.tenant(t, "acme").Status)
		}
	}
}

// resultRow matches a row of migrate's table:
// "acme  file/acme  1  2  migrated  3ms  -", columns aligned.
var resultRow = regexp.MustCompile(`^([a-z0-9-]+) +(\S+) +(\d+) +(\d+) +([a-z]+) +[0-9.]+[µmn]?s +(.*)$`)

// migrateTable checks migrate's plain output: a header, a row per target
// with every column starting at the same offset, and a summary. It returns
// the rows by tenant as "from->to status", and the summary.
func migrateTable(t *testing.T, out string) (rows map[string]string, errs map[string]string, summary string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "TENANT ") {
		t.Fatalf("migrate printed no table:\n%s", out)
	}
	header := lines[0]
	cols := []int{}
	for _, name := range []string{"TARGET", "FROM", "TO", "STATUS", "DURATION", "ERROR"} {
		cols = append(cols, strings.Index(header, " "+name+" ")+1)
	}
	cols[len(cols)-1] = strings.Index(header, " ERROR") + 1
	rows, errs = map[string]string{}, map[string]string{}
	for _, l := range lines[1 : len(lines)-1] {
		m := resultRow.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("row %q does not match %s", l, resultRow)
		}
		for _, c := range cols {
			if c <= 0 || c >= len(l) || l[c-1] != ' ' || l[c] == ' ' {
				t.Errorf("row %q is not aligned with the header %q at column %d", l, header, c)
			}
		}
		rows[m[1]] = m[3] + "->" + m[4] + " " + m[5]
		errs[m[1]] = m[6]
	}
	return rows, errs, lines[len(lines)-1]
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	app := newFileApp(t)
	v1 := app.harness(t, sqliteV1)
	for _, id := range []string{"acme", "bad-co", "zeta"} {
		v1.run("tenants", "create", "--identifier", id, "--name", id).wantOK(t)
	}
	// A table the next migration creates, planted in one tenant's file.
	if _, err := app.provider.Exec(context.Background(), app.tenant(t, "bad-co"), "CREATE TABLE tags (x int)"); err != nil {
		t.Fatal(err)
	}
	v2 := app.harness(t, sqliteV2)

	r := v2.run("migrate", "--dry-run")
	r.wantOK(t)
	rows, _, sum := migrateTable(t, r.stdout)
	if rows["acme"] != "1->2 pending" || !strings.HasSuffix(sum, "(dry run: nothing applied)") || !strings.HasPrefix(sum, "3 targets: 3 pending in ") {
		t.Errorf("dry run printed:\n%s", r.stdout)
	}
	if app.hasTable(t, "acme", "tags") {
		t.Fatal("dry run applied a migration")
	}

	r = v2.run("migrate", "--concurrency", "2")
	if r.code != admin.ExitFailure {
		t.Errorf("migrate with a failed target exit %d, want 1", r.code)
	}
	r.wantOneLine(t, `migrate: 1 of 3 targets failed: bad-co (run "testcli migrate" again to retry them)`)
	rows, errs, sum := migrateTable(t, r.stdout)
	if want := map[string]string{"acme": "1->2 migrated", "bad-co": "1->1 failed", "zeta": "1->2 migrated"}; !equalMaps(rows, want) {
		t.Errorf("targets %v, want %v", rows, want)
	}
	if !strings.Contains(errs["bad-co"], "tags") || errs["acme"] != "-" {
		t.Errorf("errors %q", errs)
	}
	if !regexp.MustCompile(`^3 targets: 2 migrated, 1 failed in [0-9.]+[µm]?s$`).MatchString(sum) {
		t.Errorf("summary %q", sum)
	}
	if !app.hasTable(t, "acme", "tags") || !app.hasTable(t, "zeta", "tags") {
		t.Error("one tenant's failure stopped the others")
	}

	// The next run skips what is current and retries the failed tenant.
	r = v2.run("migrate", "--json")
	if r.code != admin.ExitFailure {
		t.Errorf("second run exit %d, want 1", r.code)
	}
	r.wantOneLine(t, "1 of 3 targets failed: bad-co")
	var report migrate.Report
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("migrate --json printed more than a report: %v\n%s", err, r.stdout)
	}
	if report.Latest != 2 || report.Count(migrate.StatusSkipped) != 2 || report.Count(migrate.StatusFailed) != 1 {
		t.Errorf("second run report %+v", report)
	}

	// Fixed, the failed tenant migrates and a further run does nothing.
	if _, err := app.provider.Exec(context.Background(), app.tenant(t, "bad-co"), "DROP TABLE tags"); err != nil {
		t.Fatal(err)
	}
	r = v2.run("migrate", "--tenant", "bad-co")
	r.wantOK(t)
	if rows, _, sum := migrateTable(t, r.stdout); len(rows) != 1 || rows["bad-co"] != "1->2 migrated" || !strings.HasPrefix(sum, "1 target: 1 migrated in ") {
		t.Errorf("migrate --tenant printed:\n%s", r.stdout)
	}
	r = v2.run("migrate")
	r.wantOK(t)
	if !strings.Contains(r.stdout, "3 targets: 3 skipped in ") {
		t.Errorf("no-op run printed:\n%s", r.stdout)
	}

	v2.run("migrate", "--tenant", "nope").wantError(t, admin.ExitFailure, `tenant "nope" not found`)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestMigrateStatus(t *testing.T) {
	t.Parallel()
	app := newFileApp(t)
	app.harness(t, sqliteV1).run("tenants", "create", "--identifier", "acme", "--name", "Acme").wantOK(t)
	v2 := app.harness(t, sqliteV2)

	r := v2.run("migrate", "status")
	r.wantOK(t)
	want := "TENANT  TARGET     VERSION  LATEST  STATUS   ERROR\n" +
		"acme    file/acme  1        2       pending  -\n" +
		"1 target: 1 pending\n"
	if r.stdout != want {
		t.Errorf("status printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	v2.run("migrate").wantOK(t)
	for _, args := range [][]string{{"migrate", "status", "--json"}, {"migrate", "--json", "status"}} {
		r = v2.run(args...)
		r.wantOK(t)
		var report migrate.Report
		if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if len(report.Results) != 1 || report.Results[0].Status != migrate.StatusCurrent || report.Results[0].From != 2 {
			t.Errorf("%v: %+v", args, report.Results)
		}
	}
}

// TestMigrateProgressBar checks the terminal output: a bar, failed targets
// above it, and the summary.
func TestMigrateProgressBar(t *testing.T) {
	t.Parallel()
	app := newFileApp(t)
	v1 := app.harness(t, sqliteV1)
	for _, id := range []string{"acme", "bad-co", "zeta"} {
		v1.run("tenants", "create", "--identifier", id, "--name", id).wantOK(t)
	}
	if _, err := app.provider.Exec(context.Background(), app.tenant(t, "bad-co"), "CREATE TABLE tags (x int)"); err != nil {
		t.Fatal(err)
	}
	v2 := app.harness(t, sqliteV2)
	v2.terminal = true
	r := v2.run("migrate")
	if r.code != admin.ExitFailure {
		t.Errorf("exit %d", r.code)
	}
	for _, w := range []string{"migrating", "100%", "(3/3", "\r", "bad-co  1 -> 1  failed", "3 targets: 2 migrated, 1 failed in "} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("terminal output does not contain %q:\n%q", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "acme  1 -> 2") {
		t.Errorf("terminal output lists targets that succeeded:\n%q", r.stdout)
	}

	// --json never draws the bar.
	r = v2.run("migrate", "--json")
	if !json.Valid([]byte(r.stdout)) {
		t.Errorf("migrate --json on a terminal printed %q", r.stdout)
	}
}
