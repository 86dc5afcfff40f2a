package cache_test

import (
	"context"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/memstore"
)

func ExampleNew() {
	ctx := context.Background()
	// Without Config.Redis the cache is L1 only; set it (a redis.Client or
	// ClusterClient) when the service runs as more than one instance.
	tenants := cache.New(memstore.New(), cache.Config{})
	defer tenants.Close()

	_, _ = tenants.Create(ctx, &tenancy.Tenant{ID: "tenant-acme-001", Identifier: "acme-corp", Name: "Acme"})
	t, _ := tenants.GetByIdentifier(ctx, "acme-corp") // from the store, then cached
	fmt.Println(t.ID, t.Status)

	// Writes through the cache invalidate it: the next read sees the change.
	_, _ = tenants.SetStatus(ctx, t.ID, tenancy.StatusSuspended, "unpaid invoice")
	t, _ = tenants.GetByIdentifier(ctx, "acme-corp")
	fmt.Println(t.Status, t.CheckStatus())

	_, err := tenants.GetByIdentifier(ctx, "ACME")
	fmt.Println(err)
	// Output:
	// tenant-acme-001 active
	// suspended tenant is suspended
	// invalid tenant identifier
}
