package migrate_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// fiveMigrations is the set the fleet benchmark applies to every schema.
var fiveMigrations = func() fstest.MapFS {
	rls := func(table string) string { return strings.Join(postgres.EnableRLS(table), ";\n") + ";\n" }
	steps := []string{
		"CREATE TABLE notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), " + postgres.TenantIDColumn + ", title text NOT NULL);\n" + rls("notes"),
		"CREATE TABLE tags (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), " + postgres.TenantIDColumn + ", name text NOT NULL);\n" + rls("tags"),
		"ALTER TABLE notes ADD COLUMN body text NOT NULL DEFAULT '';\n",
		"CREATE INDEX notes_title_idx ON notes (tenant_id, title);\n",
		"CREATE TABLE note_tags (note_id uuid NOT NULL REFERENCES notes (id) ON DELETE CASCADE, tag_id uuid NOT NULL REFERENCES tags (id) ON DELETE CASCADE, " +
			postgres.TenantIDColumn + ", PRIMARY KEY (note_id, tag_id));\n" + rls("note_tags"),
	}
	fsys := fstest.MapFS{}
	for i, s := range steps {
		fsys[fmt.Sprintf("%03d_step.sql", i+1)] = &fstest.MapFile{Data: []byte("-- +goose Up\n" + s)}
	}
	return fsys
}()

// BenchmarkFleet creates N tenant schemas and migrates five migrations into
// each (from-empty-s), then runs again with nothing to do (noop-s), and once
// more opening every target to check it (verify-s). Run one size at a time:
//
//	go test -run '^$' -bench 'Fleet/tenants=1000$' -benchtime 1x -timeout 30m ./migrate/
//	go test -run '^$' -bench 'Fleet/tenants=10000$' -benchtime 1x -timeout 60m ./migrate/
func BenchmarkFleet(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			for range b.N {
				benchFleet(b, n)
			}
		})
	}
}

func benchFleet(b *testing.B, n int) {
	b.StopTimer()
	ctx := context.Background()
	dsn := testenv.NewDatabase(b)
	const workers = 4
	pool := testenv.Pool(b, dsn, func(c *pgxpool.Config) { c.MaxConns = workers * 2 })
	store := memstore.New()
	tenants := make([]*tenancy.Tenant, n)
	for i := range tenants {
		t, err := store.Create(ctx, &tenancy.Tenant{Identifier: fmt.Sprintf("fleet-%05d", i), Name: "Fleet"})
		if err != nil {
			b.Fatal(err)
		}
		tenants[i] = t
	}
	p, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{})
	if err != nil {
		b.Fatal(err)
	}
	journal, err := migrate.NewPostgresJournal(ctx, pool, "tenancy")
	if err != nil {
		b.Fatal(err)
	}
	r, err := migrate.New(migrate.Config{Migrations: fiveMigrations, Targets: p, Store: store, Journal: journal, Concurrency: workers})
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()

	start := time.Now()
	work := make(chan *tenancy.Tenant)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				if err := p.Initialize(ctx, t); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for _, t := range tenants {
		work <- t
	}
	close(work)
	wg.Wait()
	report, err := r.Up(ctx, migrate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	fromEmpty := time.Since(start)
	if report.Count(migrate.StatusMigrated) != n {
		b.Fatalf("migrated %d of %d", report.Count(migrate.StatusMigrated), n)
	}

	start = time.Now()
	report, err = r.Up(ctx, migrate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	noop := time.Since(start)
	if report.Count(migrate.StatusSkipped) != n {
		b.Fatalf("no-op run skipped %d of %d", report.Count(migrate.StatusSkipped), n)
	}

	start = time.Now()
	report, err = r.Up(ctx, migrate.Options{Verify: true})
	if err != nil {
		b.Fatal(err)
	}
	verify := time.Since(start)
	if report.Count(migrate.StatusCurrent) != n {
		b.Fatalf("verify run found %d of %d current", report.Count(migrate.StatusCurrent), n)
	}
	b.StopTimer()
	b.ReportMetric(fromEmpty.Seconds(), "from-empty-s")
	b.ReportMetric(noop.Seconds(), "noop-s")
	b.ReportMetric(verify.Seconds(), "verify-s")
}
