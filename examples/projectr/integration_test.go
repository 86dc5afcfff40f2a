package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// postgresEnv is a database of its own for one test, set up as the
// example's setup command would: the owner runs migrations, the
// application role owns nothing, the tenant role is granted to both.
type postgresEnv struct {
	appURL, ownerURL, superURL string
}

func newPostgresEnv(t *testing.T) postgresEnv {
	t.Helper()
	super := testenv.NewDatabase(t)
	testenv.EnsureRole(t, testenv.AppRole)
	testenv.EnsureRole(t, testenv.OwnerRole)
	testenv.AdminExec(t, `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenancy_tenant') THEN
    CREATE ROLE tenancy_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
  END IF;
END $$`)
	testenv.AdminExec(t, "GRANT tenancy_tenant TO "+testenv.AppRole+", "+testenv.OwnerRole)
	db := pgx.Identifier{dbName(t, super)}.Sanitize()
	testenv.AdminExec(t, "ALTER DATABASE "+db+" OWNER TO "+testenv.OwnerRole)
	return postgresEnv{
		appURL:   testenv.WithUser(super, testenv.AppRole),
		ownerURL: testenv.WithUser(super, testenv.OwnerRole),
		superURL: super,
	}
}

func dbName(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

// quickRetry retries a failed job at once.
type quickRetry struct{}

func (quickRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

// testConfig is a configuration for an integration test: SQLite under
// dir, or PostgreSQL (pg set) with Redis under its own prefix.
func testConfig(dir string, pg *postgresEnv, redisPrefix string) Config {
	c := Config{Config: service.Config{
		Name: "projectr", DataDir: dir, TenantStore: service.StoreDB, MigrateOnStart: true, SeedDemo: true,
		RedisPrefix: "projectr:",
	}, JWTSecret: testKey, JWTIssuer: "projectr", JWTAudience: "projectr-api", TokenTTL: time.Hour, CacheTTL: time.Minute, AuthRatePerMinute: 10, JobWorkers: 4}
	if pg != nil {
		c.DatabaseURL, c.MigrationDatabaseURL = pg.appURL, pg.ownerURL
		c.RedisURL, c.RedisPrefix = testenv.RedisURL(), redisPrefix
	}
	return c
}

// openTest opens, migrates and seeds a backend, closed when t ends.
func openTest(t *testing.T, cfg Config, opts backendOptions) *backend {
	t.Helper()
	ctx := context.Background()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.RetryPolicy == nil {
		opts.RetryPolicy = quickRetry{}
	}
	b, err := openBackend(ctx, cfg, opts)
	if err != nil {
		if cfg.Postgres() {
			testenv.Unavailable(t, "PostgreSQL", "TEST_DATABASE_URL", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(b.close)
	if err := service.MigrateAll(ctx, b.migrator, b.logger); err != nil {
		t.Fatal(err)
	}
	if err := b.seed(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// startJobs works jobs until t ends.
func startJobs(t *testing.T, b *backend) {
	t.Helper()
	stop, err := b.startJobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
}

// kinds runs fn on SQLite and on PostgreSQL with Redis.
func kinds(t *testing.T, fn func(t *testing.T, cfg Config)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, testConfig(t.TempDir(), nil, ""))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		pg := newPostgresEnv(t)
		fn(t, testConfig(t.TempDir(), &pg, testenv.RandomName("projectr_test_")+":"))
	})
}

func tenant(t *testing.T, b *backend, identifier string) *tenancy.Tenant {
	t.Helper()
	tn, err := b.tenants.GetByIdentifier(context.Background(), identifier)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// TestQuotaRace: ten concurrent creates against a limit of three leave
// exactly three, in both tiers (PITFALLS 20). The enterprise tenant gets
// its own limit of 3 through its metadata.
func TestQuotaRace(t *testing.T) {
	t.Parallel()
	kinds(t, func(t *testing.T, cfg Config) {
		b := openTest(t, cfg, backendOptions{})
		ctx := context.Background()
		big, err := b.lifecycle.Provision(ctx, &tenancy.Tenant{ID: "tenant-big-001", Identifier: "big-corp", Name: "Big Corp",
			Tier: TierEnterprise, Metadata: map[string]any{"quotas": map[string]any{"projects": 3}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range []*tenancy.Tenant{tenant(t, b, "startup-x"), big} {
			var ok, refused atomic.Int32
			var wg sync.WaitGroup
			for range 10 {
				wg.Go(func() {
					_, err := b.projects.CreateProject(ctx, tn, NewProject{Name: "p"})
					var qe *tenancy.QuotaError
					switch {
					case err == nil:
						ok.Add(1)
					case errors.As(err, &qe) && qe.Limit == 3:
						refused.Add(1)
					default:
						t.Errorf("%s: %v", tn.Identifier, err)
					}
				})
			}
			wg.Wait()
			ps, err := b.projects.ListProjects(ctx, tn, Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if ok.Load() != 3 || refused.Load() != 7 || len(ps) != 3 {
				t.Fatalf("%s: %d created, %d refused, %d stored; want 3, 7, 3", tn.Identifier, ok.Load(), refused.Load(), len(ps))
			}
			// A delete gives the unit back.
			if err := b.projects.DeleteProject(ctx, tn, ps[0].ID); err != nil {
				t.Fatal(err)
			}
			if _, err := b.projects.CreateProject(ctx, tn, NewProject{Name: "again"}); err != nil {
				t.Fatalf("%s: create after a delete: %v", tn.Identifier, err)
			}
		}
	})
}

// TestIsolationAcrossTiers: each of the four tenants, in both tiers, sees
// and changes only its own rows, by every operation.
func TestIsolationAcrossTiers(t *testing.T) {
	t.Parallel()
	kinds(t, func(t *testing.T, cfg Config) {
		b := openTest(t, cfg, backendOptions{})
		ctx := context.Background()
		type owned struct {
			t       *tenancy.Tenant
			project Project
			task    Task
			export  Export
		}
		var all []owned
		for _, s := range seedTenants {
			tn := tenant(t, b, s.Identifier)
			p, err := b.projects.CreateProject(ctx, tn, NewProject{Name: s.Identifier + " project"})
			if err != nil {
				t.Fatal(err)
			}
			task, err := b.projects.CreateTask(ctx, tn, p.ID, NewTask{Title: "task", Status: StatusTodo})
			if err != nil {
				t.Fatal(err)
			}
			e, err := b.projects.RequestExport(ctx, tn, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, owned{tn, p, task, e})
		}
		name := "stolen"
		for _, a := range all {
			ps, err := b.projects.ListProjects(ctx, a.t, Page{Limit: 100})
			if err != nil || len(ps) != 1 || ps[0].ID != a.project.ID || ps[0].TenantID != a.t.ID {
				t.Fatalf("%s lists %+v, %v", a.t.Identifier, ps, err)
			}
			for _, o := range all {
				if o.t.ID == a.t.ID {
					continue
				}
				who := a.t.Identifier + " on " + o.t.Identifier + "'s "
				if _, err := b.projects.GetProject(ctx, a.t, o.project.ID); !errors.Is(err, ErrProjectNotFound) {
					t.Errorf("%sproject: get %v", who, err)
				}
				if _, err := b.projects.UpdateProject(ctx, a.t, o.project.ID, ProjectPatch{Name: &name}); !errors.Is(err, ErrProjectNotFound) {
					t.Errorf("%sproject: update %v", who, err)
				}
				if _, err := b.projects.ListTasks(ctx, a.t, o.project.ID, Page{Limit: 10}); !errors.Is(err, ErrProjectNotFound) {
					t.Errorf("%sproject: tasks %v", who, err)
				}
				if _, err := b.projects.CreateTask(ctx, a.t, o.project.ID, NewTask{Title: "x", Status: StatusTodo}); !errors.Is(err, ErrProjectNotFound) {
					t.Errorf("%sproject: add task %v", who, err)
				}
				if _, err := b.projects.UpdateTask(ctx, a.t, o.task.ID, TaskPatch{Title: &name}); !errors.Is(err, ErrTaskNotFound) {
					t.Errorf("%stask: update %v", who, err)
				}
				if err := b.projects.DeleteTask(ctx, a.t, o.task.ID); !errors.Is(err, ErrTaskNotFound) {
					t.Errorf("%stask: delete %v", who, err)
				}
				if _, err := b.projects.GetExport(ctx, a.t, o.export.ID); !errors.Is(err, ErrJobNotFound) {
					t.Errorf("%sjob: get %v", who, err)
				}
				if _, err := b.projects.RequestExport(ctx, a.t, o.project.ID); !errors.Is(err, ErrProjectNotFound) {
					t.Errorf("%sproject: export %v", who, err)
				}
				if err := b.projects.DeleteProject(ctx, a.t, o.project.ID); !errors.Is(err, ErrProjectNotFound) {
					t.Errorf("%sproject: delete %v", who, err)
				}
			}
		}
		for _, a := range all {
			p, err := b.projects.GetProject(ctx, a.t, a.project.ID)
			if err != nil || p.Name != a.project.Name {
				t.Errorf("%s's project after the others' attempts: %+v, %v", a.t.Identifier, p, err)
			}
			ts, err := b.projects.ListTasks(ctx, a.t, a.project.ID, Page{Limit: 10})
			if err != nil || len(ts) != 1 || ts[0].Title != "task" {
				t.Errorf("%s's tasks after the others' attempts: %+v, %v", a.t.Identifier, ts, err)
			}
		}
		if cfg.Postgres() {
			want := map[string]string{"acme-corp": "schema", "tech-corp": "schema", "startup-x": "rls", "dev-labs": "rls"}
			for id, iso := range want {
				if got := b.isolationOf(tenant(t, b, id)); got != iso {
					t.Errorf("%s isolated by %s, want %s", id, got, iso)
				}
			}
		}
	})
}

// TestJobs: an export runs in its tenant, keeps it on retries, waits while
// the tenant is suspended and runs once it is activated.
func TestJobs(t *testing.T) {
	t.Parallel()
	kinds(t, func(t *testing.T, cfg Config) {
		var attempts sync.Map // export ID -> attempts seen, with the tenant each saw
		before := func(ctx context.Context, job *river.Job[ExportArgs]) error {
			tn, _ := tenancy.FromContext(ctx)
			v, _ := attempts.LoadOrStore(job.Args.ExportID, &[]string{})
			seen := v.(*[]string)
			*seen = append(*seen, tn.ID)
			if job.Attempt < 3 {
				return errors.New("transient failure")
			}
			return nil
		}
		b := openTest(t, cfg, backendOptions{BeforeExport: before, JobSnooze: time.Hour})
		startJobs(t, b)
		ctx := context.Background()
		tn := tenant(t, b, "startup-x")
		p, err := b.projects.CreateProject(ctx, tn, NewProject{Name: "p"})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range []string{StatusTodo, StatusDone, StatusDone} {
			if _, err := b.projects.CreateTask(ctx, tn, p.ID, NewTask{Title: "t", Status: st}); err != nil {
				t.Fatal(err)
			}
		}
		e, err := b.projects.RequestExport(ctx, tn, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		done := waitExport(t, b, tn, e.ID, ExportDone)
		if done.Result == nil || done.Result.Total != 3 || done.Result.Tasks[StatusDone] != 2 || done.Result.Tasks[StatusTodo] != 1 {
			t.Fatalf("result %+v", done.Result)
		}
		v, _ := attempts.Load(e.ID)
		if seen := *v.(*[]string); len(seen) != 3 || seen[0] != tn.ID || seen[1] != tn.ID || seen[2] != tn.ID {
			t.Fatalf("attempts saw tenants %v, want %s three times", seen, tn.ID)
		}

		// Suspended: the job waits (snoozed for an hour) until activation
		// wakes it.
		if _, err := b.lifecycle.Suspend(ctx, tn.ID, "test"); err != nil {
			t.Fatal(err)
		}
		e2, err := b.projects.RequestExport(ctx, tn, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // give a wrongly running job the chance to run
		if got, _ := b.store.GetExport(ctx, tn, e2.ID); got.Status != ExportQueued {
			t.Fatalf("a suspended tenant's job is %s, want queued", got.Status)
		}
		if _, err := b.lifecycle.Activate(ctx, tn.ID); err != nil {
			t.Fatal(err)
		}
		waitExport(t, b, tn, e2.ID, ExportDone)
	})
}

// waitExport waits for the export to reach status, failing on another end
// state.
func waitExport(t *testing.T, b *backend, tn *tenancy.Tenant, id, status string) Export {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		e, err := b.store.GetExport(context.Background(), tn, id)
		if err != nil {
			t.Fatal(err)
		}
		if e.Status == status {
			return e
		}
		if e.Status == ExportFailed || e.Status == ExportDone {
			t.Fatalf("export %s, want %s (%s)", e.Status, status, e.Error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("export still %s, want %s", e.Status, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestJobsSurviveRestartAndGoWithPurge: a job queued by one process is
// run by the next; a purged tenant's queued jobs are gone and nothing of
// it is left.
func TestJobsSurviveRestartAndGoWithPurge(t *testing.T) {
	t.Parallel()
	kinds(t, func(t *testing.T, cfg Config) {
		ctx := context.Background()
		first := openTest(t, cfg, backendOptions{})
		tn, gone := tenant(t, first, "dev-labs"), tenant(t, first, "tech-corp")
		var ids []string
		for _, x := range []*tenancy.Tenant{tn, gone} {
			p, err := first.projects.CreateProject(ctx, x, NewProject{Name: "p"})
			if err != nil {
				t.Fatal(err)
			}
			e, err := first.projects.RequestExport(ctx, x, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.ID)
		}
		if first.enqueuer != nil {
			// SQLite: the outbox rows are relayed by a running process;
			// this one relays them once and stops, as a process would
			// that was killed after relaying.
			for _, x := range []*tenancy.Tenant{tn, gone} {
				if _, err := first.enqueuer.Relay(ctx, x); err != nil {
					t.Fatal(err)
				}
			}
		}
		if left, err := first.queue.Residue(ctx, gone); err != nil || len(left) == 0 {
			t.Fatalf("before the purge the queue holds %v (%v), want the tenant's job", left, err)
		}
		if _, err := first.lifecycle.Delete(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		if err := first.lifecycle.Purge(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		if left, err := first.lifecycle.Residue(ctx, gone); err != nil || len(left) != 0 {
			t.Fatalf("after the purge: %v, %v", left, err)
		}
		first.close()

		second := openTest(t, cfg, backendOptions{})
		startJobs(t, second)
		waitExport(t, second, tn, ids[0], ExportDone)
	})
}

// TestCacheAcrossInstances: two instances share PostgreSQL and Redis; a
// read cached by one is never served after a write on the other returned.
// The mechanism, not a timing: a row written behind the cache's back stays
// unseen (the read is cached) until the other instance's write, after
// which both rows are seen at once.
func TestCacheAcrossInstances(t *testing.T) {
	t.Parallel()
	pg := newPostgresEnv(t)
	cfg := testConfig(t.TempDir(), &pg, testenv.RandomName("projectr_test_")+":")
	a := openTest(t, cfg, backendOptions{})
	b := openTest(t, cfg, backendOptions{})
	ctx := context.Background()
	for _, id := range []string{"startup-x", "acme-corp"} {
		ta, tb := tenant(t, a, id), tenant(t, b, id)
		if ps, err := a.projects.ListProjects(ctx, ta, Page{Limit: 10}); err != nil || len(ps) != 0 {
			t.Fatalf("%s: first list %v, %v", id, ps, err)
		}
		// Behind the cache: straight into the tenant's data, uncached.
		if _, err := a.store.CreateProject(ctx, ta, NewProject{Name: "behind"}); err != nil {
			t.Fatal(err)
		}
		if ps, _ := a.projects.ListProjects(ctx, ta, Page{Limit: 10}); len(ps) != 0 {
			t.Fatalf("%s: the list is not cached: %v", id, ps)
		}
		if _, err := b.projects.CreateProject(ctx, tb, NewProject{Name: "on b"}); err != nil {
			t.Fatal(err)
		}
		if ps, _ := a.projects.ListProjects(ctx, ta, Page{Limit: 10}); len(ps) != 2 {
			t.Fatalf("%s: instance a lists %d projects after b's write returned, want 2", id, len(ps))
		}
	}
}
