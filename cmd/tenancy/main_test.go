package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/pgstore"
	"github.com/go-tenancy/tenancy/store/sqlitestore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The binary is built once per test run, into buildDir.
var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary returns the path of the tenancy binary built from this package.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "tenancy-cli-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "tenancy")
		// go test puts $GOROOT/bin first in PATH.
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build ./cmd/tenancy: %v", buildErr)
	}
	return binPath
}

// result is what one run of the binary produced.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the binary with args and, on top of the test's environment
// without the variables the CLI reads, env ("KEY=value").
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "DATABASE_URL", "DATABASE_URLS", "REDIS_URL", "TENANCY_CACHE_PREFIX", "TENANCY_BASE_DOMAIN", "TENANCY_APP_ROLE":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run tenancy %v: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

func (r result) wantOK(t *testing.T) {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing (stdout %q)", r.code, r.stderr, r.stdout)
	}
}

// wantError checks the exit status, an empty stdout and stderr being
// exactly want.
func (r result) wantError(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code || r.stdout != "" || r.stderr != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d, nothing and %q", r.code, r.stdout, r.stderr, code, want)
	}
}

// pg is a fresh PostgreSQL database with the tenant store's tables.
type pg struct {
	dsn   string
	env   []string
	pool  *pgxpool.Pool
	store *pgstore.Store
}

func setup(t *testing.T) *pg {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.NewDatabase(t)
	pool := testenv.Pool(t, dsn, func(c *pgxpool.Config) { c.MaxConns = 4 })
	if err := pgstore.Migrate(ctx, pool, pgstore.Config{}); err != nil {
		t.Fatal(err)
	}
	store, err := pgstore.New(ctx, pool, pgstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &pg{dsn: dsn, env: []string{"DATABASE_URL=" + dsn}, pool: pool, store: store}
}

func (p *pg) seed(t *testing.T, tenants ...*tenancy.Tenant) {
	t.Helper()
	for _, tn := range tenants {
		status := tn.Status
		created, err := p.store.Create(context.Background(), tn)
		if err != nil {
			t.Fatal(err)
		}
		if status != "" && status != tenancy.StatusActive {
			if _, err := p.store.SetStatus(context.Background(), created.ID, status, tn.StatusReason); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func (p *pg) status(t *testing.T, identifier string) (tenancy.Status, string) {
	t.Helper()
	tn, err := p.store.GetByIdentifier(context.Background(), identifier)
	if err != nil {
		t.Fatal(err)
	}
	return tn.Status, tn.StatusReason
}

func TestTenantsOnPostgres(t *testing.T) {
	t.Parallel()
	p := setup(t)
	p.seed(t,
		&tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme Corp", Tier: "enterprise", Aliases: []string{"acme"}, Domains: []string{"acme.example.com"}},
		&tenancy.Tenant{ID: "t-beta", Identifier: "beta", Name: "Beta", Tier: "starter", Status: tenancy.StatusSuspended, StatusReason: "unpaid"},
	)

	r := run(t, p.env, "tenants", "list")
	r.wantOK(t)
	want := `IDENTIFIER  NAME       STATUS     TIER        ISOLATION  ALIASES  DOMAINS           ID
acme-corp   Acme Corp  active     enterprise  -          acme     acme.example.com  t-acme
beta        Beta       suspended  starter     -          -        -                 t-beta
`
	if r.stdout != want {
		t.Errorf("list:\n%s\nwant:\n%s", r.stdout, want)
	}

	r = run(t, p.env, "tenants", "list", "--status", "suspended", "--json")
	r.wantOK(t)
	var listed []tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 1 || listed[0].ID != "t-beta" || listed[0].StatusReason != "unpaid" {
		t.Errorf("list --status suspended --json = %+v, %v", listed, err)
	}

	r = run(t, p.env, "tenants", "show", "acme-corp")
	r.wantOK(t)
	for _, w := range []string{"id:         t-acme\n", "name:       Acme Corp\n", "status:     active\n", "aliases:    acme\n", "domains:    acme.example.com\n"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("show does not contain %q:\n%s", w, r.stdout)
		}
	}
	r = run(t, p.env, "tenants", "show", "--json", "beta")
	r.wantOK(t)
	var shown tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || shown.ID != "t-beta" || shown.Status != tenancy.StatusSuspended {
		t.Errorf("show --json = %+v, %v", shown, err)
	}

	// Status changes reach the database.
	steps := []struct {
		args   []string
		out    string
		status tenancy.Status
		reason string
	}{
		{[]string{"tenants", "suspend", "--reason", "chargeback", "acme-corp"}, "acme-corp is now suspended\n", tenancy.StatusSuspended, "chargeback"},
		{[]string{"tenants", "activate", "acme-corp"}, "acme-corp is now active\n", tenancy.StatusActive, ""},
		{[]string{"tenants", "delete", "acme-corp"}, "acme-corp is now deleted\n", tenancy.StatusDeleted, ""},
	}
	for _, s := range steps {
		r := run(t, p.env, s.args...)
		r.wantOK(t)
		if r.stdout != s.out {
			t.Errorf("%v printed %q, want %q", s.args, r.stdout, s.out)
		}
		if st, reason := p.status(t, "acme-corp"); st != s.status || (s.reason != "" && reason != s.reason) {
			t.Errorf("after %v: %s (%q), want %s", s.args, st, reason, s.status)
		}
	}
	r = run(t, p.env, "tenants", "activate", "--json", "beta")
	r.wantOK(t)
	var activated tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &activated); err != nil || activated.Status != tenancy.StatusActive {
		t.Errorf("activate --json = %+v, %v", activated, err)
	}
}

// TestBadInput runs every kind of bad input against a real database: one
// line on stderr, nothing on stdout, the right exit status.
func TestDomainsOnPostgres(t *testing.T) {
	t.Parallel()
	p := setup(t)
	p.seed(t,
		&tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme Corp", Aliases: []string{"acme"}},
		&tenancy.Tenant{ID: "t-bravo", Identifier: "bravo", Name: "Bravo"},
	)
	env := append(p.env, "TENANCY_BASE_DOMAIN=example.com")

	run(t, p.env, "tenants", "domain", "add", "bravo", "app.bravo.test").wantError(t, 1,
		"tenancy: custom domains need the service's base domain, so that none is added under it: this binary sets no Env.BaseDomain\n")
	run(t, env, "tenants", "domain", "add", "bravo", "acme.example.com").wantError(t, 1,
		"tenancy: invalid tenant domain: a custom domain cannot be the base domain or a name under it: those are tenants' subdomains (use an alias)\n")
	run(t, env, "tenants", "alias", "add", "bravo", "acme").wantError(t, 1, "tenancy: tenant alias \"acme\" is already taken\n")
	run(t, env, "tenants", "alias", "add", "bravo", "acme-corp").wantError(t, 1, "tenancy: tenant alias \"acme-corp\" is already taken\n")

	r := run(t, env, "tenants", "domain", "add", "bravo", "app.bravo.test")
	r.wantOK(t)
	l, err := p.store.ListDomains(context.Background(), "t-bravo")
	if err != nil || len(l) != 1 || l[0].Verified() {
		t.Fatalf("ListDomains = %+v, %v", l, err)
	}
	if !strings.Contains(r.stdout, "_tenancy-challenge.app.bravo.test. TXT \""+l[0].Token+"\"") {
		t.Errorf("domain add printed %q", r.stdout)
	}
	run(t, env, "tenants", "domain", "add", "acme-corp", "app.bravo.test").wantError(t, 1, "tenancy: tenant domain \"app.bravo.test\" is already taken\n")
	r = run(t, env, "tenants", "domain", "list", "--json", "bravo")
	r.wantOK(t)
	var listed []tenancy.Domain
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 1 || listed[0].Token != l[0].Token {
		t.Errorf("domain list --json = %+v, %v", listed, err)
	}
	run(t, env, "tenants", "domain", "remove", "bravo", "app.bravo.test").wantOK(t)
	if l, err := p.store.ListDomains(context.Background(), "t-bravo"); err != nil || len(l) != 0 {
		t.Errorf("after remove: %+v, %v", l, err)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	p := setup(t)
	p.seed(t, &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme Corp"})
	unreachable := []string{"DATABASE_URL=postgres://postgres@127.0.0.1:1/x"}
	const refused = "tenancy: cannot reach the database: dial tcp 127.0.0.1:1: connect: connection refused\n"
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"unknown tenant", p.env, []string{"tenants", "show", "nope"}, 1, "tenancy: tenant \"nope\" not found\n"},
		{"unknown tenant suspend", p.env, []string{"tenants", "suspend", "nope"}, 1, "tenancy: tenant \"nope\" not found\n"},
		{"invalid identifier", p.env, []string{"tenants", "show", "Acme_Corp"}, 2, "tenancy: invalid tenant identifier \"Acme_Corp\" (3 to 56 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-')\n"},
		{"hostile identifier", p.env, []string{"tenants", "delete", "a\"; DROP SCHEMA public; --"}, 2, "tenancy: invalid tenant identifier \"a\\\"; DROP SCHEMA public; --\" (3 to 56 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-')\n"},
		{"unreachable database list", unreachable, []string{"tenants", "list"}, 1, refused},
		{"unreachable database show", unreachable, []string{"tenants", "show", "acme-corp"}, 1, refused},
		{"unreachable database doctor", unreachable, []string{"doctor"}, 1, refused},
		{"unreachable database by flag", nil, []string{"tenants", "list", "--database-url", "postgres://postgres@127.0.0.1:1/x"}, 1, refused},
		{"unreachable database by global flag", nil, []string{"--database-url", "postgres://postgres@127.0.0.1:1/x", "doctor"}, 1, refused},
		{"database unset", nil, []string{"tenants", "list"}, 1, "tenancy: set DATABASE_URL (a postgres:// URL, or sqlite:PATH) or pass --database-url\n"},
		{"database URL scheme", []string{"DATABASE_URL=mysql://root:secret@db/x"}, []string{"tenants", "list"}, 1, "tenancy: DATABASE_URL must be a postgres:// URL, sqlite:PATH or a path ending in .db\n"},
		{"database URL garbage", []string{"DATABASE_URL=postgres://u:s3cret@host:notaport/x"}, []string{"tenants", "list"}, 1, "tenancy: DATABASE_URL is not a valid PostgreSQL URL\n"},
		{"unknown command", p.env, []string{"tenant", "list"}, 2, "tenancy: unknown command \"tenant\" (run \"tenancy help\")\n"},
		{"unknown subcommand", p.env, []string{"tenants", "rename", "acme-corp"}, 2, "tenancy: tenants: unknown command \"rename\" (run \"tenancy help tenants\")\n"},
		{"unknown flag", p.env, []string{"tenants", "list", "--all"}, 2, "tenancy: tenants list: unknown flag: --all (run \"tenancy tenants list --help\")\n"},
		{"missing argument", p.env, []string{"tenants", "suspend"}, 2, "tenancy: tenants suspend: missing IDENTIFIER (usage: tenancy tenants suspend IDENTIFIER [flags])\n"},
		{"missing command", p.env, nil, 2, "tenancy: missing command (run \"tenancy help\")\n"},
		{"argument after --", p.env, []string{"tenants", "show", "--", "acme-corp", "--json"}, 2, "tenancy: tenants show: unexpected argument \"--json\" (usage: tenancy tenants show IDENTIFIER [flags])\n"},
		{"unknown command bogus", p.env, []string{"bogus"}, 2, "tenancy: unknown command \"bogus\" (run \"tenancy help\")\n"},
		{"setup without app role", p.env, []string{"setup"}, 1, "tenancy: setup: set TENANCY_APP_ROLE to the role the service's requests connect as\n"},
		{"create needs the app", p.env, []string{"tenants", "create", "--identifier", "new-co", "--name", "New"}, 1, "tenancy: tenants create needs the application's binary: provisioning creates the tenant's storage, which only the application knows\n"},
		{"purge needs the app", p.env, []string{"tenants", "purge", "acme-corp"}, 1, "tenancy: tenants purge needs the application's binary: purging removes the tenant's storage, which only the application knows\n"},
		{"migrate needs the app", p.env, []string{"migrate"}, 1, "tenancy: this binary has no migrations\n"},
		{"unreachable redis", append([]string{"REDIS_URL=redis://127.0.0.1:1/0"}, p.env...), []string{"tenants", "suspend", "acme-corp"}, 1, "tenancy: cannot reach Redis: dial tcp 127.0.0.1:1: connect: connection refused\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			run(t, tt.env, tt.args...).wantError(t, tt.code, tt.want)
		})
	}
	if st, _ := p.status(t, "acme-corp"); st != tenancy.StatusActive {
		t.Errorf("bad input changed the tenant to %s", st)
	}
	if n, _ := p.store.Count(context.Background(), ""); n != 1 {
		t.Errorf("bad input left %d tenants, want 1", n)
	}
}

func TestJSONErrorsLeaveStdoutEmpty(t *testing.T) {
	t.Parallel()
	p := setup(t)
	run(t, p.env, "tenants", "show", "--json", "nope").wantError(t, 1, "tenancy: tenant \"nope\" not found\n")
	r := run(t, p.env, "tenants", "list", "--json")
	r.wantOK(t)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty list --json = %q", r.stdout)
	}
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := setup(t)
	if err := postgres.EnsureRole(ctx, p.pool, postgres.DefaultRole); err != nil {
		t.Fatal(err)
	}
	stmts := append([]string{"CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, " + postgres.TenantIDColumn + ", title text NOT NULL)"},
		postgres.EnableRLS("notes")...)
	for _, s := range stmts {
		if _, err := p.pool.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	testenv.EnsureRole(t, testenv.AppRole)
	env := append(p.env, "TENANCY_APP_ROLE="+testenv.AppRole)
	r := run(t, env, "doctor")
	r.wantOK(t)
	if !strings.HasSuffix(r.stdout, "no findings: tenant isolation looks sound\n") || !strings.Contains(r.stdout, "info: application role tenancy_app ") {
		t.Errorf("healthy doctor printed:\n%s", r.stdout)
	}

	// A tenant table without row-level security.
	if _, err := p.pool.Exec(ctx, "CREATE TABLE leaky (id int, tenant_id text)"); err != nil {
		t.Fatal(err)
	}
	r = run(t, env, "doctor")
	if r.code != 1 || r.stderr != "tenancy: doctor: 3 findings weaken tenant isolation\n" {
		t.Errorf("doctor with findings: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, w := range []string{"rls-disabled public.leaky: ", "rls-not-forced public.leaky: ", "no-policy public.leaky: "} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("doctor output does not contain %q:\n%s", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "public.notes") {
		t.Errorf("doctor blames the healthy table:\n%s", r.stdout)
	}

	r = run(t, env, "doctor", "--json")
	if r.code != 1 {
		t.Errorf("doctor --json exit %d", r.code)
	}
	var report postgres.Report
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
	}
	codes := map[string]bool{}
	for _, f := range report.Findings {
		codes[f.Code+" "+f.Object] = true
	}
	for _, c := range []string{postgres.FindingRLSDisabled, postgres.FindingRLSNotForced, postgres.FindingNoPolicy} {
		if !codes[c+" public.leaky"] {
			t.Errorf("doctor --json lacks %s on public.leaky: %+v", c, report.Findings)
		}
	}
}

func TestSQLiteStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tenants.db")
	store, err := sqlitestore.Open(ctx, path, sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme Corp"}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	for _, url := range []string{"sqlite:" + path, path} {
		r := run(t, []string{"DATABASE_URL=" + url}, "tenants", "list")
		r.wantOK(t)
		if !strings.Contains(r.stdout, "acme-corp   Acme Corp  active") {
			t.Errorf("list over %s:\n%s", url, r.stdout)
		}
	}
	env := []string{"DATABASE_URL=sqlite:" + path}
	r := run(t, env, "tenants", "suspend", "acme-corp")
	r.wantOK(t)
	r = run(t, env, "tenants", "show", "--json", "acme-corp")
	r.wantOK(t)
	var got tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Status != tenancy.StatusSuspended {
		t.Errorf("after suspend: %+v, %v", got, err)
	}
	run(t, env, "doctor").wantError(t, 1, "tenancy: doctor needs PostgreSQL (set DATABASE_URL to a postgres:// URL)\n")

	missing := filepath.Join(t.TempDir(), "typo.db")
	run(t, []string{"DATABASE_URL=" + missing}, "tenants", "list").wantError(t, 1, "tenancy: SQLite tenant store \""+missing+"\": no such file or directory\n")
	if _, err := os.Stat(missing); err == nil {
		t.Error("a missing SQLite store was created")
	}
}

// TestChangesReachRunningServers checks that with REDIS_URL a change made
// by the CLI invalidates the tenant cache of a running server at once, and
// that without it the server's cached copy stays stale (which is why the
// CLI announces its changes).
func TestChangesReachRunningServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := setup(t)
	rdb := testenv.Redis(t)
	prefix := testenv.RandomName("cli") + ":"
	p.seed(t, &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme Corp"})

	server := cache.New(p.store, cache.Config{Redis: rdb, Prefix: prefix})
	t.Cleanup(func() { _ = server.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for rdb.PubSubNumSub(ctx, prefix+"invalidate").Val()[prefix+"invalidate"] < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the server's cache never subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	statusSeen := func() tenancy.Status {
		tn, err := server.GetByIdentifier(ctx, "acme-corp")
		if err != nil {
			t.Fatal(err)
		}
		return tn.Status
	}
	if s := statusSeen(); s != tenancy.StatusActive {
		t.Fatalf("server sees %s", s)
	}

	run(t, p.env, "tenants", "suspend", "acme-corp").wantOK(t)
	if s := statusSeen(); s != tenancy.StatusActive {
		t.Fatalf("without REDIS_URL the server saw %s at once; the test cannot tell announcements apart", s)
	}

	env := append([]string{"REDIS_URL=" + testenv.RedisURL(), "TENANCY_CACHE_PREFIX=" + prefix}, p.env...)
	run(t, env, "tenants", "delete", "acme-corp").wantOK(t)
	deadline = time.Now().Add(2 * time.Second)
	for statusSeen() != tenancy.StatusDeleted {
		if time.Now().After(deadline) {
			t.Fatal("the server still serves its cached copy 2s after the CLI deleted the tenant")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReadOnlyCommandsNeedNoCreate: listing and showing tenants works as a
// role that may read the store but not create its tables; a write still
// needs that right.
func TestReadOnlyCommandsNeedNoCreate(t *testing.T) {
	t.Parallel()
	p := setup(t)
	p.seed(t, &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme Corp"})
	testenv.EnsureRole(t, testenv.AppRole)
	if _, err := p.pool.Exec(context.Background(), "GRANT USAGE ON SCHEMA tenancy TO "+testenv.AppRole+"; GRANT SELECT ON ALL TABLES IN SCHEMA tenancy TO "+testenv.AppRole); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + testenv.WithUser(p.dsn, testenv.AppRole)}
	r := run(t, env, "tenants", "list")
	r.wantOK(t)
	if !strings.Contains(r.stdout, "acme-corp   Acme Corp  active") {
		t.Errorf("list as the read-only role:\n%s", r.stdout)
	}
	run(t, env, "tenants", "show", "acme-corp").wantOK(t)
	r = run(t, env, "tenants", "suspend", "acme-corp")
	if r.code != 1 || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("suspend as the read-only role: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestDoctorEveryServer: with DATABASE_URLS, the doctor inspects every
// server, names the one each finding is on, and reports a tenant placed on
// no configured server.
func TestDoctorEveryServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := setup(t)
	url2 := testenv.SecondDatabaseURL(t)
	second := testenv.NewDatabaseOn(t, url2)
	secPool := testenv.Pool(t, second)
	testenv.EnsureRole(t, testenv.AppRole)
	testenv.EnsureRoleOn(t, url2, testenv.AppRole)
	for _, pool := range []*pgxpool.Pool{p.pool, secPool} {
		if err := postgres.EnsureRole(ctx, pool, postgres.DefaultRole); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := secPool.Exec(ctx, "CREATE TABLE leaky (id int, tenant_id text)"); err != nil {
		t.Fatal(err)
	}
	p.seed(t, &tenancy.Tenant{Identifier: "home", Name: "Home"},
		&tenancy.Tenant{Identifier: "abroad", Name: "Abroad", Placement: "eu"},
		&tenancy.Tenant{Identifier: "lost", Name: "Lost", Placement: "mars"})
	env := append(p.env, "DATABASE_URLS=eu="+second, "TENANCY_APP_ROLE="+testenv.AppRole)
	r := run(t, env, "doctor")
	if r.code != 1 || r.stderr != "tenancy: doctor: 4 findings weaken tenant isolation\n" {
		t.Errorf("doctor over two servers: exit %d, stderr %q, stdout:\n%s", r.code, r.stderr, r.stdout)
	}
	for _, w := range []string{"rls-disabled eu:public.leaky: ", "no-policy eu:public.leaky: ", `placement-unknown tenant lost: placement "mars"`} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("doctor output does not contain %q:\n%s", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "abroad") || strings.Contains(r.stdout, "default:public.leaky") {
		t.Errorf("doctor blames what is sound:\n%s", r.stdout)
	}

	r = run(t, append(p.env, "DATABASE_URLS=eu=mysql://x"), "doctor")
	r.wantError(t, 1, "tenancy: DATABASE_URLS: tenancy: server \"eu\" needs a postgres:// URL\n")
}
