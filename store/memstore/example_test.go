package memstore_test

import (
	"context"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/store/memstore"
)

func Example() {
	ctx := context.Background()
	store := memstore.New()

	created, err := store.Create(ctx, &tenancy.Tenant{
		ID: "tenant-acme-001", Identifier: "acme-corp", Name: "Acme",
		Aliases: []string{"acme"}, Domains: []string{"acme.example.com"},
	})
	fmt.Println(created.Status, err)

	t, _ := store.GetByAlias(ctx, "ACME") // normalized first
	fmt.Println(t.ID)

	// A custom domain resolves once verified (see package customdomain).
	_, err = store.GetByDomain(ctx, "acme.example.com")
	fmt.Println(err)
	_, _ = store.VerifyDomain(ctx, t.ID, "acme.example.com")
	t, _ = store.GetByDomain(ctx, "ACME.example.com.")
	fmt.Println(t.ID)

	tier := "enterprise"
	t, _ = store.Update(ctx, t.ID, tenancy.Update{Tier: &tier})
	fmt.Println(t.Tier)

	_, err = store.Create(ctx, &tenancy.Tenant{Identifier: "acme-corp", Name: "Another Acme"})
	fmt.Println(err)
	// Output:
	// active <nil>
	// tenant-acme-001
	// tenant not found
	// tenant-acme-001
	// enterprise
	// tenant identifier "acme-corp" is already taken
}
