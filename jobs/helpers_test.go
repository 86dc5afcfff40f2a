package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/jobs"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

var rolesOnce sync.Once

// setupRoles creates the cluster-wide roles: the application and owner
// login roles and the tenant role granted to both.
func setupRoles(t testing.TB) {
	t.Helper()
	testenv.Admin(t)
	rolesOnce.Do(func() {
		testenv.EnsureRole(t, testenv.AppRole)
		testenv.EnsureRole(t, testenv.OwnerRole)
		testenv.AdminExec(t, `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenancy_tenant') THEN
    CREATE ROLE tenancy_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END $$`)
		testenv.AdminExec(t, "GRANT tenancy_tenant TO tenancy_app, tenancy_owner")
	})
}

// env is a fresh database with River migrated into its own schema by the
// owner, and a notes table plus the outbox in public under RLS.
type env struct {
	super, owner, app string
}

var dsnKinds = []string{"app", "owner", "superuser"}

func (e env) dsn(kind string) string {
	switch kind {
	case "app":
		return e.app
	case "owner":
		return e.owner
	}
	return e.super
}

func newEnv(t testing.TB) env {
	t.Helper()
	setupRoles(t)
	super := testenv.NewDatabase(t)
	pool := testenv.Pool(t, super)
	db := pool.Config().ConnConfig.Database
	mustExec(t, pool,
		"GRANT ALL ON SCHEMA public TO "+testenv.OwnerRole,
		"GRANT CREATE, CONNECT ON DATABASE "+pgx.Identifier{db}.Sanitize()+" TO "+testenv.OwnerRole)
	e := env{super: super, owner: testenv.WithUser(super, testenv.OwnerRole), app: testenv.WithUser(super, testenv.AppRole)}
	owner := testenv.Pool(t, e.owner)
	if err := jobs.MigratePostgres(context.Background(), owner, jobs.PostgresConfig{Grant: []string{testenv.AppRole}}); err != nil {
		t.Fatal(err)
	}
	createTables(t, e.owner, "public", nil)
	return e
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func mustExec(t testing.TB, db execer, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(context.Background(), s); err != nil {
			t.Fatalf("exec %q: %v", s, err)
		}
	}
}

// createTables creates notes and the outbox in schema as dsn's user, grants
// the tenant role their use and, for a tenant schema, seals it.
func createTables(t testing.TB, dsn, schema string, tenant *tenancy.Tenant) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	mustExec(t, conn, "SET search_path TO "+pgx.Identifier{schema}.Sanitize())
	mustExec(t, conn, append([]string{isolationtest.NotesPostgres}, postgres.EnableRLS("notes")...)...)
	mustExec(t, conn, jobs.OutboxDDL(isolation.Postgres)...)
	if err := postgres.GrantSchema(ctx, conn, schema, postgres.DefaultRole); err != nil {
		t.Fatal(err)
	}
	if tenant != nil {
		if err := postgres.SealSchema(ctx, conn, schema, tenant.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// noteArgs is the test job: it belongs to a tenant and counts the notes it
// sees in the tenant's scope.
type noteArgs struct {
	jobs.TenantArgs
	Note      string `json:"note"`
	FailFirst bool   `json:"fail_first,omitempty"`
}

func (noteArgs) Kind() string { return "note" }

// run is what one attempt of a job saw.
type run struct {
	JobID      int64
	Attempt    int
	Note       string
	ArgsTenant string
	CtxTenant  string // "" when the context carried none
	Notes      int    // notes visible in the context tenant's scope
	Err        error
}

type noteWorker struct {
	river.WorkerDefaults[noteArgs]
	provider isolation.Provider
	runs     chan run
}

func (w *noteWorker) Work(ctx context.Context, job *river.Job[noteArgs]) error {
	r := run{JobID: job.ID, Attempt: job.Attempt, Note: job.Args.Note, ArgsTenant: job.Args.TenantID}
	if t, ok := tenancy.FromContext(ctx); ok {
		r.CtxTenant = t.ID
		if w.provider != nil {
			db, err := isolation.FromContext(ctx, w.provider)
			if err == nil {
				err = db.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&r.Notes)
			}
			r.Err = err
		}
	}
	jobs.Logger(ctx).InfoContext(ctx, "note job ran")
	w.runs <- r
	if job.Args.FailFirst && job.Attempt == 1 {
		return errors.New("first attempt fails")
	}
	return nil
}

// quickRetry retries at once.
type quickRetry struct{}

func (quickRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

// fixture is a running River client on a PostgreSQL queue, with the
// middleware, a tenant store and a provider for the tenants' data.
type fixture struct {
	env      env
	store    *memstore.Store
	provider isolation.Provider
	client   *river.Client[pgx.Tx]
	queue    *jobs.Queue
	enq      *jobs.Enqueuer
	runs     chan run
	logs     *syncBuffer
	appPool  *pgxpool.Pool
}

type clientOpts struct {
	snooze time.Duration
}

// startClient starts River's client as the application role, with the
// middleware over store, working note jobs against provider.
func startClient(t *testing.T, e env, store tenancy.Store, provider isolation.Provider, o clientOpts) (*river.Client[pgx.Tx], chan run, *syncBuffer, *pgxpool.Pool) {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	mw, err := jobs.NewMiddleware(jobs.Config{Store: store, Snooze: o.snooze, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	runs := make(chan run, 100)
	workers := river.NewWorkers()
	river.AddWorker(workers, &noteWorker{provider: provider, runs: runs})
	appPool := testenv.Pool(t, e.app)
	client, err := river.NewClient(riverpgxv5.New(appPool), &river.Config{
		Schema:            jobs.DefaultSchema,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		Workers:           workers,
		Middleware:        []rivertype.Middleware{mw},
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		RetryPolicy:       quickRetry{},
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		TestOnly:          true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		_ = client.Stop(stopCtx)
		cancel()
	})
	return client, runs, logs, appPool
}

func addTenants(t testing.TB, store *memstore.Store, tenants ...*tenancy.Tenant) {
	t.Helper()
	for _, tn := range tenants {
		if _, err := store.Create(context.Background(), tn); err != nil {
			t.Fatal(err)
		}
	}
}

// waitRun waits for the next run of a job.
func waitRun(t testing.TB, runs chan run) run {
	t.Helper()
	select {
	case r := <-runs:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("no job ran within 15s")
	}
	return run{}
}

// noRun checks that no job runs within d.
func noRun(t testing.TB, runs chan run, d time.Duration) {
	t.Helper()
	select {
	case r := <-runs:
		t.Fatalf("a job ran: %+v", r)
	case <-time.After(d):
	}
}

// jobState returns the state of the only job whose note is note.
func jobState(t testing.TB, pool *pgxpool.Pool, note string) string {
	t.Helper()
	var state string
	err := pool.QueryRow(context.Background(), "SELECT state FROM river.river_job WHERE args->>'note' = $1", note).Scan(&state)
	if err != nil {
		t.Fatalf("job %q: %v", note, err)
	}
	return state
}

// waitState waits until the job whose note is note is in state.
func waitState(t testing.TB, pool *pgxpool.Pool, note, state string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := jobState(t, pool, note)
		if got == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %q is %s, want %s", note, got, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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
