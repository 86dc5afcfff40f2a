package quota_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/quota"
	"github.com/jackc/pgx/v5"
)

// BenchmarkCreate compares an insert with its quota check against the
// same insert unchecked, both one batch in the tenant's scope (one round
// trip), under RLS as the application role.
func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	setupRoles(b)
	super := testenv.NewDatabase(b)
	pool := testenv.Pool(b, super)
	mustExec(b, pool, "GRANT ALL ON SCHEMA public TO "+testenv.OwnerRole)
	e := env{super: super, owner: testenv.WithUser(super, testenv.OwnerRole), app: testenv.WithUser(super, testenv.AppRole)}
	createTables(b, e.owner, "public", nil)
	p, err := postgres.NewRLS(ctx, testenv.Pool(b, e.app), postgres.Config{})
	if err != nil {
		b.Fatal(err)
	}
	tn := isolationtest.Tenants(1)[0]
	q, err := quota.New(quota.Config{Provider: p, Default: quota.Limits{"projects": 1 << 40}})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	run := func(b *testing.B, checked bool) {
		for b.Loop() {
			n++
			batch := &pgx.Batch{}
			if checked {
				_ = q.Queue(batch, tn, "projects")
			}
			batch.Queue("INSERT INTO projects (id, name) VALUES ($1, 'p')", fmt.Sprint(n))
			if err := postgres.For(p, tn).SendBatch(ctx, batch).Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("unchecked", func(b *testing.B) { run(b, false) })
	b.Run("quota", func(b *testing.B) { run(b, true) })
	_ = tenancy.ErrNoTenant
}
