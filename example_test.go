package tenancy_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-tenancy/tenancy"
)

func ExampleValidateIdentifier() {
	for _, id := range []string{"acme-corp", "ACME-CORP", "acme\n", "a"} {
		fmt.Printf("%q: %v\n", id, tenancy.ValidateIdentifier(id))
	}
	// Output:
	// "acme-corp": <nil>
	// "ACME-CORP": invalid tenant identifier
	// "acme\n": invalid tenant identifier
	// "a": invalid tenant identifier
}

func ExampleFromContext() {
	acme := &tenancy.Tenant{ID: "tenant-acme-001", Identifier: "acme-corp", Name: "Acme Corp", Status: tenancy.StatusActive}
	ctx := tenancy.WithTenant(context.Background(), acme)

	if t, ok := tenancy.FromContext(ctx); ok {
		fmt.Println(t.ID)
	}
	if _, ok := tenancy.FromContext(context.Background()); !ok {
		fmt.Println("no tenant:", tenancy.ErrNoTenant)
	}
	// Output:
	// tenant-acme-001
	// no tenant: no tenant given
}

func ExampleTenant_CheckStatus() {
	t := &tenancy.Tenant{Status: tenancy.StatusSuspended}
	err := t.CheckStatus()
	fmt.Println(errors.Is(err, tenancy.ErrTenantSuspended))
	// Output: true
}
