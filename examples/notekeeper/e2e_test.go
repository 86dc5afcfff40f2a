package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/problem"
)

// End-to-end tests: the binary built with `go build`, started as a
// subprocess on a free port and driven over HTTP, as a user runs it; its
// admin subcommands run as separate processes against the same storage.

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)

	t.Run("PostgresRedis", func(t *testing.T) {
		t.Parallel()
		testenv.Redis(t) // skips (or fails under CI=true) without Redis
		dsn := testenv.NewDatabase(t)
		testenv.EnsureRole(t, testenv.AppRole)
		s := startServer(t, bin, map[string]string{
			"DATABASE_URL":           testenv.WithUser(dsn, testenv.AppRole),
			"MIGRATION_DATABASE_URL": dsn,
			"REDIS_URL":              testenv.RedisURL(),
			"REDIS_PREFIX":           testenv.RandomName("notekeeper-e2e-") + ":",
			"TENANT_STORE":           "db",
			"SEED_DEMO":              "true",
			// High enough never to refuse a request of the test; the purge
			// then forgets rate-limit keys in Redis too, and checks them.
			"RATE_LIMIT_PER_MINUTE": "100000",
		})
		runContract(t, s.client())
		purged := testAdminReachesServer(t, s)

		// The notes are rows of one shared table, each with its tenant;
		// the purged tenant's are gone.
		super := testenv.Pool(t, dsn)
		var acmeRows, purgedRows int
		err := super.QueryRow(t.Context(), "SELECT count(*) FILTER (WHERE tenant_id = $1), count(*) FILTER (WHERE tenant_id = $2) FROM notes", acmeID, purged).
			Scan(&acmeRows, &purgedRows)
		if err != nil || acmeRows == 0 || purgedRows != 0 {
			t.Fatalf("notes table: %d acme rows, %d of the purged tenant, %v", acmeRows, purgedRows, err)
		}
		out := s.admin(t, 0, "doctor")
		if !strings.Contains(out, "no findings") {
			t.Fatalf("doctor: %s", out)
		}
		if out := s.admin(t, 0, "migrate", "status"); !strings.Contains(out, "shared") {
			t.Fatalf("migrate status: %s", out)
		}
		s.checkLogs(t)
	})

	t.Run("SQLiteDefault", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := startServer(t, bin, map[string]string{"DATA_DIR": dir})
		runContract(t, s.client())
		for _, f := range []string{"acme-corp.db", "globex.db", journalFile} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("DATA_DIR lacks %s: %v", f, err)
			}
		}
		// The tenant store lives in the server's memory: a tenant created
		// by another process could never reach it, so the command refuses.
		out := s.admin(t, 1, "tenants", "create", "--identifier", "initech", "--name", "Initech")
		if !strings.Contains(out, "TENANT_STORE=db") {
			t.Fatalf("create with the memory store: %s", out)
		}
		if out := s.admin(t, 0, "tenants", "list"); !strings.Contains(out, acme) || !strings.Contains(out, globex) {
			t.Fatalf("tenants list with the memory store lacks the seeds: %s", out)
		}
		s.checkLogs(t)
	})

	t.Run("SQLiteSharedTenantStore", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := startServer(t, bin, map[string]string{"DATA_DIR": dir, "TENANT_STORE": "db"})
		testAdminReachesServer(t, s)
		if _, err := os.Stat(filepath.Join(dir, tenantStoreFile)); err != nil {
			t.Fatalf("DATA_DIR lacks the tenant store: %v", err)
		}
	})
}

// testAdminReachesServer creates, suspends, reactivates, deletes and purges
// a tenant with the admin subcommands while the server runs, and checks
// that the server follows each change within a couple of seconds. It
// returns the purged tenant's ID.
func testAdminReachesServer(t *testing.T, s *server) string {
	c := s.client()
	ident := testenv.RandomName("initech-")
	id := "id-" + ident
	c.do(t, http.MethodGet, "/notes", ident, "").problem(t, http.StatusNotFound, problem.SlugTenantNotFound)

	s.admin(t, 0, "tenants", "create", "--identifier", ident, "--name", "Initech", "--id", id)
	// Until now the server remembered "no such tenant" for a moment.
	s.eventually(t, 5*time.Second, ident, http.StatusOK)
	n := c.createNote(t, ident, id, "Initech's first", "hello")
	if got := c.do(t, http.MethodGet, "/notes/"+n.ID, acme, ""); got.status != http.StatusNotFound {
		t.Fatalf("acme reads initech's note: %d", got.status)
	}

	s.admin(t, 0, "tenants", "suspend", "--reason", "unpaid", ident)
	s.eventually(t, 3*time.Second, ident, http.StatusForbidden).problem(t, http.StatusForbidden, problem.SlugTenantSuspended)
	c.do(t, http.MethodGet, "/notes", acme, "").want(t, http.StatusOK)

	s.admin(t, 0, "tenants", "activate", ident)
	notes := s.eventually(t, 3*time.Second, ident, http.StatusOK).notes(t)
	if len(notes) != 1 || notes[0].ID != n.ID {
		t.Fatalf("after reactivation initech lists %+v", notes)
	}

	s.admin(t, 0, "tenants", "delete", ident)
	s.eventually(t, 3*time.Second, ident, http.StatusForbidden).problem(t, http.StatusForbidden, problem.SlugTenantDeleted)

	// Purging checks itself that nothing of the tenant is left.
	s.admin(t, 0, "tenants", "purge", "--force", ident)
	s.eventually(t, 3*time.Second, ident, http.StatusNotFound).problem(t, http.StatusNotFound, problem.SlugTenantNotFound)
	c.do(t, http.MethodGet, "/notes", acme, "").want(t, http.StatusOK)
	return id
}

// buildBinary builds the example into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the binary: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "notekeeper")
	cmd := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// server is a running notekeeper process.
type server struct {
	bin  string
	env  []string
	url  string
	logs *syncBuffer
	proc *os.Process

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
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	s.proc = cmd.Process
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
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
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
		t.Fatalf("notekeeper %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out)
	}
	return out
}

// eventually polls GET /notes as tenant until it answers status, and
// returns that response.
func (s *server) eventually(t *testing.T, within time.Duration, tenant string, status int) apiResponse {
	t.Helper()
	c := s.client()
	deadline := time.Now().Add(within)
	for {
		r := c.do(t, http.MethodGet, "/notes", tenant, "")
		if r.status == status {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still gets %d after %v, want %d: %s", tenant, r.status, within, status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkLogs checks the server logged requests with their tenant and never
// repeated a tenant header value.
func (s *server) checkLogs(t *testing.T) {
	t.Helper()
	logs := s.logs.String()
	// An invalid header value is never logged; the valid identifier of an
	// unknown tenant is, with the outcome, as every refused request's.
	if strings.Contains(logs, marker+"_x") {
		t.Errorf("the log repeats the invalid header value %q", marker+"_x")
	}
	if !strings.Contains(logs, `"status":404,"bytes":`) || !strings.Contains(logs, `"tenant":"`+marker+`-unknown","outcome":"not_found"`) {
		t.Errorf("no request log line names the unknown tenant asked for:\n%s", logs)
	}
	want := `"msg":"request","method":"POST","path":"/notes","status":201`
	if !strings.Contains(logs, want) || !strings.Contains(logs, `"tenant_id":"`+acmeID+`","tenant":"`+acme+`"`) {
		t.Errorf("no request log line with the tenant:\n%s", logs)
	}
}
