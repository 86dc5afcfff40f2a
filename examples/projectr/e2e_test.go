package main

import (
	"bytes"
	"context"
	"io"
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
)

// End-to-end tests: the binary built with `go build`, started as a
// subprocess on a free port and driven over HTTP, as a user runs it.

const e2eSecret = "e2e-projectr-jwt-secret-0123456789abcdef"

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)

	t.Run("SQLiteDefault", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := startServer(t, bin, map[string]string{"DATA_DIR": dir})
		c := s.client()
		seedFlow(t, c, "file", "file")
		isolationOnEveryRoute(t, c)
		for _, f := range []string{"acme-corp.db", "dev-labs.db", tenantStoreFile, queueFile} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("DATA_DIR lacks %s: %v", f, err)
			}
		}
		// Without JWT_SECRET the key is random: the process says so.
		if !strings.Contains(s.logs.String(), "JWT_SECRET is unset") {
			t.Error("no warning about the random signing key")
		}
	})

	t.Run("PostgresRedisTwoInstances", func(t *testing.T) {
		t.Parallel()
		testenv.Redis(t)
		pg := newPostgresEnv(t)
		env := map[string]string{
			"DATABASE_URL":           pg.appURL,
			"MIGRATION_DATABASE_URL": pg.ownerURL,
			"REDIS_URL":              testenv.RedisURL(),
			"REDIS_PREFIX":           testenv.RandomName("projectr-e2e-") + ":",
			"SEED_DEMO":              "true",
			"JWT_SECRET":             e2eSecret,
		}
		a := startServer(t, bin, env)
		b := startServer(t, bin, env)
		ca, cb := a.client(), b.client()
		seedFlow(t, ca, "schema", "rls")
		isolationOnEveryRoute(t, ca)

		// A token from one instance works on the other (shared JWT_SECRET),
		// and a list cached on a is never served after b's write returned.
		tok := ca.token(t, "tech-corp")
		before := ca.list(t, tok)
		cb.expect(t, "POST", "/projects", tok, `{"name":"written on b"}`, http.StatusCreated)
		if after := ca.list(t, tok); len(after) != len(before)+1 {
			t.Fatalf("instance a lists %d projects after b's write, want %d", len(after), len(before)+1)
		}

		quotaRace(t, ca, "dev-labs")
		setTier(t, bin, env, ca, cb)
	})

	t.Run("RestartWithJobsQueued", func(t *testing.T) {
		t.Parallel()
		pg := newPostgresEnv(t)
		env := map[string]string{
			"DATABASE_URL":           pg.appURL,
			"MIGRATION_DATABASE_URL": pg.ownerURL,
			"SEED_DEMO":              "true",
			"JWT_SECRET":             e2eSecret,
			"JOB_WORKERS":            "0",
		}
		restartWithJobsQueued(t, bin, env)
	})

	t.Run("SQLiteRestartWithJobsQueued", func(t *testing.T) {
		t.Parallel()
		restartWithJobsQueued(t, bin, map[string]string{"DATA_DIR": t.TempDir(), "JWT_SECRET": e2eSecret, "JOB_WORKERS": "0"})
	})
}

// restartWithJobsQueued queues an export on a server that works no jobs,
// stops it, and checks that the next server, which works them, runs it
// for the same tenant, and the old token still works (JWT_SECRET).
func restartWithJobsQueued(t *testing.T, bin string, env map[string]string) {
	t.Helper()
	first := startServer(t, bin, env)
	c := first.client()
	tok := c.token(t, "acme-corp")
	var p Project
	c.expect(t, "POST", "/projects", tok, `{"name":"export me"}`, http.StatusCreated).json(t, &p)
	c.expect(t, "POST", "/projects/"+p.ID+"/tasks", tok, `{"title":"a","status":"in_progress"}`, http.StatusCreated)
	var job struct {
		JobID string `json:"job_id"`
	}
	c.expect(t, "POST", "/projects/"+p.ID+"/export", tok, "", http.StatusAccepted).json(t, &job)
	time.Sleep(500 * time.Millisecond)
	var e Export
	c.expect(t, "GET", "/jobs/"+job.JobID, tok, "", http.StatusOK).json(t, &e)
	if e.Status != ExportQueued {
		t.Fatalf("job on a server without workers: %s", e.Status)
	}
	first.stop(t)

	env["JOB_WORKERS"] = "2"
	second := startServer(t, bin, env)
	c = second.client()
	e = c.waitJob(t, tok, job.JobID)
	if e.Result == nil || e.Result.Total != 1 || e.Result.Tasks[StatusInProgress] != 1 {
		t.Fatalf("job after the restart: %+v", e)
	}
	other := c.token(t, "tech-corp")
	c.expect(t, "GET", "/jobs/"+job.JobID, other, "", http.StatusNotFound)
}

// seedFlow is the README's flow, as a user types it.
func seedFlow(t *testing.T, c *apiClient, enterprise, starter string) {
	t.Helper()
	acme := c.token(t, "acme-corp")
	var p Project
	c.expect(t, "POST", "/projects", acme, `{"name": "Mars Mission", "description": "Land on Mars by 2030"}`, http.StatusCreated).json(t, &p)
	if p.Name != "Mars Mission" || p.TenantID != "tenant-acme-001" {
		t.Fatalf("created %+v", p)
	}
	startup := c.token(t, "startup-x")
	if ps := c.list(t, startup); len(ps) != 0 {
		t.Fatalf("startup-x sees %+v", ps)
	}
	for i := range 3 {
		c.expect(t, "POST", "/projects", startup, `{"name":"p`+strconv.Itoa(i)+`"}`, http.StatusCreated)
	}
	r := c.expect(t, "POST", "/projects", startup, `{"name":"one too many"}`, http.StatusForbidden)
	var pd map[string]any
	r.json(t, &pd)
	if pd["resource"] != "projects" || pd["limit"] != float64(3) || pd["tier"] != "starter" || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("4th project: %s", r.body)
	}
	for id, iso := range map[string]string{"acme-corp": enterprise, "startup-x": starter} {
		var info TenantInfo
		c.expect(t, "GET", "/tenant", c.token(t, id), "", http.StatusOK).json(t, &info)
		if info.Isolation != iso {
			t.Errorf("%s isolation %q, want %q", id, info.Isolation, iso)
		}
	}
	c.expect(t, "POST", "/auth/token", "", `{"tenant_id":"acme-corp","secret":"wrong"}`, http.StatusUnauthorized)
	c.expect(t, "GET", "/projects", acme, "", http.StatusForbidden, "X-Tenant-ID", "startup-x")
}

// isolationOnEveryRoute: each of the four tenants, in both tiers, gets
// 404 for every other tenant's project, task and job on every route.
func isolationOnEveryRoute(t *testing.T, c *apiClient) {
	t.Helper()
	type owned struct{ tok, project, task, job string }
	all := map[string]owned{}
	for _, id := range []string{"acme-corp", "tech-corp", "startup-x", "dev-labs"} {
		tok := c.token(t, id)
		var p Project
		// Starter tenants may be at their quota: use a project they have.
		if ps := c.list(t, tok); len(ps) > 0 {
			p = ps[0]
		} else {
			c.expect(t, "POST", "/projects", tok, `{"name":"`+id+`"}`, http.StatusCreated).json(t, &p)
		}
		var task Task
		c.expect(t, "POST", "/projects/"+p.ID+"/tasks", tok, `{"title":"t"}`, http.StatusCreated).json(t, &task)
		var job struct {
			JobID string `json:"job_id"`
		}
		c.expect(t, "POST", "/projects/"+p.ID+"/export", tok, "", http.StatusAccepted).json(t, &job)
		all[id] = owned{tok, p.ID, task.ID, job.JobID}
	}
	for id, a := range all {
		for oid, o := range all {
			if id == oid {
				continue
			}
			for _, rq := range [][3]string{
				{"GET", "/projects/" + o.project, ""},
				{"PATCH", "/projects/" + o.project, `{"name":"x"}`},
				{"GET", "/projects/" + o.project + "/tasks", ""},
				{"POST", "/projects/" + o.project + "/tasks", `{"title":"x"}`},
				{"POST", "/projects/" + o.project + "/export", ""},
				{"PATCH", "/tasks/" + o.task, `{"title":"x"}`},
				{"DELETE", "/tasks/" + o.task, ""},
				{"GET", "/jobs/" + o.job, ""},
				{"DELETE", "/projects/" + o.project, ""},
			} {
				c.expect(t, rq[0], rq[1], a.tok, rq[2], http.StatusNotFound)
			}
			for _, p := range c.list(t, a.tok) {
				if p.ID == o.project {
					t.Errorf("%s lists %s's project", id, oid)
				}
			}
		}
		c.expect(t, "GET", "/projects/"+a.project, a.tok, "", http.StatusOK)
		c.waitJob(t, a.tok, a.job)
	}
}

// quotaRace: ten concurrent creates on an empty starter tenant leave
// exactly three.
func quotaRace(t *testing.T, c *apiClient, id string) {
	t.Helper()
	tok := c.token(t, id)
	for _, p := range c.list(t, tok) {
		c.expect(t, "DELETE", "/projects/"+p.ID, tok, "", http.StatusNoContent)
	}
	var wg sync.WaitGroup
	codes := make([]int, 10)
	for i := range codes {
		wg.Go(func() { codes[i] = c.do(t, "POST", "/projects", tok, `{"name":"race"}`).code })
	}
	wg.Wait()
	created := 0
	for _, code := range codes {
		switch code {
		case http.StatusCreated:
			created++
		case http.StatusForbidden:
		default:
			t.Errorf("concurrent create: %d", code)
		}
	}
	if n := len(c.list(t, tok)); created != 3 || n != 3 {
		t.Fatalf("%d created, %d listed; want 3 and 3 (%v)", created, n, codes)
	}
}

func buildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the binary: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "projectr")
	cmd := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// server is a running projectr process.
type server struct {
	url    string
	logs   *syncBuffer
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	once   sync.Once
}

// startServer starts the binary with env (and nothing else from this
// process's environment) on a free port and waits until /readyz answers.
// It is stopped with SIGTERM when t ends, and must then exit cleanly.
func startServer(t *testing.T, bin string, env map[string]string) *server {
	t.Helper()
	port := freePort(t)
	s := &server{url: "http://127.0.0.1:" + port, logs: &syncBuffer{}, exited: make(chan struct{})}
	vars := map[string]string{"LOG_FORMAT": "json", "HOME": os.Getenv("HOME"), "PORT": port}
	for k, v := range env {
		vars[k] = v
	}
	s.cmd = exec.Command(bin)
	for k, v := range vars {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.stop(t)
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

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			if s.err != nil {
				t.Errorf("server did not shut down cleanly: %v", s.err)
			}
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			t.Errorf("server ignored SIGTERM")
		}
	})
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

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// apiClient drives a server over HTTP.
type apiClient struct {
	base string
	hc   *http.Client
}

func (s *server) client() *apiClient {
	return &apiClient{base: s.url, hc: &http.Client{Timeout: 30 * time.Second}}
}

func (c *apiClient) do(t *testing.T, method, path, token, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, c.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// expect sends a request and checks its status.
func (c *apiClient) expect(t *testing.T, method, path, token, body string, code int, headers ...string) response {
	t.Helper()
	r := c.do(t, method, path, token, body, headers...)
	if r.code != code {
		t.Fatalf("%s %s: %d %s, want %d", method, path, r.code, r.body, code)
	}
	return r
}

func (c *apiClient) token(t *testing.T, id string) string {
	t.Helper()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	c.expect(t, "POST", "/auth/token", "", `{"tenant_id": "`+id+`", "secret": "demo"}`, http.StatusOK).json(t, &out)
	return out.AccessToken
}

func (c *apiClient) list(t *testing.T, tok string) []Project {
	t.Helper()
	var ps []Project
	c.expect(t, "GET", "/projects?limit=100", tok, "", http.StatusOK).json(t, &ps)
	return ps
}

// waitJob waits until the job is done.
func (c *apiClient) waitJob(t *testing.T, tok, id string) Export {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var e Export
		c.expect(t, "GET", "/jobs/"+id, tok, "", http.StatusOK).json(t, &e)
		if e.Status == ExportDone {
			return e
		}
		if e.Status == ExportFailed || time.Now().After(deadline) {
			t.Fatalf("job %s: %+v", id, e)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a process's output and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// setTier runs the binary's tenants set-tier against running instances:
// startup-x moves into a schema of its own and back, its projects served
// from the new place by both instances without a restart, its project
// limit following its tier.
func setTier(t *testing.T, bin string, env map[string]string, ca, cb *apiClient) {
	t.Helper()
	tok := ca.token(t, "startup-x")
	before := ca.list(t, tok)
	if len(before) == 0 {
		t.Fatal("startup-x has no projects to move")
	}
	for _, step := range []struct{ tier, place string }{{TierEnterprise, "schema tenant_startup_x"}, {TierStarter, "shared tables"}} {
		cmd := exec.Command(bin, "tenants", "set-tier", "startup-x", step.tier)
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "to "+step.place) {
			t.Fatalf("tenants set-tier startup-x %s: %v\n%s", step.tier, err, out)
		}
		for _, c := range []*apiClient{ca, cb} {
			if after := c.list(t, tok); len(after) != len(before) {
				t.Fatalf("after set-tier %s: %d projects listed, want %d", step.tier, len(after), len(before))
			}
		}
	}
}
