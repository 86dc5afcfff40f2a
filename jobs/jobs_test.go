package jobs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/jobs"
	"github.com/go-tenancy/tenancy/lifecycle"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

var errRollback = errors.New("roll back")

// sharedStrategies open the strategies where jobs and data share one
// database, on dsn, for tenants (whose schemas they create as the owner).
var sharedStrategies = []struct {
	name string
	open func(t *testing.T, e env, dsn string, tenants []*tenancy.Tenant) isolation.Provider
}{
	{"rls", openRLS},
	{"schema", openSchema},
	{"hybrid", openHybrid},
}

func openRLS(t *testing.T, _ env, dsn string, _ []*tenancy.Tenant) isolation.Provider {
	t.Helper()
	p, err := postgres.NewRLS(context.Background(), testenv.Pool(t, dsn), postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func openSchema(t *testing.T, e env, dsn string, tenants []*tenancy.Tenant) isolation.Provider {
	t.Helper()
	ctx := context.Background()
	admin, err := postgres.NewSchema(ctx, testenv.Pool(t, e.owner), postgres.SchemaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		if err := admin.Initialize(ctx, tn); err != nil {
			t.Fatal(err)
		}
		name, _ := admin.SchemaName(tn)
		createTables(t, e.owner, name, tn)
	}
	p, err := postgres.NewSchema(ctx, testenv.Pool(t, dsn), postgres.SchemaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// openHybrid puts the first tenant in a schema and the rest in shared
// tables.
func openHybrid(t *testing.T, e env, dsn string, tenants []*tenancy.Tenant) isolation.Provider {
	t.Helper()
	for i, tn := range tenants {
		tn.Tier = "starter"
		if i == 0 {
			tn.Tier = "enterprise"
		}
	}
	schema := openSchema(t, e, dsn, tenants[:1])
	h, err := isolation.NewHybrid(isolation.HybridConfig{
		Tiers:     map[string]tenancy.Isolation{"enterprise": tenancy.IsolationSchema},
		Default:   tenancy.IsolationRLS,
		Providers: map[tenancy.Isolation]isolation.Provider{tenancy.IsolationRLS: openRLS(t, e, dsn, nil), tenancy.IsolationSchema: schema},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// setup opens a shared-database fixture: River running as the application
// role, tenants active in a memory store.
func setup(t *testing.T, strategy string, n int, o clientOpts) (*fixture, []*tenancy.Tenant) {
	t.Helper()
	e := newEnv(t)
	tenants := isolationtest.Tenants(n)
	var p isolation.Provider
	for _, s := range sharedStrategies {
		if s.name == strategy {
			p = s.open(t, e, e.app, tenants)
		}
	}
	store := memstore.New()
	addTenants(t, store, tenants...)
	client, runs, logs, appPool := startClient(t, e, store, p, o)
	queue, err := jobs.NewPostgresQueue(appPool, "")
	if err != nil {
		t.Fatal(err)
	}
	enq, err := jobs.NewEnqueuer(jobs.EnqueuerConfig{Provider: p, Client: client, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: e, store: store, provider: p, client: client, queue: queue, enq: enq, runs: runs, logs: logs, appPool: appPool}, tenants
}

func TestJobCommitsWithItsData(t *testing.T) {
	t.Parallel()
	for _, s := range sharedStrategies {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f, tenants := setup(t, s.name, 2, clientOpts{})
			tn := tenants[0]
			if !f.enq.Shares(tn) {
				t.Fatal("Shares = false for a tenant in the queue's database")
			}

			err := f.enq.Tx(ctx, tn, func(tx *jobs.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO notes (id, title) VALUES ('n0', 'rolled back')"); err != nil {
					return err
				}
				if err := tx.Insert(ctx, noteArgs{TenantArgs: jobs.For(tn), Note: "rolled-back"}, nil); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatalf("Tx = %v, want the callback's error", err)
			}
			err = f.enq.Tx(ctx, tn, func(tx *jobs.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO notes (id, title) VALUES ('n1', 'kept')"); err != nil {
					return err
				}
				return tx.Insert(ctx, noteArgs{TenantArgs: jobs.For(tn), Note: "committed"}, nil)
			})
			if err != nil {
				t.Fatal(err)
			}

			r := waitRun(t, f.runs)
			if r.Note != "committed" || r.CtxTenant != tn.ID || r.Err != nil || r.Notes != 1 {
				t.Fatalf("run = %+v, want the committed job in tenant %s seeing its one note", r, tn.ID)
			}
			noRun(t, f.runs, 300*time.Millisecond)
			var n int
			if err := f.appPool.QueryRow(ctx, "SELECT count(*) FROM river.river_job").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Fatalf("%d jobs in the queue, want 1: the rolled-back one must not exist", n)
			}
		})
	}
}

func TestRetriesKeepTheTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, tenants := setup(t, "rls", 2, clientOpts{})
	tn := tenants[1]

	err := f.enq.Tx(ctx, tn, func(tx *jobs.Tx) error {
		return tx.Insert(ctx, noteArgs{TenantArgs: jobs.For(tn), Note: "flaky", FailFirst: true}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	first, second := waitRun(t, f.runs), waitRun(t, f.runs)
	if first.Attempt != 1 || second.Attempt != 2 {
		t.Fatalf("attempts %d, %d; want 1, 2", first.Attempt, second.Attempt)
	}
	for _, r := range []run{first, second} {
		if r.CtxTenant != tn.ID || r.ArgsTenant != tn.ID {
			t.Fatalf("attempt %d ran in tenant %q, want %s", r.Attempt, r.CtxTenant, tn.ID)
		}
	}
	waitState(t, f.appPool, "flaky", "completed")
	var lines int
	for line := range strings.SplitSeq(f.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"note job ran"`) {
			lines++
			if !strings.Contains(line, `"tenant_id":"`+tn.ID+`"`) || !strings.Contains(line, `"tenant":"`+tn.Identifier+`"`) {
				t.Fatalf("log line without the tenant: %s", line)
			}
		}
	}
	if lines != 2 {
		t.Fatalf("%d log lines from the job, want 2:\n%s", lines, f.logs.String())
	}
}

func TestTenantStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, tenants := setup(t, "rls", 3, clientOpts{snooze: time.Hour})
	suspended, deleted, unknown := tenants[0], tenants[1], tenants[2]
	if _, err := f.store.SetStatus(ctx, suspended.ID, tenancy.StatusSuspended, "unpaid"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Delete(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	// An unknown tenant: its record is gone, its jobs are not.
	for _, tn := range []*tenancy.Tenant{suspended, deleted, unknown} {
		err := f.enq.Tx(ctx, tn, func(tx *jobs.Tx) error {
			return tx.Insert(ctx, noteArgs{TenantArgs: jobs.For(tn), Note: tn.Identifier}, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.store.Purge(ctx, unknown.ID); err != nil {
		t.Fatal(err)
	}

	waitState(t, f.appPool, deleted.Identifier, "cancelled")
	waitState(t, f.appPool, unknown.Identifier, "cancelled")
	waitState(t, f.appPool, suspended.Identifier, "scheduled")
	noRun(t, f.runs, 500*time.Millisecond)

	active, err := f.store.SetStatus(ctx, suspended.ID, tenancy.StatusActive, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.queue.Hook()(ctx, lifecycle.Event{Kind: lifecycle.Activated, Tenant: active}); err != nil {
		t.Fatal(err)
	}
	r := waitRun(t, f.runs)
	if r.Note != suspended.Identifier || r.CtxTenant != suspended.ID {
		t.Fatalf("run = %+v, want the suspended tenant's job after activation", r)
	}
	waitState(t, f.appPool, suspended.Identifier, "completed")
}

func TestPurgeRemovesJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, tenants := setup(t, "rls", 2, clientOpts{})
	gone, kept := tenants[0], tenants[1]
	for _, tn := range tenants {
		err := f.enq.Tx(ctx, tn, func(tx *jobs.Tx) error {
			if err := tx.Insert(ctx, noteArgs{TenantArgs: jobs.For(tn), Note: tn.Identifier + "-done"}, nil); err != nil {
				return err
			}
			return tx.Insert(ctx, noteArgs{TenantArgs: jobs.For(tn), Note: tn.Identifier + "-later"}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, f.appPool, gone.Identifier+"-done", "completed")
	waitState(t, f.appPool, kept.Identifier+"-done", "completed")

	left, err := f.queue.Residue(ctx, gone)
	if err != nil || len(left) != 2 {
		t.Fatalf("Residue before the purge = %v, %v; want a completed and a scheduled job", left, err)
	}
	m, err := lifecycle.New(lifecycle.Config{Store: f.store, Provider: f.provider, Components: []tenancy.Component{f.queue}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Purge(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if left, err := m.Residue(ctx, gone); err != nil || len(left) != 0 {
		t.Fatalf("Residue after the purge = %v, %v; want nothing", left, err)
	}
	if left, err := f.queue.Residue(ctx, kept); err != nil || len(left) != 2 {
		t.Fatalf("the other tenant's jobs: %v, %v; want both kept", left, err)
	}
}

// TestTenantScopeConfined checks, connected as the application role, the
// owner and a superuser, that a tenant's transaction inserts its own jobs
// and cannot read, change or insert another tenant's.
func TestTenantScopeConfined(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, kind := range dsnKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			tenants := isolationtest.Tenants(2)
			a, b := tenants[0], tenants[1]
			p := openRLS(t, e, e.dsn(kind), nil)
			mw, err := jobs.NewMiddleware(jobs.Config{Store: memstore.New()})
			if err != nil {
				t.Fatal(err)
			}
			client, err := river.NewClient(riverpgxv5.New(nil), &river.Config{Schema: jobs.DefaultSchema, Middleware: []rivertype.Middleware{mw}})
			if err != nil {
				t.Fatal(err)
			}
			// Unique by kind and period alone: without the tenant in the key, two
			// tenants' jobs would collide.
			unique := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: time.Hour}}
			insert := func(tn *tenancy.Tenant, args noteArgs) (*rivertype.JobInsertResult, error) {
				var res *rivertype.JobInsertResult
				err := pgx.BeginFunc(ctx, postgres.For(p, tn), func(tx pgx.Tx) error {
					var err error
					res, err = client.InsertTx(ctx, tx, args, unique)
					return err
				})
				return res, err
			}
			note := "n-" + kind
			for _, tn := range tenants {
				res, err := insert(tn, noteArgs{TenantArgs: jobs.For(tn), Note: note})
				if err != nil {
					t.Fatalf("insert for %s: %v", tn.ID, err)
				}
				if res.UniqueSkippedAsDuplicate {
					t.Fatalf("%s's unique job was skipped as a duplicate of another tenant's", tn.ID)
				}
			}
			if res, err := insert(a, noteArgs{TenantArgs: jobs.For(a), Note: note}); err != nil || !res.UniqueSkippedAsDuplicate {
				t.Fatalf("second unique insert for %s: %v, %v; want skipped", a.ID, res, err)
			}
			if _, err := insert(a, noteArgs{TenantArgs: jobs.For(b), Note: "forged"}); !isPolicyViolation(err) {
				t.Fatalf("insert of %s's job in %s's scope: %v, want a policy violation", b.ID, a.ID, err)
			}

			qa := postgres.For(p, a)
			var own, other int
			if err := qa.QueryRow(ctx, "SELECT count(*) FILTER (WHERE args->>'tenant_id' = $1), count(*) FILTER (WHERE args->>'tenant_id' <> $1) FROM river.river_job WHERE args->>'note' = $2", a.ID, note).Scan(&own, &other); err != nil {
				t.Fatal(err)
			}
			if own != 1 || other != 0 {
				t.Fatalf("%s's scope sees %d own and %d other jobs, want 1 and 0", a.ID, own, other)
			}
			tag, err := qa.Exec(ctx, "UPDATE river.river_job SET kind = 'hijacked' WHERE args->>'tenant_id' = $1", b.ID)
			if err != nil || tag.RowsAffected() != 0 {
				t.Fatalf("update of %s's jobs from %s's scope: %v, %v; want nothing updated", b.ID, a.ID, tag, err)
			}
			for _, stmt := range []string{
				"UPDATE river.river_job SET state = 'cancelled'",
				"DELETE FROM river.river_job",
				"SELECT count(*) FROM river.river_leader",
			} {
				if _, err := qa.Exec(ctx, stmt); pgCode(err) != "42501" {
					t.Fatalf("%s in a tenant's scope: %v, want permission denied", stmt, err)
				}
			}
			// The application role, unscoped, sees both.
			var all int
			if err := testenv.Pool(t, e.app).QueryRow(ctx, "SELECT count(*) FROM river.river_job WHERE args->>'note' = $1", note).Scan(&all); err != nil || all != 2 {
				t.Fatalf("the application role sees %d jobs (%v), want 2", all, err)
			}
		})
	}
}

func TestDatabaseSQLInsertTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, tenants := setup(t, "rls", 1, clientOpts{})
	tn := tenants[0]
	db, err := postgres.OpenDB(f.provider)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	mw, err := jobs.NewMiddleware(jobs.Config{Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	sqlClient, err := river.NewClient(riverdatabasesql.New(nil), &river.Config{Schema: jobs.DefaultSchema, Middleware: []rivertype.Middleware{mw}})
	if err != nil {
		t.Fatal(err)
	}
	tctx := tenancy.WithTenant(ctx, tn)
	for _, commit := range []bool{false, true} {
		note := "sql-rolled-back"
		if commit {
			note = "sql-committed"
		}
		tx, err := db.BeginTx(tctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(tctx, "INSERT INTO notes (id, title) VALUES ($1, $1)", note); err != nil {
			t.Fatal(err)
		}
		if _, err := sqlClient.InsertTx(tctx, tx, noteArgs{TenantArgs: jobs.For(tn), Note: note}, nil); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	r := waitRun(t, f.runs)
	if r.Note != "sql-committed" || r.CtxTenant != tn.ID || r.Notes != 1 {
		t.Fatalf("run = %+v, want the committed job seeing its note", r)
	}
	noRun(t, f.runs, 300*time.Millisecond)

	// A job for another tenant than the context's is refused before SQL.
	other := isolationtest.Tenants(1)[0]
	tx, err := db.BeginTx(tctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := sqlClient.InsertTx(tctx, tx, noteArgs{TenantArgs: jobs.For(other), Note: "x"}, nil); !errors.Is(err, jobs.ErrTenantMismatch) {
		t.Fatalf("InsertTx for another tenant = %v, want ErrTenantMismatch", err)
	}
}

// TestDoctorAcceptsTheQueue checks that the queue's migration gives the
// isolation doctor nothing to report (no TEMPORARY right, no table owned by
// the application role, no grant on tenant schemas).
func TestDoctorAcceptsTheQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	rep, err := postgres.Doctor(ctx, testenv.Pool(t, e.super), postgres.DoctorConfig{AppRole: testenv.AppRole})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("finding: %s", f)
	}
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func isPolicyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501" && strings.Contains(pgErr.Message, "row-level security")
}
