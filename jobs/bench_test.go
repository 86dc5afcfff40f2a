package jobs_test

import (
	"context"
	"testing"

	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/jobs"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// BenchmarkInsertTx compares River's plain InsertTx on a transaction of the
// application role with InsertTx, through the middleware, on a tenant's
// transaction (RLS), where the row-level security policies apply.
func BenchmarkInsertTx(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	appPool := testenv.Pool(b, e.app)
	p, err := postgres.NewRLS(ctx, appPool, postgres.Config{})
	if err != nil {
		b.Fatal(err)
	}
	tn := isolationtest.Tenants(1)[0]
	mw, _ := jobs.NewMiddleware(jobs.Config{Store: memstore.New()})
	plain, _ := river.NewClient(riverpgxv5.New(nil), &river.Config{Schema: jobs.DefaultSchema})
	tenant, _ := river.NewClient(riverpgxv5.New(nil), &river.Config{Schema: jobs.DefaultSchema, Middleware: []rivertype.Middleware{mw}})
	args := noteArgs{TenantArgs: jobs.For(tn), Note: "bench"}
	b.Run("river-plain", func(b *testing.B) {
		for b.Loop() {
			if err := pgx.BeginFunc(ctx, appPool, func(tx pgx.Tx) error {
				_, err := plain.InsertTx(ctx, tx, args, nil)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tenant-tx", func(b *testing.B) {
		for b.Loop() {
			if err := pgx.BeginFunc(ctx, postgres.For(p, tn), func(tx pgx.Tx) error {
				_, err := tenant.InsertTx(ctx, tx, args, nil)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
