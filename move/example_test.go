package move_test

import (
	"context"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/move"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A tier upgrade moves a starter tenant out of the shared tables into a
// schema of its own while it serves.
func ExampleTenant() {
	ctx := context.Background()
	var (
		store    tenancy.Store      // the cached store: the switch reaches every instance
		provider isolation.Provider // a Hybrid over RLS and Schema, on the migration DSN
		control  *pgxpool.Pool      // the control-plane database, for the journal
	)
	m := move.Mover{Store: store, Provider: provider, Journal: control}
	tier := "enterprise"
	res, err := move.Tenant(ctx, m, "tenant-startupx-001", move.To{Tier: &tier})
	if err != nil {
		// Run it again: a move resumes from the step it reached.
		return
	}
	fmt.Println(res.From, "->", res.To, "frozen for", res.Freeze)
}
