package lifecycle_test

import (
	"context"
	"fmt"
	"os"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/go-tenancy/tenancy/lifecycle"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/memstore"
)

// A tenant's life, on a SQLite file per tenant. The cache and the rate
// limiter are components: a purge makes each forget the tenant, then checks
// that nothing is left anywhere.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "lifecycle-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	files, err := sqlite.New(sqlite.Config{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer files.Close()
	tenants := cache.New(memstore.New(), cache.Config{})
	defer tenants.Close()
	limiter := limit.New(limit.Config{Default: limit.Rate{Limit: 100}})

	m, err := lifecycle.New(lifecycle.Config{
		Store:      tenants,
		Provider:   files,
		Components: []tenancy.Component{tenants, limiter},
	})
	if err != nil {
		panic(err)
	}

	t, err := m.Provision(ctx, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme"})
	fmt.Println(t.Status, err)
	_, _, _ = limiter.Allow(ctx, t) // a request: the limiter now holds a bucket

	t, _ = m.Suspend(ctx, t.ID, "unpaid invoice")
	fmt.Println(t.Status, t.StatusReason)

	fmt.Println(m.Purge(ctx, t.ID))
	left, _ := m.Residue(ctx, t)
	fmt.Println(len(left))
	// Output:
	// active <nil>
	// suspended unpaid invoice
	// <nil>
	// 0
}
