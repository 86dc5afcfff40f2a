package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The test application (internal/testapp) is built once per test run.
var (
	buildOnce sync.Once
	buildDir  string
	appPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func testapp(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "admin-testapp-")
		if buildErr != nil {
			return
		}
		appPath = filepath.Join(buildDir, "testapp")
		// go test puts $GOROOT/bin first in PATH.
		out, err := exec.Command("go", "build", "-o", appPath, "./internal/testapp").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build ./admin/internal/testapp: %v", buildErr)
	}
	return appPath
}

// appDB is a fresh database for the test application.
type appDB struct {
	dsn  string
	pool *pgxpool.Pool
}

func newAppDB(t *testing.T) *appDB {
	t.Helper()
	dsn := testenv.NewDatabase(t)
	return &appDB{dsn: dsn, pool: testenv.Pool(t, dsn, func(c *pgxpool.Config) { c.MaxConns = 2 })}
}

// run runs the test application against the database with extra
// environment variables ("KEY=value").
func (d *appDB) run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testapp(t), args...)
	for _, kv := range os.Environ() {
		k := strings.SplitN(kv, "=", 2)[0]
		if k == "DATABASE_URL" || k == "REDIS_URL" || k == "TENANT_STORE" || strings.HasPrefix(k, "TESTAPP_") {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	if d != nil {
		cmd.Env = append(cmd.Env, "DATABASE_URL="+d.dsn)
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run testapp %v: %v", args, err)
	}
	return result{bin: "testapp", code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// v1 provisions tenants with the first migration only.
var v1 = []string{"TESTAPP_MIGRATIONS=1"}

func (d *appDB) exists(t *testing.T, query string, args ...any) bool {
	t.Helper()
	var ok bool
	if err := d.pool.QueryRow(context.Background(), "SELECT EXISTS ("+query+")", args...).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func (d *appDB) hasSchema(t *testing.T, schema string) bool {
	t.Helper()
	return d.exists(t, "SELECT FROM pg_namespace WHERE nspname = $1", schema)
}

func (d *appDB) hasTable(t *testing.T, schema, table string) bool {
	t.Helper()
	return d.exists(t, "SELECT FROM pg_tables WHERE schemaname = $1 AND tablename = $2", schema, table)
}

func (d *appDB) status(t *testing.T, identifier string) tenancy.Status {
	t.Helper()
	var s string
	if err := d.pool.QueryRow(context.Background(), "SELECT status FROM tenancy.tenants WHERE identifier = $1", identifier).Scan(&s); err != nil {
		t.Fatalf("status of %s: %v", identifier, err)
	}
	return tenancy.Status(s)
}

func TestAppLifecycle(t *testing.T) {
	t.Parallel()
	d := newAppDB(t)

	// Bad input opens nothing: not even the store's schema appears.
	d.run(t, v1, "tenants", "create", "--identifier", "Acme", "--name", "Acme").wantError(t, 2, `invalid tenant identifier "Acme"`)
	if d.hasSchema(t, "tenancy") {
		t.Fatal("a usage error touched the database")
	}

	r := d.run(t, v1, "tenants", "create", "--identifier", "acme", "--name", "Acme", "--tier", "starter", "--domain", "acme.example.com")
	r.wantOK(t)
	if !regexp.MustCompile(`^created acme \(id [0-9a-f-]{36}, status active\)\nits custom domains resolve once verified: run "testapp tenants domain list acme" for the DNS records to publish\n$`).MatchString(r.stdout) {
		t.Errorf("create printed %q", r.stdout)
	}
	if !d.hasSchema(t, "tenant_acme") || !d.hasTable(t, "tenant_acme", "notes") || d.status(t, "acme") != tenancy.StatusActive {
		t.Fatal("create did not provision the tenant's schema and migrate it")
	}
	d.run(t, v1, "tenants", "create", "--identifier", "beta", "--name", "Beta").wantOK(t)
	d.run(t, v1, "tenants", "create", "--identifier", "acme", "--name", "Again").wantError(t, 1, `tenant identifier "acme" is already taken`)

	r = d.run(t, nil, "migrate")
	r.wantOK(t)
	if rows, _, sum := migrateTable(t, r.stdout); rows["acme"] != "1->2 migrated" || rows["beta"] != "1->2 migrated" || !strings.HasPrefix(sum, "2 targets: 2 migrated in ") {
		t.Errorf("migrate output:\n%s", r.stdout)
	}
	if !d.hasTable(t, "tenant_acme", "tags") || !d.hasTable(t, "tenant_beta", "tags") {
		t.Error("migrate did not apply the second migration")
	}
	r = d.run(t, nil, "migrate")
	r.wantOK(t)
	if !regexp.MustCompile(`(?m)^2 targets: 2 skipped in \S+$`).MatchString(r.stdout) {
		t.Errorf("second migrate run is not all skipped:\n%s", r.stdout)
	}

	r = d.run(t, nil, "migrate", "status", "--json")
	r.wantOK(t)
	var status migrate.Report
	if err := json.Unmarshal([]byte(r.stdout), &status); err != nil {
		t.Fatal(err)
	}
	if status.Latest != 2 || len(status.Results) != 2 || status.Count(migrate.StatusCurrent) != 2 {
		t.Errorf("migrate status: %+v", status)
	}

	testenv.EnsureRole(t, testenv.AppRole)
	r = d.run(t, []string{"TESTAPP_APP_ROLE=" + testenv.AppRole}, "doctor")
	r.wantOK(t)
	if !strings.Contains(r.stdout, "no findings") {
		t.Errorf("doctor on provisioned tenants:\n%s", r.stdout)
	}

	d.run(t, nil, "tenants", "purge", "acme").wantError(t, 1, `tenant "acme" is active: delete it first`)
	d.run(t, nil, "tenants", "delete", "acme").wantOK(t)
	r = d.run(t, nil, "tenants", "purge", "acme")
	r.wantOK(t)
	if r.stdout != "purged acme\n" {
		t.Errorf("purge printed %q", r.stdout)
	}
	if d.hasSchema(t, "tenant_acme") || d.exists(t, "SELECT FROM tenancy.tenants WHERE identifier = 'acme'") ||
		d.exists(t, "SELECT FROM tenancy.tenant_domains WHERE domain = 'acme.example.com'") ||
		d.exists(t, "SELECT FROM tenancy.migration_targets WHERE target = 'schema/tenant_acme'") {
		t.Error("purge left something of the tenant")
	}
	if !d.hasSchema(t, "tenant_beta") || d.status(t, "beta") != tenancy.StatusActive {
		t.Error("purge touched another tenant")
	}
	d.run(t, nil, "tenants", "show", "acme").wantError(t, 1, `tenant "acme" not found`)
}

func TestAppMigrateFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newAppDB(t)
	for _, id := range []string{"acme", "bad-co", "zeta"} {
		d.run(t, v1, "tenants", "create", "--identifier", id, "--name", id).wantOK(t)
	}
	// The second migration creates tags; one tenant already has one.
	if _, err := d.pool.Exec(ctx, "CREATE TABLE tenant_bad_co.tags (x int)"); err != nil {
		t.Fatal(err)
	}

	r := d.run(t, nil, "migrate", "--dry-run")
	r.wantOK(t)
	if rows, _, sum := migrateTable(t, r.stdout); len(rows) != 3 || !strings.HasPrefix(sum, "3 targets: 3 pending in ") || d.hasTable(t, "tenant_acme", "tags") {
		t.Errorf("dry run:\n%s", r.stdout)
	}

	r = d.run(t, nil, "migrate", "--concurrency", "2")
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	if r.stderr != "testapp: migrate: 1 of 3 targets failed: bad-co (run \"testapp migrate\" again to retry them)\n" {
		t.Errorf("stderr %q", r.stderr)
	}
	if rows, errs, sum := migrateTable(t, r.stdout); rows["bad-co"] != "1->1 failed" ||
		!regexp.MustCompile(`^migration 002_tags\.sql: .*"tags" already exists`).MatchString(errs["bad-co"]) ||
		!strings.HasPrefix(sum, "3 targets: 2 migrated, 1 failed in ") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if !d.hasTable(t, "tenant_acme", "notes") || !d.hasTable(t, "tenant_acme", "tags") || !d.hasTable(t, "tenant_zeta", "tags") {
		t.Error("the failed tenant stopped the others")
	}

	r = d.run(t, nil, "migrate", "--json")
	if r.code != 1 || !strings.Contains(r.stderr, "failed: bad-co") {
		t.Errorf("rerun: exit %d, stderr %q", r.code, r.stderr)
	}
	var report migrate.Report
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("migrate --json: %v\n%s", err, r.stdout)
	}
	failed := report.Failed()
	if len(failed) != 1 || failed[0].Identifier != "bad-co" || !strings.Contains(failed[0].Error, "tags") || report.Count(migrate.StatusSkipped) != 2 {
		t.Errorf("rerun report: %+v", report)
	}

	if _, err := d.pool.Exec(ctx, "DROP TABLE tenant_bad_co.tags"); err != nil {
		t.Fatal(err)
	}
	r = d.run(t, nil, "migrate", "--tenant", "bad-co")
	r.wantOK(t)
	if rows, _, _ := migrateTable(t, r.stdout); len(rows) != 1 || rows["bad-co"] != "1->2 migrated" {
		t.Errorf("migrate --tenant:\n%s", r.stdout)
	}
	d.run(t, nil, "migrate", "--tenant", "nope").wantError(t, 1, `tenant "nope" not found`)
}

// TestAppMigrateCanary runs migrate --canary over a fleet where one canary
// tenant fails: the rollout halts, the failed tenant is named, and the held
// tenant is left untouched.
func TestAppMigrateCanary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newAppDB(t)
	for _, id := range []string{"acme", "bad-co", "zeta"} {
		d.run(t, v1, "tenants", "create", "--identifier", id, "--name", id).wantOK(t)
	}
	if _, err := d.pool.Exec(ctx, "CREATE TABLE tenant_bad_co.tags (x int)"); err != nil {
		t.Fatal(err)
	}
	d.run(t, nil, "migrate", "--canary", "2", "--max-failure-rate", "2").wantError(t, 2, "migrate: --canary must not be negative and --max-failure-rate must be from 0 to 1")
	r := d.run(t, nil, "migrate", "--canary", "2")
	if r.code != 1 || !strings.Contains(r.stderr, "1 of 3 targets failed: bad-co") || !strings.Contains(r.stderr, "rollout halted by the canary, 1 targets held") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if rows, _, sum := migrateTable(t, r.stdout); rows["zeta"] != "0->0 held" ||
		!strings.HasPrefix(sum, "3 targets: 1 migrated, 1 failed, 1 held in ") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if !d.hasTable(t, "tenant_acme", "tags") || d.hasTable(t, "tenant_zeta", "tags") {
		t.Error("the canary did not migrate acme, or the rollout went on to zeta")
	}
}

// TestAppInMemoryStore runs the application with its tenant store in
// memory: every tenant write is refused with the one line, and nothing is
// created.
func TestAppInMemoryStore(t *testing.T) {
	t.Parallel()
	d := newAppDB(t)
	memory := []string{"TENANT_STORE=memory"}
	const line = "testapp: the tenant store is in memory, so this change could not reach a running server; configure a persistent tenant store (such as TENANT_STORE=db)\n"
	for _, args := range [][]string{
		{"tenants", "create", "--identifier", "acme", "--name", "Acme"},
		{"tenants", "suspend", "acme"},
		{"tenants", "activate", "acme"},
		{"tenants", "delete", "acme"},
		{"tenants", "purge", "--force", "acme"},
	} {
		if r := d.run(t, memory, args...); r.code != 1 || r.stdout != "" || r.stderr != line {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	if d.hasSchema(t, "tenant_acme") {
		t.Error("a refused create provisioned a schema")
	}
	r := d.run(t, memory, "tenants", "list")
	r.wantOK(t)
	if r.stdout != "no tenants\n" {
		t.Errorf("list %q", r.stdout)
	}
}

func TestAppFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"unreachable database", []string{"DATABASE_URL=postgres://postgres@127.0.0.1:1/x"}, []string{"migrate"}, 1, "testapp: cannot reach the database: dial tcp 127.0.0.1:1: connect: connection refused\n"},
		{"panic", []string{"TESTAPP_PANIC=open", "DATABASE_URL=postgres://postgres@127.0.0.1:1/x"}, []string{"doctor"}, 1, "testapp: internal error: planted panic while opening\n"},
		{"not an admin command", nil, []string{"serve"}, 2, "testapp: this test application only runs admin commands (try: testapp help)\n"},
		{"bad concurrency", nil, []string{"migrate", "--concurrency", "0x"}, 2, "testapp: migrate: invalid argument \"0x\" for \"--concurrency\" flag: strconv.ParseInt: parsing \"0x\": invalid syntax (run \"testapp migrate --help\")\n"},
		{"unknown command", nil, []string{"bogus"}, 2, "testapp: unknown command \"bogus\" (run \"testapp help\")\n"},
		{"move without a destination", nil, []string{"tenants", "move", "acme"}, 2, "testapp: tenants move: give --to SERVER, --strategy schema|rls, or both\n"},
		{"move to an unknown strategy", nil, []string{"tenants", "move", "acme", "--strategy", "database"}, 2, "testapp: --strategy must be schema or rls, not \"database\"\n"},
		{"export without a file", nil, []string{"tenants", "export", "acme"}, 2, "testapp: tenants export: --output FILE is required (- for stdout)\n"},
		{"set-tier without a tier", nil, []string{"tenants", "set-tier", "acme"}, 2, "testapp: tenants set-tier: missing TIER (usage: testapp tenants set-tier IDENTIFIER TIER [flags])\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var d *appDB
			r := d.run(t, tt.env, tt.args...)
			if r.code != tt.code || r.stderr != tt.want || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, nothing and %q", r.code, r.stdout, r.stderr, tt.code, tt.want)
			}
		})
	}
}
