package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/move"
)

// TestSetTier: a starter tenant moves from the shared tables into a schema
// of its own and back while an instance serves it, with writers and readers
// running: no acknowledged write is lost, no read sees fewer tasks than one
// before it (as a read of a half-copied or emptied place would), nothing of
// the tenant is left at the old place, and its quota follows its tier.
func TestSetTier(t *testing.T) {
	t.Parallel()
	pg := newPostgresEnv(t)
	cfg := testConfig(t.TempDir(), &pg, "projectr_settier_"+fmt.Sprint(time.Now().UnixNano())+":")
	srv := openTest(t, cfg, backendOptions{})   // the serving instance
	admin := openTest(t, cfg, backendOptions{}) // where tenants set-tier runs
	ctx := context.Background()
	super := testenv.Pool(t, pg.superURL) // sees every row, policies or not
	start := tenant(t, srv, "startup-x")
	p, err := srv.projects.CreateProject(ctx, start, NewProject{Name: "moving"})
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		errs  = make(chan error, 16)
	)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// As a request does: the tenant resolved through the cache.
				tn, err := srv.tenants.GetByIdentifier(ctx, "startup-x")
				if err != nil {
					errs <- err
					return
				}
				task, err := srv.store.CreateTask(ctx, tn, p.ID, NewTask{Title: fmt.Sprintf("w%d-%d", w, i), Status: StatusTodo})
				if err != nil {
					errs <- fmt.Errorf("create task: %w", err)
					return
				}
				mu.Lock()
				acked = append(acked, task.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		seen := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			tn, err := srv.tenants.GetByIdentifier(ctx, "startup-x")
			if err != nil {
				errs <- err
				return
			}
			tasks, err := srv.store.ListTasks(ctx, tn, p.ID, Page{Limit: 100000})
			if err != nil {
				errs <- fmt.Errorf("list tasks: %w", err)
				return
			}
			if len(tasks) < seen {
				errs <- fmt.Errorf("a read saw %d tasks after one saw %d", len(tasks), seen)
				return
			}
			seen = len(tasks)
		}
	}()

	for _, tier := range []string{TierEnterprise, TierStarter} {
		time.Sleep(300 * time.Millisecond)
		res, err := move.Tenant(ctx, *admin.mover(), start.ID, move.To{Tier: &tier})
		if err != nil {
			t.Fatalf("set tier %s: %v", tier, err)
		}
		want := tenancy.IsolationRLS
		if tier == TierEnterprise {
			want = tenancy.IsolationSchema
		}
		if res.From.Same(res.To) || res.To.Strategy != want {
			t.Fatalf("set tier %s: moved from %s to %s", tier, res.From, res.To)
		}
		tn, err := srv.tenants.Get(ctx, start.ID)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		before := len(acked)
		mu.Unlock()
		tasks, err := srv.store.ListTasks(ctx, tn, p.ID, Page{Limit: 100000})
		t.Logf("after set tier %s (freeze %s, %s): %d tasks, %d acknowledged before, err %v", tier, res.Freeze, tn.Tier, len(tasks), before, err)
		if got, wantLimit := srv.quota.Limit(tn, ResourceProjects), tierQuotas[tier][ResourceProjects]; tn.Tier != tier || got != wantLimit {
			t.Fatalf("after set tier %s: tier %q, project limit %d, want %d", tier, tn.Tier, got, wantLimit)
		}
		var shared int64
		var schema bool
		if err := super.QueryRow(ctx, `SELECT (SELECT count(*) FROM public.tasks WHERE tenant_id = $1),
  EXISTS (SELECT FROM pg_namespace WHERE nspname = 'tenant_startup_x')`, start.ID).Scan(&shared, &schema); err != nil {
			t.Fatal(err)
		}
		if tier == TierEnterprise && (shared != 0 || !schema) || tier == TierStarter && (shared == 0 || schema) {
			t.Fatalf("after set tier %s: %d tasks in the shared table, schema %v", tier, shared, schema)
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tn := tenant(t, srv, "startup-x")
	tasks, err := srv.store.ListTasks(ctx, tn, p.ID, Page{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, task := range tasks {
		have[task.ID] = true
	}
	missing := 0
	for _, id := range acked {
		if !have[id] {
			missing++
		}
	}
	if missing > 0 || len(acked) == 0 {
		t.Fatalf("%d of %d acknowledged tasks missing", missing, len(acked))
	}
	t.Logf("%d tasks written during two moves", len(acked))
	// Other tenants were never touched.
	if _, err := srv.projects.ListProjects(ctx, tenant(t, srv, "acme-corp"), Page{Limit: 10}); err != nil {
		t.Fatal(err)
	}
}
