package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestSchemaPartitions checks tenant affinity: with the pool split in
// partitions, each tenant's statements always run on the backends of one
// partition, the partitions share no backend, and every partition serves
// some tenants; each backend so sees a fraction of the schemas.
func TestSchemaPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	var tenants []*tenancy.Tenant
	for i := range 12 {
		tenants = append(tenants, &tenancy.Tenant{ID: fmt.Sprintf("part-%02d", i), Identifier: fmt.Sprintf("part-%02d", i), Status: tenancy.StatusActive})
	}
	openSchema(t, e, e.owner, tenants, nil)
	pool := testenv.Pool(t, e.app, func(c *pgxpool.Config) { c.MaxConns = 6 })
	p, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)

	// pids[tenant] is the set of backends its statements ran on.
	pids := map[string]map[uint32]bool{}
	for range 10 {
		for _, tn := range tenants {
			var pid uint32
			var schema string
			if err := p.QueryRow(ctx, tn, "SELECT pg_backend_pid(), current_schema()").Scan(&pid, &schema); err != nil {
				t.Fatal(err)
			}
			if want, _ := p.SchemaName(tn); schema != want {
				t.Fatalf("%s ran in schema %s", tn.ID, schema)
			}
			if pids[tn.ID] == nil {
				pids[tn.ID] = map[uint32]bool{}
			}
			pids[tn.ID][pid] = true
		}
	}
	// Tenants whose backends overlap are in one partition; partitions are
	// the connected groups, and there must be 3 of them.
	owner := map[uint32]int{}
	groups := 0
	for _, tn := range tenants {
		g := -1
		for pid := range pids[tn.ID] {
			if o, ok := owner[pid]; ok {
				if g >= 0 && g != o {
					t.Fatalf("tenant %s ran on backends of two partitions", tn.ID)
				}
				g = o
			}
		}
		if g < 0 {
			g = groups
			groups++
		}
		for pid := range pids[tn.ID] {
			owner[pid] = g
		}
	}
	if groups != 3 {
		t.Errorf("tenants ran on %d disjoint groups of backends, want 3 partitions", groups)
	}
	if len(owner) > 6 {
		t.Errorf("%d backends, want at most 6 (two per partition)", len(owner))
	}

	if _, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{Partitions: -1}); err == nil {
		t.Error("negative partitions accepted")
	}
}
