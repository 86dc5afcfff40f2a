package cache_test

import (
	"context"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/cache"
)

func ExampleGetOrLoad() {
	c, _ := cache.New(cache.Config{}) // Config.Redis shares it between instances
	ctx := tenancy.WithTenant(context.Background(), &tenancy.Tenant{ID: "t-1", Identifier: "acme-corp"})
	load := func(context.Context) (int, error) { return 42, nil } // a query in the tenant's scope
	n, _ := cache.GetOrLoad(ctx, c, "stats:projects", 0, load)
	fmt.Println(n)
	_ = c.InvalidatePrefix(ctx, "stats:") // after a write that changes the stats
	_, ok, _ := c.Get(ctx, "stats:projects")
	fmt.Println(ok)
	// Output:
	// 42
	// false
}
