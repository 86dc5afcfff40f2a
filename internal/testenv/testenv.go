// Package testenv gives tests the real services they run against:
// PostgreSQL from TEST_DATABASE_URL, Redis from TEST_REDIS_URL and PgBouncer
// from TEST_PGBOUNCER_URL, each defaulting to the local server; a second
// PostgreSQL server from TEST_DATABASE_URL2 and a Citus coordinator from
// TEST_CITUS_URL, which have no default. A test whose
// service does not answer is skipped with a message naming the variable,
// except under CI=true, where it fails: CI never passes by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Defaults used when the variables are unset: the local servers.
const (
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// Role names the tests use. They are cluster-wide and created on demand.
const (
	// AppRole is a login role that is not superuser, has NOBYPASSRLS and owns
	// nothing: the role an application connects as.
	AppRole = "tenancy_app"
	// OwnerRole is a login role that owns the tables it creates, as a
	// migration role does.
	OwnerRole = "tenancy_owner"
)

// Unavailable skips t with a message naming the variable that points at the
// service, or fails it under CI=true.
func Unavailable(t testing.TB, service, variable string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s is not reachable (set %s): %v", service, variable, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// DatabaseURL returns TEST_DATABASE_URL or DefaultDatabaseURL. It must name a
// superuser: tests create databases and roles.
func DatabaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// RedisURL returns TEST_REDIS_URL or DefaultRedisURL.
func RedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return DefaultRedisURL
}

var (
	adminOnce sync.Once
	adminPool *pgxpool.Pool
	adminErr  error
)

// Admin returns a pool on TEST_DATABASE_URL, shared by the tests of one
// package, connected as a superuser.
func Admin(t testing.TB) *pgxpool.Pool {
	t.Helper()
	adminOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cfg, err := pgxpool.ParseConfig(DatabaseURL())
		if err != nil {
			adminErr = err
			return
		}
		cfg.MaxConns = 4
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err == nil {
			err = p.Ping(ctx)
		}
		if err != nil {
			adminErr = err
			if p != nil {
				p.Close()
			}
			return
		}
		adminPool = p
	})
	if adminErr != nil {
		Unavailable(t, "PostgreSQL", "TEST_DATABASE_URL", adminErr)
	}
	return adminPool
}

// RandomName returns prefix followed by 12 random hex digits: a name no other
// test uses.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// NewDatabase creates an empty database for t, dropped when t ends, and
// returns a superuser DSN for it. As the toolkit's setup requires, PUBLIC
// may not create temporary tables in it.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, Admin(t), DatabaseURL())
}

// SecondDatabaseURL returns TEST_DATABASE_URL2, a superuser URL of a second
// PostgreSQL server (tenants placed over two servers), after checking that
// it answers. Unset, the test skips, or fails under CI=true.
func SecondDatabaseURL(t testing.TB) string {
	t.Helper()
	return serviceURL(t, "second PostgreSQL server", "TEST_DATABASE_URL2")
}

// CitusURL returns TEST_CITUS_URL, a superuser URL of a Citus coordinator
// with workers registered, after checking that it answers. Unset, the test
// skips, or fails under CI=true.
func CitusURL(t testing.TB) string {
	t.Helper()
	return serviceURL(t, "Citus coordinator", "TEST_CITUS_URL")
}

func serviceURL(t testing.TB, service, variable string) string {
	t.Helper()
	u := os.Getenv(variable)
	if u == "" {
		Unavailable(t, service, variable, fmt.Errorf("variable is unset"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err == nil {
		err = c.Ping(ctx)
		_ = c.Close(ctx)
	}
	if err != nil {
		Unavailable(t, service, variable, err)
	}
	return u
}

var secondAdmins sync.Map // URL -> *pgxpool.Pool

// AdminOn returns a superuser pool on url (a server other than
// TEST_DATABASE_URL's), shared by the tests of one package and never
// closed.
func AdminOn(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	if v, ok := secondAdmins.Load(url); ok {
		return v.(*pgxpool.Pool)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	cfg.MaxConns = 4
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	if v, loaded := secondAdmins.LoadOrStore(url, p); loaded {
		p.Close()
		return v.(*pgxpool.Pool)
	}
	return p
}

// NewDatabaseOn is NewDatabase on the server of url (a superuser URL, such
// as SecondDatabaseURL's).
func NewDatabaseOn(t testing.TB, url string) string {
	t.Helper()
	return newDatabase(t, AdminOn(t, url), url)
}

// EnsureRoleOn is EnsureRole on the server of url.
func EnsureRoleOn(t testing.TB, url, role string) {
	t.Helper()
	ensureRole(t, AdminOn(t, url), role)
}

func newDatabase(t testing.TB, admin *pgxpool.Pool, url string) string {
	t.Helper()
	name := RandomName("tenancy_test_")
	ctx := context.Background()
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("create database: %v", err)
	}
	if _, err := admin.Exec(ctx, "REVOKE TEMPORARY ON DATABASE "+ident+" FROM PUBLIC"); err != nil {
		t.Fatalf("revoke temporary: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return WithDatabase(url, name)
}

// WithDatabase returns dsn pointing at database db.
func WithDatabase(dsn, db string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(fmt.Sprintf("testenv: DSN is not a URL: %v", err))
	}
	u.Path = "/" + db
	return u.String()
}

// WithUser returns dsn connecting as user, without a password (the local
// servers trust loopback connections).
func WithUser(dsn, user string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(fmt.Sprintf("testenv: DSN is not a URL: %v", err))
	}
	u.User = url.User(user)
	return u.String()
}

// WithParam returns dsn with a query parameter set.
func WithParam(dsn, key, value string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(fmt.Sprintf("testenv: DSN is not a URL: %v", err))
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// EnsureRole creates a login role, NOSUPERUSER NOBYPASSRLS, unless it exists.
// Concurrent test processes may race to create it; the loser's error is
// ignored.
func EnsureRole(t testing.TB, role string) {
	t.Helper()
	ensureRole(t, Admin(t), role)
}

func ensureRole(t testing.TB, admin *pgxpool.Pool, role string) {
	t.Helper()
	sql := fmt.Sprintf(`DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %[1]s) THEN
    CREATE ROLE %[2]s LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$`, quoteLiteral(role), pgx.Identifier{role}.Sanitize())
	if _, err := admin.Exec(context.Background(), sql); err != nil {
		t.Fatalf("ensure role %s: %v", role, err)
	}
}

func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// Pool opens a pool on dsn for t, closed when t ends.
func Pool(t testing.TB, dsn string, configure ...func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	for _, f := range configure {
		f(cfg)
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

var (
	redisOnce sync.Once
	redisOpts *redis.Options
	redisErr  error
)

// Redis returns a client on TEST_REDIS_URL, closed when t ends. Tests share
// the server: keep keys under a prefix from RandomName.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	redisOnce.Do(func() {
		redisOpts, redisErr = redis.ParseURL(RedisURL())
		if redisErr != nil {
			return
		}
		c := redis.NewClient(redisOpts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		redisErr = c.Ping(ctx).Err()
	})
	if redisErr != nil {
		Unavailable(t, "Redis", "TEST_REDIS_URL", redisErr)
	}
	c := redis.NewClient(redisOpts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// PgBouncerURL returns TEST_PGBOUNCER_URL, a PgBouncer in transaction pooling
// mode in front of the test server, after checking that it answers.
func PgBouncerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TEST_PGBOUNCER_URL")
	if u == "" {
		Unavailable(t, "PgBouncer", "TEST_PGBOUNCER_URL", fmt.Errorf("variable is unset"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, WithParam(u, "default_query_exec_mode", "exec"))
	if err == nil {
		err = c.Ping(ctx)
		_ = c.Close(ctx)
	}
	if err != nil {
		Unavailable(t, "PgBouncer", "TEST_PGBOUNCER_URL", err)
	}
	return u
}

// RedisServer is a private redis-server process that a test may stop and
// start, to prove behaviour during an outage without touching the shared
// server.
type RedisServer struct {
	t    testing.TB
	Addr string
	cmd  *exec.Cmd
}

// StartRedisServer starts a private redis-server on a free loopback port; it
// is stopped when t ends. Without a redis-server binary the test skips, or
// fails under CI=true.
func StartRedisServer(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Unavailable(t, "redis-server binary", "PATH", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	s := &RedisServer{t: t, Addr: addr}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server (again) on its address and waits until it answers.
func (s *RedisServer) Start() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port,
		"--save", "", "--appendonly", "no", "--dir", os.TempDir())
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("redis-server on %s did not start", s.Addr)
}

// Stop kills the server and waits for it to exit.
func (s *RedisServer) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// URL returns a redis:// URL for the server.
func (s *RedisServer) URL() string { return "redis://" + s.Addr + "/0" }

// Port returns the server's port.
func (s *RedisServer) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// AdminExec runs sql as the superuser, retrying the errors that concurrent
// changes to cluster-wide catalogs (roles, grants) raise when test processes
// race: "tuple concurrently updated", duplicate role or key.
func AdminExec(t testing.TB, sql string) {
	t.Helper()
	AdminExecOn(t, Admin(t), sql)
}

// AdminExecOn is AdminExec on admin, a superuser pool of another server
// (AdminOn's).
func AdminExecOn(t testing.TB, admin *pgxpool.Pool, sql string) {
	t.Helper()
	var err error
	for range 20 {
		_, err = admin.Exec(context.Background(), sql)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) {
			break
		}
		if pgErr.Code != "XX000" && pgErr.Code != "23505" && pgErr.Code != "42710" && pgErr.Code != "40001" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("admin exec %q: %v", sql, err)
	}
}
