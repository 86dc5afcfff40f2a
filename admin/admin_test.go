package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/jackc/pgx/v5"
)

// name is the binary name the in-process tests give the CLI.
const name = "testcli"

// result is what one Run produced.
type result struct {
	// bin is the binary name that starts error lines.
	bin            string
	code           int
	stdout, stderr string
}

// harness runs the CLI in-process over an Env that open builds.
type harness struct {
	t        *testing.T
	open     func(ctx context.Context, c admin.Connect) (*admin.Env, error)
	env      map[string]string
	terminal bool
	// interactive makes the CLI ask, reading answers from stdin.
	interactive bool
	stdin       string
	// setup is App.Setup.
	setup func(admin.Connect) (postgres.SetupConfig, error)
	// opened counts calls of Open; connect is the last Connect it got.
	opened  int
	connect admin.Connect
}

func newHarness(t *testing.T, open func(ctx context.Context, c admin.Connect) (*admin.Env, error)) *harness {
	t.Helper()
	return &harness{t: t, open: open, env: map[string]string{}}
}

// storeHarness runs over a memory store; persistent says whether the Env
// claims it is shared with running servers.
func storeHarness(t *testing.T, store tenancy.Store, persistent bool) *harness {
	t.Helper()
	return newHarness(t, func(context.Context, admin.Connect) (*admin.Env, error) {
		return &admin.Env{Store: store, Persistent: persistent}, nil
	})
}

func (h *harness) run(args ...string) result {
	return h.runContext(context.Background(), args...)
}

func (h *harness) runContext(ctx context.Context, args ...string) result {
	h.t.Helper()
	var stdout, stderr bytes.Buffer
	app := &admin.App{
		Name: name,
		Open: func(ctx context.Context, c admin.Connect) (*admin.Env, error) {
			h.opened++
			h.connect = c
			return h.open(ctx, c)
		},
		Stdout:      &stdout,
		Stderr:      &stderr,
		Getenv:      func(k string) string { return h.env[k] },
		IsTerminal:  func(io.Writer) bool { return h.terminal },
		Interactive: func() bool { return h.interactive },
		Setup:       h.setup,
		Stdin:       strings.NewReader(h.stdin),
	}
	code := app.Run(ctx, args)
	return result{bin: name, code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// wantError checks a failed run: the exit status, nothing on stdout, and
// exactly one line on stderr, "<bin>: " and a message containing want.
func (r result) wantError(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit status %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	r.wantOneLine(t, want)
}

// wantOneLine checks that stderr is one error line containing want.
func (r result) wantOneLine(t *testing.T, want string) {
	t.Helper()
	stderr := r.stderr
	if !strings.HasPrefix(stderr, r.bin+": ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q is not one line starting %q", stderr, r.bin+": ")
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not contain %q", stderr, want)
	}
	if strings.ContainsRune(stderr, '\x1b') || strings.Contains(stderr, "goroutine ") {
		t.Errorf("stderr %q holds control characters or a stack trace", stderr)
	}
}

// wantOK checks a successful run with nothing on stderr.
func (r result) wantOK(t *testing.T) {
	t.Helper()
	if r.code != admin.ExitOK || r.stderr != "" {
		t.Fatalf("exit status %d, stderr %q; want 0 and nothing (stdout %q)", r.code, r.stderr, r.stdout)
	}
}

func seed(t *testing.T, store tenancy.Store, tenants ...*tenancy.Tenant) {
	t.Helper()
	for _, tn := range tenants {
		status := tn.Status
		created, err := store.Create(context.Background(), tn)
		if err != nil {
			t.Fatalf("seed %s: %v", tn.Identifier, err)
		}
		if status != "" && status != tenancy.StatusActive {
			if _, err := store.SetStatus(context.Background(), created.ID, status, tn.StatusReason); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func seeded(t *testing.T) *memstore.Store {
	t.Helper()
	store := memstore.New()
	seed(t, store,
		&tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme Corp", Tier: "enterprise", Isolation: tenancy.IsolationSchema, Aliases: []string{"acme"}, Domains: []string{"acme.example.com"}},
		&tenancy.Tenant{ID: "t-beta", Identifier: "beta", Name: "Beta", Tier: "starter", Status: tenancy.StatusSuspended, StatusReason: "unpaid"},
		&tenancy.Tenant{ID: "t-gone", Identifier: "gone-co", Name: "Gone", Status: tenancy.StatusFailed, StatusReason: "disk full"},
	)
	return store
}

func TestIsCommand(t *testing.T) {
	t.Parallel()
	for arg, want := range map[string]bool{
		"tenants": true, "migrate": true, "doctor": true, "help": true, "-h": true, "--help": true,
		"serve": false, "": false, "--database-url": false, "Tenants": false, "tenant": false,
	} {
		if got := admin.IsCommand(arg); got != want {
			t.Errorf("IsCommand(%q) = %v, want %v", arg, got, want)
		}
	}
}

// TestUsageErrors checks that bad command lines exit 2 with one line, and
// never open anything.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 500)
	tests := []struct {
		args []string
		want string
	}{
		{nil, `missing command (run "testcli help")`},
		{[]string{"frob"}, `unknown command "frob" (run "testcli help")`},
		{[]string{"--bogus", "tenants", "list"}, `unknown flag: --bogus`},
		{[]string{"--bogus"}, `unknown flag: --bogus (run "testcli help")`},
		{[]string{"tenants"}, "tenants: missing command"},
		{[]string{"tenants", "frob"}, `tenants: unknown command "frob"`},
		{[]string{"tenants", "list", "--bogus"}, `tenants list: unknown flag: --bogus (run "testcli tenants list --help")`},
		{[]string{"tenants", "list", "--status", "gone"}, `invalid status "gone" (one of provisioning, active, suspended, deleted, failed)`},
		{[]string{"tenants", "list", "extra"}, `tenants list: unexpected argument "extra"`},
		{[]string{"tenants", "show"}, "tenants show: missing IDENTIFIER (usage: testcli tenants show IDENTIFIER [flags])"},
		{[]string{"tenants", "show", "acme", "beta"}, `tenants show: unexpected argument "beta"`},
		{[]string{"tenants", "show", "--", "acme", "--json"}, `tenants show: unexpected argument "--json"`},
		{[]string{"tenants", "alias", "add", "acme"}, "tenants alias add: missing ALIAS"},
		{[]string{"tenants", "purge", "--yes=maybe", "acme"}, `invalid argument "maybe" for "-y, --yes" flag`},
		{[]string{"setup", "--admin-url", "postgres://x/y"}, "setup: --admin-url is for --apply"},
		{[]string{"tenants", "show", "ACME"}, `invalid tenant identifier "ACME" (3 to 56 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-')`},
		{[]string{"tenants", "suspend", "acme\n\x1b[31mred"}, `invalid tenant identifier "acme\n\x1b[31mred"`},
		{[]string{"tenants", "delete", long}, `invalid tenant identifier "` + strings.Repeat("x", 64) + `"...`},
		{[]string{"tenants", "purge", "a"}, `invalid tenant identifier "a"`},
		{[]string{"tenants", "activate", "--reason", "x", "acme"}, "tenants activate: unknown flag: --reason"},
		{[]string{"tenants", "activate", "acme", "--reason", "x"}, "tenants activate: unknown flag: --reason"},
		{[]string{"tenants", "create", "--name", "Acme"}, "tenants create: missing --identifier"},
		{[]string{"tenants", "create", "--identifier", "Bad_One"}, `invalid tenant identifier "Bad_One"`},
		{[]string{"tenants", "create", "--identifier", "acme"}, "tenants create: missing --name"},
		{[]string{"tenants", "create", "--identifier", "acme", "--name", "A", "--id", "no spaces"}, `invalid tenant ID "no spaces"`},
		{[]string{"tenants", "create", "--identifier", "acme", "--name", "A", "--tier", "Gold"}, "invalid tenant tier"},
		{[]string{"tenants", "create", "--identifier", "acme", "--name", "A", "--isolation", "vault"}, "invalid tenant isolation: must be rls, schema, database or empty"},
		{[]string{"tenants", "create", "--identifier", "acme", "--name", "A", "--domain", "ok.example.com", "--domain", "not a host"}, "invalid tenant domains"},
		{[]string{"tenants", "create", "--identifier", "acme", "--name", strings.Repeat("n", 201)}, "invalid tenant name"},
		{[]string{"tenants", "create", "--identifier", "acme", "--name", "A", "extra"}, `unexpected argument "extra"`},
		{[]string{"migrate", "--concurrency", "-1"}, "migrate: --concurrency must be at least 1"},
		{[]string{"migrate", "--concurrency", "many"}, `migrate: invalid argument "many" for "--concurrency" flag`},
		{[]string{"migrate", "--tenant", "NOPE"}, `invalid tenant identifier "NOPE"`},
		{[]string{"migrate", "up"}, `migrate: unexpected argument "up"`},
		{[]string{"migrate", "--dry-run", "status"}, "migrate status: unknown flag: --dry-run"},
		{[]string{"migrate", "status", "acme"}, `migrate status: unexpected argument "acme"`},
		{[]string{"migrate", "status", "--tenant", "acme"}, "migrate status: unknown flag: --tenant"},
		{[]string{"doctor", "now"}, `doctor: unexpected argument "now"`},
		{[]string{"doctor", "--fix"}, "doctor: unknown flag: --fix"},
		{[]string{"tenants", "alias"}, "tenants alias: missing command: add or remove"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			h := storeHarness(t, memstore.New(), true)
			h.run(tt.args...).wantError(t, admin.ExitUsage, tt.want)
			if h.opened != 0 {
				t.Errorf("Open was called for a usage error")
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
		// not are what the help must not say, such as the top-level
		// header in a command's help.
		not []string
	}{
		{[]string{"help"}, []string{"Usage:\n  testcli <command> [flags]", "tenants ", "migrate ", "doctor ", "setup ", "completion ", "Exit status: 0 success, 1 failure, 2 usage error."}, nil},
		{[]string{"-h"}, []string{"Usage:\n  testcli <command> [flags]"}, nil},
		{[]string{"--help"}, []string{"Usage:\n  testcli <command> [flags]"}, nil},
		{[]string{"help", "tenants"}, []string{"Usage:\n  testcli tenants <command> [flags]", "purge ", "retry ", "domain ", "alias "}, []string{"Exit status"}},
		{[]string{"tenants", "--help"}, []string{"Usage:\n  testcli tenants <command> [flags]"}, nil},
		{[]string{"help", "tenants", "create"}, []string{"testcli tenants create --identifier X --name N [flags]", "--domain DOMAIN", "--identifier IDENTIFIER", "--json"}, []string{"Exit status", "Commands:"}},
		{[]string{"tenants", "list", "-h"}, []string{"Usage:\n  testcli tenants list [flags]", "--status STATUS", "--database-url URL", "--redis-url URL"}, nil},
		{[]string{"help", "tenants", "suspend"}, []string{"Usage:\n  testcli tenants suspend IDENTIFIER [flags]", "--reason REASON"}, []string{"testcli: administer", "Exit status", "Commands:"}},
		{[]string{"tenants", "purge", "--help"}, []string{"--force", "--yes", "typed again"}, nil},
		{[]string{"help", "migrate"}, []string{"Usage:\n  testcli migrate [flags]\n  testcli migrate <command> [flags]", "--concurrency N", "--dry-run", "status "}, nil},
		{[]string{"help", "migrate", "status"}, []string{"Usage:\n  testcli migrate status [flags]"}, nil},
		{[]string{"doctor", "-h"}, []string{"Usage:\n  testcli doctor [flags]"}, nil},
		{[]string{"help", "setup"}, []string{"--apply", "--admin-url URL", "tenancy_tenant"}, nil},
		{[]string{"help", "tenants", "domain"}, []string{"_tenancy-challenge.<domain>", "verify "}, nil},
		{[]string{"help", "nonsense"}, []string{"Usage:\n  testcli <command> [flags]"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			h := storeHarness(t, memstore.New(), true)
			r := h.run(tt.args...)
			r.wantOK(t)
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help does not contain %q:\n%s", w, r.stdout)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(r.stdout, w) {
					t.Errorf("help contains %q:\n%s", w, r.stdout)
				}
			}
			if h.opened != 0 {
				t.Errorf("Open was called for help")
			}
		})
	}
}

// TestFlagsAfterArguments checks that flags may follow the arguments, as
// in git, kubectl and other cobra-based tools, and that "--" ends them.
func TestFlagsAfterArguments(t *testing.T) {
	t.Parallel()
	store := seeded(t)
	h := storeHarness(t, store, true)
	r := h.run("tenants", "suspend", "acme-corp", "--reason", "unpaid")
	r.wantOK(t)
	if got, _ := store.GetByIdentifier(context.Background(), "acme-corp"); got.Status != tenancy.StatusSuspended || got.StatusReason != "unpaid" {
		t.Errorf("after suspend with a trailing flag: %s (%q)", got.Status, got.StatusReason)
	}
	r = h.run("tenants", "show", "acme-corp", "--json")
	r.wantOK(t)
	var got tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Identifier != "acme-corp" {
		t.Errorf("show IDENTIFIER --json = %q, %v", r.stdout, err)
	}
	r = h.run("--json", "tenants", "list", "--status", "suspended")
	r.wantOK(t)
	var listed []tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 2 {
		t.Errorf("--json before the command: %q, %v", r.stdout, err)
	}
}

// TestConnect checks where the URLs come from: command flags, then global
// flags, then the environment.
func TestConnect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		env         map[string]string
		args        []string
		db, redis   string
		concurrency int
		readOnly    bool
	}{
		{"environment", map[string]string{"DATABASE_URL": "postgres://env/db", "REDIS_URL": "redis://env"}, []string{"tenants", "list"}, "postgres://env/db", "redis://env", 0, true},
		{"global flags", map[string]string{"DATABASE_URL": "postgres://env/db"}, []string{"--database-url", "postgres://global/db", "--redis-url", "redis://global", "tenants", "list"}, "postgres://global/db", "redis://global", 0, true},
		{"command flags", map[string]string{"DATABASE_URL": "postgres://env/db"}, []string{"--database-url", "postgres://global/db", "tenants", "suspend", "acme", "--database-url", "postgres://cmd/db"}, "postgres://cmd/db", "", 0, false},
		{"unset", nil, []string{"doctor"}, "", "", 0, true},
		{"concurrency", nil, []string{"migrate", "--concurrency", "7", "--database-url", "sqlite:x.db"}, "sqlite:x.db", "", 7, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(context.Context, admin.Connect) (*admin.Env, error) {
				return nil, errors.New("stop here")
			})
			for k, v := range tt.env {
				h.env[k] = v
			}
			h.run(tt.args...).wantError(t, admin.ExitFailure, "stop here")
			want := admin.Connect{DatabaseURL: tt.db, RedisURL: tt.redis, Concurrency: tt.concurrency, ReadOnly: tt.readOnly}
			if h.connect != want {
				t.Errorf("Open got %+v, want %+v", h.connect, want)
			}
		})
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	h := storeHarness(t, seeded(t), true)
	r := h.run("tenants", "list")
	r.wantOK(t)
	want := `IDENTIFIER  NAME       STATUS     TIER        ISOLATION  ALIASES  DOMAINS           ID
acme-corp   Acme Corp  active     enterprise  schema     acme     acme.example.com  t-acme
beta        Beta       suspended  starter     -          -        -                 t-beta
gone-co     Gone       failed     -           -          -        -                 t-gone
`
	if r.stdout != want {
		t.Errorf("list:\n%s\nwant:\n%s", r.stdout, want)
	}

	r = h.run("tenants", "list", "--status", "suspended")
	r.wantOK(t)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "beta ") {
		t.Errorf("list --status suspended:\n%s", r.stdout)
	}
	r = h.run("tenants", "list", "--status", "deleted")
	r.wantOK(t)
	if r.stdout != "no deleted tenants\n" {
		t.Errorf("list of none: %q", r.stdout)
	}
}

func TestListJSON(t *testing.T) {
	t.Parallel()
	r := storeHarness(t, memstore.New(), true).run("tenants", "list", "--json")
	r.wantOK(t)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty list --json = %q, want []", r.stdout)
	}

	// More tenants than one store page: every one is listed.
	store := memstore.New()
	n := tenancy.MaxListLimit + 5
	for i := range n {
		seed(t, store, &tenancy.Tenant{Identifier: fmt.Sprintf("t%04d", i), Name: "T"})
	}
	r = storeHarness(t, store, true).run("tenants", "list", "--json")
	r.wantOK(t)
	var got []tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not a JSON list of tenants: %v", err)
	}
	if len(got) != n || got[0].Identifier != "t0000" || got[n-1].Identifier != fmt.Sprintf("t%04d", n-1) {
		t.Errorf("listed %d tenants (first %s), want %d", len(got), got[0].Identifier, n)
	}
}

func TestShow(t *testing.T) {
	t.Parallel()
	store := seeded(t)
	h := storeHarness(t, store, true)
	r := h.run("tenants", "show", "beta")
	r.wantOK(t)
	for _, w := range []string{"id:         t-beta\n", "identifier: beta\n", "name:       Beta\n", "status:     suspended (unpaid)\n", "tier:       starter\n", "aliases:    -\n", "domains:    -\n", "created:    "} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("show does not contain %q:\n%s", w, r.stdout)
		}
	}

	r = h.run("tenants", "show", "--json", "acme-corp")
	r.wantOK(t)
	var got tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("show --json: %v", err)
	}
	want, _ := store.GetByIdentifier(context.Background(), "acme-corp")
	if got.ID != want.ID || got.Tier != "enterprise" || len(got.Domains) != 1 || len(got.Aliases) != 1 || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("show --json = %+v, want %+v", got, want)
	}

	h.run("tenants", "show", "nope").wantError(t, admin.ExitFailure, "")
	if r := h.run("tenants", "show", "nope"); r.stderr != name+": tenant \"nope\" not found\n" {
		t.Errorf("unknown tenant: %q", r.stderr)
	}
}

// TestOutputEscapesStoredText checks that a name holding terminal control
// sequences cannot reach the terminal raw.
func TestOutputEscapesStoredText(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	seed(t, store, &tenancy.Tenant{Identifier: "evil", Name: "Evil\x1b[2J\nCorp"})
	h := storeHarness(t, store, true)
	for _, args := range [][]string{{"tenants", "list"}, {"tenants", "show", "evil"}} {
		r := h.run(args...)
		r.wantOK(t)
		if strings.ContainsRune(r.stdout, '\x1b') || !strings.Contains(r.stdout, `"Evil\x1b[2J\nCorp"`) {
			t.Errorf("%v printed %q", args, r.stdout)
		}
	}
	// JSON carries the value as it is.
	r := h.run("tenants", "show", "--json", "evil")
	var got tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Name != "Evil\x1b[2J\nCorp" {
		t.Errorf("show --json name %q, %v", got.Name, err)
	}
}

func TestStatusChangesWithoutLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := seeded(t)
	h := storeHarness(t, store, true)
	steps := []struct {
		args       []string
		out        string
		status     tenancy.Status
		reason     string
		identifier string
	}{
		{[]string{"tenants", "suspend", "--reason", "abuse report", "acme-corp"}, "acme-corp is now suspended\n", tenancy.StatusSuspended, "abuse report", "acme-corp"},
		{[]string{"tenants", "activate", "acme-corp"}, "acme-corp is now active\n", tenancy.StatusActive, "", "acme-corp"},
		{[]string{"tenants", "delete", "beta"}, "beta is now deleted\n", tenancy.StatusDeleted, "", "beta"},
		{[]string{"tenants", "activate", "beta"}, "beta is now active\n", tenancy.StatusActive, "", "beta"},
	}
	for _, s := range steps {
		r := h.run(s.args...)
		r.wantOK(t)
		if r.stdout != s.out {
			t.Errorf("%v printed %q, want %q", s.args, r.stdout, s.out)
		}
		got, err := store.GetByIdentifier(ctx, s.identifier)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != s.status || (s.reason != "" && got.StatusReason != s.reason) {
			t.Errorf("after %v: status %s (%q), want %s (%q)", s.args, got.Status, got.StatusReason, s.status, s.reason)
		}
	}

	r := h.run("tenants", "suspend", "--json", "beta")
	r.wantOK(t)
	var got tenancy.Tenant
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Status != tenancy.StatusSuspended || got.Identifier != "beta" {
		t.Errorf("suspend --json = %+v, %v", got, err)
	}

	// A failed tenant needs provisioning again, not activation.
	h.run("tenants", "activate", "gone-co").wantError(t, admin.ExitFailure, `tenant "gone-co" is failed: run "testcli tenants retry gone-co" to provision it again`)
	if g, _ := store.GetByIdentifier(ctx, "gone-co"); g.Status != tenancy.StatusFailed {
		t.Errorf("failed tenant became %s", g.Status)
	}
	h.run("tenants", "suspend", "nope").wantError(t, admin.ExitFailure, `tenant "nope" not found`)
}

// TestInMemoryStoreRefusesWrites checks every tenant write against a store
// in the CLI's own memory, and that reads still work.
func TestInMemoryStoreRefusesWrites(t *testing.T) {
	t.Parallel()
	store := seeded(t)
	h := storeHarness(t, store, false)
	const line = name + ": the tenant store is in memory, so this change could not reach a running server; configure a persistent tenant store (such as TENANT_STORE=db)\n"
	for _, args := range [][]string{
		{"tenants", "create", "--identifier", "new-co", "--name", "New"},
		{"tenants", "suspend", "acme-corp"},
		{"tenants", "activate", "beta"},
		{"tenants", "delete", "acme-corp"},
		{"tenants", "purge", "beta"},
		{"tenants", "suspend", "nope"}, // refused before the lookup
	} {
		r := h.run(args...)
		if r.code != admin.ExitFailure || r.stderr != line || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	ctx := context.Background()
	if n, _ := store.Count(ctx, ""); n != 3 {
		t.Errorf("store holds %d tenants after refused writes, want 3", n)
	}
	if a, _ := store.GetByIdentifier(ctx, "acme-corp"); a.Status != tenancy.StatusActive {
		t.Errorf("acme-corp is %s after refused writes", a.Status)
	}
	h.run("tenants", "show", "acme-corp").wantOK(t)
}

func TestMissingPieces(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  *admin.Env
		args []string
		want string
	}{
		{&admin.Env{}, []string{"tenants", "list"}, "this binary has no tenant store"},
		{&admin.Env{}, []string{"tenants", "show", "acme"}, "this binary has no tenant store"},
		{&admin.Env{Store: memstore.New(), Persistent: true}, []string{"tenants", "create", "--identifier", "acme", "--name", "Acme"}, "tenants create needs the application's binary"},
		{&admin.Env{Store: seeded(t), Persistent: true}, []string{"tenants", "purge", "beta"}, "tenants purge needs the application's binary"},
		{&admin.Env{Store: memstore.New(), Persistent: true}, []string{"migrate"}, "this binary has no migrations"},
		{&admin.Env{}, []string{"migrate", "status"}, "this binary has no migrations"},
		{&admin.Env{}, []string{"doctor"}, "doctor needs PostgreSQL (set DATABASE_URL to a postgres:// URL)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(context.Context, admin.Connect) (*admin.Env, error) { return tt.env, nil })
			h.run(tt.args...).wantError(t, admin.ExitFailure, tt.want)
		})
	}
}

// panicStore panics on List, as a buggy store might.
type panicStore struct{ tenancy.Store }

func (panicStore) List(context.Context, tenancy.ListParams) ([]*tenancy.Tenant, error) {
	panic("list exploded\nwith a second line")
}

func TestOpenFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A real failed connection, as an app's Open would return it wrapped.
	_, connErr := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:1/x?connect_timeout=5")
	if connErr == nil {
		t.Fatal("connected to port 1")
	}
	tests := []struct {
		name string
		open func(context.Context, admin.Connect) (*admin.Env, error)
		want string
	}{
		{"unreachable database", func(context.Context, admin.Connect) (*admin.Env, error) {
			return nil, errWrap("open tenant store", connErr)
		}, name + ": cannot reach the database: dial tcp 127.0.0.1:1: connect: connection refused\n"},
		{"multi-line error", func(context.Context, admin.Connect) (*admin.Env, error) {
			return nil, errors.New("tenancy: role missing; ask an administrator to run:\n  CREATE ROLE x;\n  GRANT x TO y;")
		}, name + ": tenancy: role missing; ask an administrator to run: CREATE ROLE x; GRANT x TO y;\n"},
		{"panic in Open", func(context.Context, admin.Connect) (*admin.Env, error) {
			panic("boom")
		}, name + ": internal error: boom\n"},
		{"nil env", func(context.Context, admin.Connect) (*admin.Env, error) {
			return nil, nil
		}, name + ": admin.App.Open returned no environment\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newHarness(t, tt.open).run("tenants", "list")
			if r.code != admin.ExitFailure || r.stderr != tt.want || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
}

func errWrap(msg string, err error) error { return &wrapped{msg: msg, err: err} }

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg + ": " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

// TestPanicInCommand checks that a panic while running is one line, and
// that Env.Close still runs.
func TestPanicInCommand(t *testing.T) {
	t.Parallel()
	closed := 0
	h := newHarness(t, func(context.Context, admin.Connect) (*admin.Env, error) {
		return &admin.Env{Store: panicStore{memstore.New()}, Close: func() { closed++ }}, nil
	})
	r := h.run("tenants", "list")
	if r.code != admin.ExitFailure || r.stderr != name+": internal error: list exploded with a second line\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if closed != 1 {
		t.Errorf("Close ran %d times, want 1", closed)
	}
	h.run("tenants", "show", "acme").wantError(t, admin.ExitFailure, `tenant "acme" not found`)
	if closed != 2 {
		t.Errorf("Close ran %d times after two runs, want 2", closed)
	}
}

func TestInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := newHarness(t, func(ctx context.Context, _ admin.Connect) (*admin.Env, error) {
		return nil, errWrap("open", ctx.Err())
	})
	h.runContext(ctx, "tenants", "list").wantError(t, admin.ExitFailure, "interrupted")
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	findings := &postgres.Report{
		Findings: []postgres.Finding{
			{Code: postgres.FindingRLSDisabled, Object: "public.notes", Message: "row-level security is not enabled"},
			{Code: postgres.FindingViewNotInvoker, Object: "public.v\x1b[1m", Message: "reads tenant tables\nwith its owner's rights"},
		},
		Info: []string{"connected as app"},
	}
	healthy := &postgres.Report{Findings: []postgres.Finding{}, Info: []string{"connected as app"}}
	doctor := func(r *postgres.Report, err error) *harness {
		return newHarness(t, func(context.Context, admin.Connect) (*admin.Env, error) {
			return &admin.Env{Doctor: func(context.Context) (*postgres.Report, error) { return r, err }}, nil
		})
	}

	r := doctor(findings, nil).run("doctor")
	if r.code != admin.ExitFailure {
		t.Errorf("doctor with findings exit %d, want 1", r.code)
	}
	r.wantOneLine(t, "doctor: 2 findings weaken tenant isolation")
	want := "rls-disabled public.notes: row-level security is not enabled\n" +
		`view-not-security-invoker public.v\x1b[1m: reads tenant tables with its owner's rights` + "\n" +
		"info: connected as app\n"
	if r.stdout != want {
		t.Errorf("doctor printed:\n%q\nwant:\n%q", r.stdout, want)
	}

	r = doctor(findings, nil).run("doctor", "--json")
	if r.code != admin.ExitFailure {
		t.Errorf("doctor --json with findings exit %d", r.code)
	}
	var got postgres.Report
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.Findings) != 2 || got.Findings[1].Object != "public.v\x1b[1m" {
		t.Errorf("doctor --json = %+v, %v", got, err)
	}

	r = doctor(healthy, nil).run("doctor")
	r.wantOK(t)
	if r.stdout != "info: connected as app\nno findings: tenant isolation looks sound\n" {
		t.Errorf("healthy doctor printed %q", r.stdout)
	}
	r = doctor(healthy, nil).run("doctor", "--json")
	r.wantOK(t)
	if strings.Contains(r.stdout, "no findings") || !json.Valid([]byte(r.stdout)) {
		t.Errorf("doctor --json printed more than JSON: %q", r.stdout)
	}

	doctor(nil, errors.New("doctor: permission denied for pg_authid")).run("doctor").wantError(t, admin.ExitFailure, "doctor: permission denied")
}
