package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestDockerInitSQL: the compose file's init script is what setup prints
// for the compose URLs, and it sets up a server from nothing.
func TestDockerInitSQL(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("docker/initdb/01-setup.sql")
	if err != nil {
		t.Fatal(err)
	}
	var stmts []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l != "" && !strings.HasPrefix(l, "--") {
			stmts = append(stmts, l)
		}
	}
	compose, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"postgres://notekeeper_app:notekeeper-app@postgres:5432/notekeeper", "postgres://notekeeper_owner:notekeeper-owner@postgres:5432/notekeeper"} {
		if !strings.Contains(string(compose), u) {
			t.Errorf("compose.yaml does not connect with %s", u)
		}
	}
	cfg, err := Config{DatabaseURL: "postgres://notekeeper_app:notekeeper-app@postgres:5432/notekeeper",
		MigrationDatabaseURL: "postgres://notekeeper_owner:notekeeper-owner@postgres:5432/notekeeper"}.SetupConfig("")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := postgres.SetupSQL(cfg)
	if !slices.Equal(stmts, want) {
		t.Fatalf("01-setup.sql:\n%s\nwant the output of notekeeper setup:\n%s", strings.Join(stmts, "\n"), strings.Join(want, "\n"))
	}
	runSetupSQL(t, stmts, map[string]string{"notekeeper_app": "", "notekeeper_owner": "", "notekeeper": ""})
}

// runSetupSQL runs setup statements as the test server's superuser, with
// the names in rename (login roles, database) made unique to the test; the
// cluster-wide tenant role may exist already, made by other tests, and its
// CREATE may then fail. It returns the unique names.
func runSetupSQL(t *testing.T, stmts []string, rename map[string]string) map[string]string {
	t.Helper()
	ctx := context.Background()
	super := testenv.Admin(t)
	suffix := strings.TrimPrefix(testenv.RandomName("x"), "x")
	for name := range rename {
		rename[name] = name + "_" + suffix
	}
	t.Cleanup(func() {
		_, _ = super.Exec(context.Background(), "DROP DATABASE IF EXISTS notekeeper_"+suffix+" WITH (FORCE)")
		for name, unique := range rename {
			if name != "notekeeper" && strings.Contains(unique, "_") {
				_, _ = super.Exec(context.Background(), "DROP ROLE IF EXISTS "+unique)
			}
		}
	})
	for _, s := range stmts {
		for name, unique := range rename {
			s = replaceWord(s, name, unique)
		}
		if _, err := super.Exec(ctx, s); err != nil {
			var pgErr *pgconn.PgError
			if strings.HasPrefix(s, "CREATE ROLE tenancy_tenant ") && errors.As(err, &pgErr) && pgErr.Code == "42710" {
				continue // shared by the tests of this server
			}
			t.Fatalf("%s: %v", s, err)
		}
	}
	pending, err := postgres.PendingSetup(ctx, super, postgres.SetupConfig{Database: rename["notekeeper"], AppRole: rename["notekeeper_app"], OwnerRole: rename["notekeeper_owner"]})
	if err != nil || len(pending) != 0 {
		t.Fatalf("after the setup SQL, still pending: %q, %v", pending, err)
	}
	return rename
}

// replaceWord replaces whole words (identifier characters around) only.
func replaceWord(s, old, repl string) string {
	isWord := func(b byte) bool { return b == '_' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }
	var out strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			out.WriteString(s)
			return out.String()
		}
		j := i + len(old)
		if (i > 0 && isWord(s[i-1])) || (j < len(s) && isWord(s[j])) {
			out.WriteString(s[:j])
			s = s[j:]
			continue
		}
		out.WriteString(s[:i] + repl)
		s = s[j:]
	}
}

// TestFirstHourCommandLine runs the binary as a new user would meet it.
func TestFirstHourCommandLine(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	run := func(env []string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append([]string{"HOME=" + os.Getenv("HOME")}, env...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}

	t.Run("UnknownCommand", func(t *testing.T) {
		code, stdout, stderr := run(nil, "bogus")
		if code != 2 || stdout != "" || stderr != "notekeeper: unknown command \"bogus\" (run \"notekeeper help\")\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	t.Run("BusyPortBeforeMigrations", func(t *testing.T) {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := strings.TrimPrefix(ln.Addr().String()[strings.LastIndex(ln.Addr().String(), ":"):], ":")
		dir := t.TempDir()
		code, _, stderr := run([]string{"PORT=" + port, "DATA_DIR=" + dir})
		if code != 1 || !strings.HasPrefix(stderr, "notekeeper: listen on port "+port+": ") || !strings.Contains(stderr, "address already in use") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("migrations or seeds ran before the port was taken: %v", entries)
		}
	})

	t.Run("StartupErrorIsOneLine", func(t *testing.T) {
		testenv.Admin(t)
		dsn := testenv.WithUser(testenv.DatabaseURL(), "no_such_role_x")
		code, _, stderr := run([]string{"PORT=0", "DATABASE_URL=" + dsn, "MIGRATION_DATABASE_URL=" + testenv.DatabaseURL()})
		if code != 1 || strings.Count(stderr, "\n") != 1 || strings.Count(stderr, `role "no_such_role_x" does not exist`) != 1 ||
			strings.Contains(stderr, `\n`) || !strings.Contains(stderr, "notekeeper setup") || !strings.HasPrefix(stderr, "notekeeper: connect to DATABASE_URL") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("HealthcheckAndSeedOnce", func(t *testing.T) {
		dir := t.TempDir()
		env := map[string]string{"DATA_DIR": dir, "TENANT_STORE": "db"}
		s := startServer(t, bin, env)
		port := s.url[strings.LastIndex(s.url, ":")+1:]
		if code, stdout, stderr := run([]string{"PORT=" + port}, "healthcheck"); code != 0 || stdout != "ok\n" {
			t.Errorf("healthcheck of a ready server: exit %d, %q %q", code, stdout, stderr)
		}
		if code, _, stderr := run([]string{"PORT=1"}, "healthcheck"); code != 1 || !strings.HasPrefix(stderr, "notekeeper: healthcheck: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("healthcheck of nothing: exit %d, %q", code, stderr)
		}
		s.client().do(t, http.MethodGet, "/notes", globex, "").want(t, http.StatusOK)
		s.admin(t, 0, "tenants", "delete", globex)
		s.admin(t, 0, "tenants", "purge", globex)
		if _, err := os.Stat(filepath.Join(dir, seedMarkerFile)); err != nil {
			t.Fatalf("no seed record: %v", err)
		}
		// A second server on the same data: globex stays purged.
		s2 := startServer(t, bin, env)
		s2.client().do(t, http.MethodGet, "/notes", globex, "").want(t, http.StatusNotFound)
		s2.client().do(t, http.MethodGet, "/notes", acme, "").want(t, http.StatusOK)
	})
}

// TestSetupErrorSQLIsEnough: on a server where the owner and the
// application roles exist but nobody set up the tenant role for them (the
// owner may not grant it on: "must have admin option on role"), the server
// refuses to start with one line holding SQL; run exactly that SQL as a
// superuser, and the server starts and serves as the application role.
func TestSetupErrorSQLIsEnough(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	super := testenv.NewDatabase(t)
	admin := testenv.Pool(t, super)
	db := admin.Config().ConnConfig.Database
	owner, app := testenv.RandomName("nk_owner_"), testenv.RandomName("nk_app_")
	testenv.AdminExec(t, "CREATE ROLE "+owner+" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
	testenv.AdminExec(t, "CREATE ROLE "+app+" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
	testenv.AdminExec(t, "ALTER DATABASE "+db+" OWNER TO "+owner)
	t.Cleanup(func() {
		ctx := context.Background()
		for _, stmt := range []string{"ALTER DATABASE " + db + " OWNER TO CURRENT_USER", "DROP OWNED BY " + owner + ", " + app} {
			if _, err := admin.Exec(ctx, stmt); err != nil {
				t.Logf("%s: %v", stmt, err)
			}
		}
		admin.Close()
		testenv.AdminExec(t, "DROP ROLE IF EXISTS "+app)
		testenv.AdminExec(t, "DROP ROLE IF EXISTS "+owner)
	})
	testenv.EnsureRole(t, "tenancy_tenant") // exists cluster-wide, granted to neither
	testenv.AdminExec(t, "ALTER ROLE tenancy_tenant NOLOGIN")
	env := []string{
		"PORT=0",
		"DATABASE_URL=" + testenv.WithUser(super, app),
		"MIGRATION_DATABASE_URL=" + testenv.WithUser(super, owner),
		"TENANT_STORE=db",
	}
	bin := buildBinary(t)
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"HOME=" + os.Getenv("HOME")}, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("the server started without the tenant role granted")
	}
	msg := stderr.String()
	_, sql, ok := strings.Cut(msg, "as a superuser run: ")
	if !ok || strings.Count(msg, "\n") != 1 {
		t.Fatalf("want one line with the SQL to run, got %q", msg)
	}
	sql, _, _ = strings.Cut(sql, " (or: ")
	if _, err := admin.Exec(ctx, sql); err != nil {
		t.Fatalf("the SQL the error printed fails: %v\n%s", err, sql)
	}
	envMap := map[string]string{}
	for _, kv := range env[1:] {
		k, v, _ := strings.Cut(kv, "=")
		envMap[k] = v
	}
	envMap["SEED_DEMO"] = "true"
	s := startServer(t, bin, envMap)
	if r := s.client().do(t, http.MethodPost, "/notes", acme, `{"title": "after setup"}`); r.status != http.StatusCreated {
		t.Fatalf("create after running the printed SQL: %d %s", r.status, r.body)
	}
}
