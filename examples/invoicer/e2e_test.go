package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

// End-to-end tests: the binary built with `go build`, started as a
// subprocess on a free port and driven over HTTP, as a user runs it; its
// admin subcommands run as separate processes against the same storage.

var rolesOnce sync.Once

// setupRoles creates the cluster-wide roles, as `invoicer setup` prints
// them: the application and owner login roles, and the tenant role
// granted to both.
func setupRoles(t *testing.T) {
	t.Helper()
	testenv.Admin(t)
	rolesOnce.Do(func() {
		testenv.EnsureRole(t, testenv.AppRole)
		testenv.EnsureRole(t, testenv.OwnerRole)
		testenv.AdminExec(t, `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenancy_tenant') THEN
    CREATE ROLE tenancy_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
  END IF;
END $$`)
		testenv.AdminExec(t, "GRANT tenancy_tenant TO tenancy_app, tenancy_owner")
	})
}

// tagExtraMigration builds a binary with one migration more than billing's
// (extra_migration.go).
const tagExtraMigration = "invoicer_extra_migration"

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	extra := buildBinary(t, tagExtraMigration)

	t.Run("PostgresRedis", func(t *testing.T) {
		t.Parallel()
		testenv.Redis(t) // skips (or fails under CI=true) without Redis
		setupRoles(t)
		dsn := testenv.NewDatabase(t)
		super := testenv.Pool(t, dsn)
		db := pgx.Identifier{super.Config().ConnConfig.Database}.Sanitize()
		if _, err := super.Exec(t.Context(), "ALTER DATABASE "+db+" OWNER TO "+testenv.OwnerRole+"; REVOKE TEMPORARY ON DATABASE "+db+" FROM PUBLIC"); err != nil {
			t.Fatal(err)
		}
		s := startServer(t, bin, map[string]string{
			// Requests as a role that owns nothing; migrations as the
			// database's owner, not a superuser.
			"DATABASE_URL":           testenv.WithUser(dsn, testenv.AppRole),
			"MIGRATION_DATABASE_URL": testenv.WithUser(dsn, testenv.OwnerRole),
			"REDIS_URL":              testenv.RedisURL(),
			"REDIS_PREFIX":           testenv.RandomName("invoicer-e2e-") + ":",
			"SEED_DEMO":              "true",
		})
		runContract(t, s.client())

		// The schema is the boundary: each tenant's tables, no tenant
		// column, every table sealed.
		var tables, tenantColumns, unsealed int
		err := super.QueryRow(t.Context(), `SELECT
  (SELECT count(*) FROM pg_tables WHERE schemaname IN ('tenant_acme_corp', 'tenant_globex') AND tablename IN ('customers', 'invoices', 'line_items')),
  (SELECT count(*) FROM information_schema.columns WHERE table_schema LIKE 'tenant\_%' AND column_name = 'tenant_id'),
  (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname LIKE 'tenant\_%' AND c.relkind = 'r' AND NOT (c.relrowsecurity AND c.relforcerowsecurity))`).Scan(&tables, &tenantColumns, &unsealed)
		if err != nil || tables != 6 || tenantColumns != 0 || unsealed != 0 {
			t.Fatalf("tenant schemas: %d tables, %d tenant columns, %d unsealed tables, %v", tables, tenantColumns, unsealed, err)
		}
		var acmeCustomers int
		if err := super.QueryRow(t.Context(), "SELECT count(*) FROM tenant_acme_corp.customers").Scan(&acmeCustomers); err != nil || acmeCustomers != 1 {
			t.Fatalf("tenant_acme_corp.customers: %d rows, %v", acmeCustomers, err)
		}

		ident := addTenantWhileRunning(t, s)
		var newTables int
		schema := "tenant_" + strings.ReplaceAll(ident, "-", "_")
		if err := super.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema).Scan(&newTables); err != nil || newTables < 3 {
			t.Fatalf("schema %s: %d tables, %v", schema, newTables, err)
		}
		if out := s.admin(t, 0, "doctor"); !strings.Contains(out, "no findings") {
			t.Fatalf("doctor: %s", out)
		}

		migrationAddedLater(t, s, extra, func(t *testing.T, tenant string) bool {
			var ok bool
			err := super.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_indexes WHERE schemaname = $1 AND indexname = 'invoices_due_date_idx')",
				"tenant_"+strings.ReplaceAll(tenant, "-", "_")).Scan(&ok)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}, acme, globex, ident)
	})

	t.Run("SQLiteDefault", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := startServer(t, bin, map[string]string{"DATA_DIR": dir})
		runContract(t, s.client())
		for _, f := range []string{"acme-corp.db", "globex.db", "_tenants.db"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("DATA_DIR lacks %s: %v", f, err)
			}
		}
		ident := addTenantWhileRunning(t, s)
		migrationAddedLater(t, s, extra, func(t *testing.T, tenant string) bool {
			db, err := sql.Open("sqlite", filepath.Join(dir, tenant+".db")+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			if err := db.QueryRow("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'invoices_due_date_idx'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		}, acme, globex, ident)
	})

	t.Run("SeedOnce", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := startServer(t, bin, map[string]string{"DATA_DIR": dir})
		s.admin(t, 0, "tenants", "delete", globex)
		s.admin(t, 0, "tenants", "purge", "--force", globex)
		s.stop(t)
		// Started again, the server does not seed globex back.
		s = startServer(t, bin, map[string]string{"DATA_DIR": dir})
		s.client().do(t, "GET", "/customers", host("globex.localhost"), "").problem(t, http.StatusNotFound, problem.SlugTenantNotFound)
		s.client().do(t, "GET", "/customers", host("acme.localhost"), "").want(t, http.StatusOK)
	})
}

// addTenantWhileRunning creates a tenant with the admin command while the
// server runs, after the server has been asked for it (and may remember
// that it does not exist): the server serves it at once, by subdomain. It
// returns the tenant's identifier.
func addTenantWhileRunning(t *testing.T, s *server) string {
	t.Helper()
	c := s.client()
	ident := testenv.RandomName("initech-")
	v := host(ident + ".localhost:8000")
	c.do(t, "GET", "/customers", v, "").problem(t, http.StatusNotFound, problem.SlugTenantNotFound)
	out := s.admin(t, 0, "tenants", "create", "--identifier", ident, "--name", "Initech")
	if !strings.Contains(out, "created "+ident) {
		t.Fatalf("tenants create: %s", out)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := c.do(t, "GET", "/customers", v, "")
		if r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new tenant is not served after 3s: %d %s", r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cu := c.createCustomer(t, v, "Peter Gibbons", "peter@initech.example")
	inv := c.createInvoice(t, v, invoiceBody(cu.ID))
	if inv.Number != "INV-0001" {
		t.Fatalf("the new tenant's first invoice is %s", inv.Number)
	}
	c.do(t, "GET", "/invoices/"+inv.ID, host("acme.localhost"), "").problem(t, http.StatusNotFound, "")
	return ident
}

// migrationAddedLater runs `migrate` of a build with one migration more
// (extra) while the server, built without it, keeps serving: status
// first shows every tenant behind, then current, and has reports whether
// a tenant has the migration's index.
func migrationAddedLater(t *testing.T, s *server, extra string, has func(t *testing.T, tenant string) bool, tenants ...string) {
	t.Helper()
	out := s.adminWith(t, extra, 0, "migrate", "status")
	for _, tn := range tenants {
		if !lineHas(out, tn, "pending") || has(t, tn) {
			t.Fatalf("before migrate, %s is not behind:\n%s", tn, out)
		}
	}

	// Requests keep being served while the migration runs.
	stop := make(chan struct{})
	var served, failed atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		c := s.client()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, tn := range tenants {
				if r := c.do(t, "GET", "/invoices", host(tn+".localhost"), ""); r.status == http.StatusOK {
					served.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}
	})
	out = s.adminWith(t, extra, 0, "migrate")
	close(stop)
	wg.Wait()
	if served.Load() == 0 || failed.Load() != 0 {
		t.Fatalf("during migrate: %d requests served, %d failed", served.Load(), failed.Load())
	}
	for _, tn := range tenants {
		if !lineHas(out, tn, "migrated") || !has(t, tn) {
			t.Fatalf("migrate did not bring %s up:\n%s", tn, out)
		}
	}
	out = s.adminWith(t, extra, 0, "migrate", "status")
	for _, tn := range tenants {
		if !lineHas(out, tn, "current") {
			t.Fatalf("after migrate, %s is not current:\n%s", tn, out)
		}
	}
	// The old build still serves every tenant.
	for _, tn := range tenants {
		s.client().do(t, "GET", "/invoices", host(tn+".localhost"), "").want(t, http.StatusOK)
	}
}

// lineHas reports whether a line of out starts with tenant and holds word.
func lineHas(out, tenant, word string) bool {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == tenant && strings.Contains(line, word) {
			return true
		}
	}
	return false
}

// stop ends the server with SIGTERM and waits for it.
func (s *server) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("server ignored SIGTERM")
	}
}

func buildBinary(t *testing.T, tags ...string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the binary: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "invoicer")
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(t.Context(), goBin, append(args, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// server is a running invoicer process.
type server struct {
	bin  string
	cmd  *exec.Cmd
	env  []string
	url  string
	logs *syncBuffer

	exited chan struct{}
	err    error // set before exited is closed
}

// startServer starts the binary with env (and nothing else from this
// process's environment) on a free port, and waits until /readyz answers.
// It is stopped with SIGTERM when t ends, and must then exit cleanly.
func startServer(t *testing.T, bin string, env map[string]string) *server {
	t.Helper()
	port := freePort(t)
	s := &server{bin: bin, url: "http://127.0.0.1:" + port, logs: &syncBuffer{}, exited: make(chan struct{})}
	vars := map[string]string{"LOG_FORMAT": "json", "LOG_LEVEL": "debug", "HOME": os.Getenv("HOME")}
	for k, v := range env {
		vars[k] = v
	}
	for k, v := range vars {
		s.env = append(s.env, k+"="+v)
	}

	cmd := exec.Command(bin)
	cmd.Env = append(s.env, "PORT="+port)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	s.cmd = cmd
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			if s.err != nil {
				t.Errorf("server did not shut down cleanly: %v", s.err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-s.exited
			t.Errorf("server ignored SIGTERM")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.exited:
			t.Fatalf("server exited during start: %v\n%s", s.err, s.logs.String())
		default:
		}
		if ready(t.Context(), s.url) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready after a minute:\n%s", s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ready(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

var clientOnce = sync.OnceValue(func() *http.Client { return &http.Client{Timeout: 10 * time.Second} })

func (s *server) client() *apiClient { return &apiClient{base: s.url, hc: clientOnce()} }

// admin runs an admin subcommand with the server's environment, checks its
// exit status and returns its output (stdout, then stderr).
func (s *server) admin(t *testing.T, wantCode int, args ...string) string {
	t.Helper()
	return s.adminWith(t, s.bin, wantCode, args...)
}

// adminWith runs an admin subcommand of another build of the binary.
func (s *server) adminWith(t *testing.T, bin string, wantCode int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = s.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	out := stdout.String() + stderr.String()
	if code != wantCode {
		t.Fatalf("invoicer %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out)
	}
	return out
}
