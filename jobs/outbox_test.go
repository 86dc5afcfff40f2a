package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/go-tenancy/tenancy/jobs"
	"github.com/go-tenancy/tenancy/lifecycle"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
)

// openDatabases creates a database per tenant with notes and the outbox,
// and returns the provider connected as the application role.
func openDatabases(t *testing.T, e env, tenants []*tenancy.Tenant) *postgres.Database {
	t.Helper()
	ctx := context.Background()
	admin, err := postgres.NewDatabase(ctx, testenv.Pool(t, e.super), postgres.DatabaseConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, tn := range tenants {
			_ = admin.Destroy(context.Background(), tn)
		}
		admin.Close()
	})
	for _, tn := range tenants {
		if err := admin.Initialize(ctx, tn); err != nil {
			t.Fatal(err)
		}
		name, _ := admin.DatabaseName(tn)
		tenantSuper := testenv.WithDatabase(e.super, name)
		superConn := testenv.Pool(t, tenantSuper)
		mustExec(t, superConn, "GRANT ALL ON SCHEMA public TO "+testenv.OwnerRole)
		superConn.Close()
		createTables(t, testenv.WithUser(tenantSuper, testenv.OwnerRole), "public", nil)
	}
	p, err := postgres.NewDatabase(ctx, testenv.Pool(t, e.app), postgres.DatabaseConfig{MaxConnsPerTenant: 2, MaxTotalConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// failingRelay inserts the jobs, then fails, as a relay that dies before
// it could delete its outbox rows.
type failingRelay struct{ jobs.Inserter }

func (f failingRelay) InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	if _, err := f.Inserter.InsertMany(ctx, params); err != nil {
		return nil, err
	}
	return nil, errors.New("relay died")
}

func TestOutboxDatabasePerTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := isolationtest.Tenants(2)
	p := openDatabases(t, e, tenants)
	store := memstore.New()
	addTenants(t, store, tenants...)
	client, runs, _, appPool := startClient(t, e, store, p, clientOpts{})
	enq, err := jobs.NewEnqueuer(jobs.EnqueuerConfig{Provider: p, Client: client, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = enq.Run(runCtx) }()
	tn := tenants[0]
	if enq.Shares(tn) {
		t.Fatal("Shares = true for a tenant in its own database")
	}
	outboxed := func() int {
		t.Helper()
		var n int
		if err := p.QueryRow(ctx, tn, "SELECT count(*) FROM "+jobs.OutboxTable).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	err = enq.Tx(ctx, tn, func(tx *jobs.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO notes (id, title) VALUES ('n0', 'x')"); err != nil {
			return err
		}
		if err := tx.Insert(ctx, noteArgs{TenantArgs: jobs.For(tn), Note: "rolled-back"}, nil); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("Tx = %v", err)
	}
	if n := outboxed(); n != 0 {
		t.Fatalf("%d outbox rows after a rollback, want 0", n)
	}
	err = enq.Tx(ctx, tn, func(tx *jobs.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO notes (id, title) VALUES ('n1', 'x')"); err != nil {
			return err
		}
		return tx.Insert(ctx, noteArgs{TenantArgs: jobs.For(tn), Note: "committed"}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	r := waitRun(t, runs)
	if r.Note != "committed" || r.CtxTenant != tn.ID || r.Notes != 1 || r.Err != nil {
		t.Fatalf("run = %+v, want the committed job in its tenant's database", r)
	}
	// The relay inserts the job into the queue, then deletes the outbox
	// row in the tenant's own database: the job may run before that delete
	// commits, so wait for it (bounded) rather than read once.
	n := outboxed()
	for deadline := time.Now().Add(5 * time.Second); n != 0 && time.Now().Before(deadline); n = outboxed() {
		time.Sleep(10 * time.Millisecond)
	}
	if n != 0 {
		t.Fatalf("%d outbox rows after the relay, want 0", n)
	}

	// A relay that dies after inserting leaves its rows; the next relay's
	// insert is a no-op, and the job exists once.
	dying, err := jobs.NewEnqueuer(jobs.EnqueuerConfig{Provider: p, Relay: failingRelay{client}, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	err = dying.Tx(ctx, tn, func(tx *jobs.Tx) error {
		return tx.Insert(ctx, noteArgs{TenantArgs: jobs.For(tn), Note: "twice"}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dying.Relay(ctx, tn); err == nil {
		t.Fatal("the dying relay succeeded")
	}
	if n := outboxed(); n != 1 {
		t.Fatalf("%d outbox rows after a failed relay, want 1", n)
	}
	if n, err := enq.Relay(ctx, tn); err != nil || n != 1 {
		t.Fatalf("Relay = %d, %v; want the row relayed again", n, err)
	}
	if r := waitRun(t, runs); r.Note != "twice" {
		t.Fatalf("run = %+v", r)
	}
	noRun(t, runs, 500*time.Millisecond)
	var copies int
	if err := appPool.QueryRow(ctx, "SELECT count(*) FROM river.river_job WHERE args->>'note' = 'twice'").Scan(&copies); err != nil || copies != 1 {
		t.Fatalf("%d copies of the job (%v), want 1", copies, err)
	}
	if n := outboxed(); n != 0 {
		t.Fatalf("%d outbox rows, want 0", n)
	}
}

// TestEmbeddedSQLite runs the queue in its own SQLite file and tenants in
// files of their own: jobs go through each tenant's outbox.
func TestEmbeddedSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	sp, err := sqlite.New(sqlite.Config{Dir: filepath.Join(dir, "tenants")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.Close)
	tenants := isolationtest.Tenants(2)
	for _, tn := range tenants {
		if err := sp.Initialize(ctx, tn); err != nil {
			t.Fatal(err)
		}
		for _, stmt := range append([]string{isolationtest.NotesSQLite}, jobs.OutboxDDL(isolation.SQLite)...) {
			if _, err := sp.Exec(ctx, tn, stmt); err != nil {
				t.Fatal(err)
			}
		}
	}
	queueDB, err := sp.Open(filepath.Join(dir, "jobs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = queueDB.Close() })
	if err := jobs.MigrateSQLite(ctx, queueDB); err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	addTenants(t, store, tenants...)
	mw, err := jobs.NewMiddleware(jobs.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	runs := make(chan run, 10)
	workers := river.NewWorkers()
	river.AddWorker(workers, &noteWorker{provider: sp, runs: runs})
	client, err := river.NewClient(riversqlite.New(queueDB), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:           workers,
		Middleware:        []rivertype.Middleware{mw},
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		TestOnly:          true,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
		stop()
	})
	if err := client.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	enq, err := jobs.NewEnqueuer(jobs.EnqueuerConfig{Provider: sp, Relay: client, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = enq.Run(runCtx) }()

	tn := tenants[0]
	err = enq.SQLTx(ctx, tn, func(tx *jobs.SQLTx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO notes (id, tenant_id, title) VALUES ('n0', ?, 'x')", tn.ID); err != nil {
			return err
		}
		if err := tx.Insert(ctx, noteArgs{TenantArgs: jobs.For(tn), Note: "rolled-back"}, nil); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("SQLTx = %v", err)
	}
	err = enq.SQLTx(ctx, tn, func(tx *jobs.SQLTx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO notes (id, tenant_id, title) VALUES ('n1', ?, 'x')", tn.ID); err != nil {
			return err
		}
		return tx.Insert(ctx, noteArgs{TenantArgs: jobs.For(tn), Note: "committed"}, &river.InsertOpts{Priority: 2})
	})
	if err != nil {
		t.Fatal(err)
	}
	r := waitRun(t, runs)
	if r.Note != "committed" || r.CtxTenant != tn.ID || r.Notes != 1 || r.Err != nil {
		t.Fatalf("run = %+v, want the committed job in its tenant's file", r)
	}
	noRun(t, runs, 300*time.Millisecond)
	var jobsLeft, priority int
	if err := queueDB.QueryRowContext(ctx, "SELECT count(*), max(priority) FROM river_job").Scan(&jobsLeft, &priority); err != nil || jobsLeft != 1 || priority != 2 {
		t.Fatalf("queue holds %d jobs of priority %d (%v), want the one committed with its options", jobsLeft, priority, err)
	}

	queue, err := jobs.NewSQLiteQueue(queueDB)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lifecycle.New(lifecycle.Config{Store: store, Provider: sp, Components: []tenancy.Component{queue}})
	if err != nil {
		t.Fatal(err)
	}
	if left, err := queue.Residue(ctx, tn); err != nil || len(left) != 1 {
		t.Fatalf("Residue before the purge = %v, %v", left, err)
	}
	if err := m.Purge(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	if left, err := m.Residue(ctx, tn); err != nil || len(left) != 0 {
		t.Fatalf("Residue after the purge = %v, %v; want nothing", left, err)
	}
}
