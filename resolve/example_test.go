package resolve_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/go-tenancy/tenancy/store/memstore"
)

func ExampleHeader() {
	store := memstore.New()
	_, _ = store.Create(context.Background(), &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme"})
	r := resolve.Header{Lookup: store} // X-Tenant-ID

	req := httptest.NewRequest("GET", "/notes", nil)
	req.Header.Set("X-Tenant-ID", "acme-corp")
	res, err := r.Resolve(req)
	fmt.Println(res.Tenant.Identifier, res.Source, err)

	_, err = r.Resolve(httptest.NewRequest("GET", "/notes", nil))
	fmt.Println(errors.Is(err, tenancy.ErrNoTenant))
	// Output:
	// acme-corp header <nil>
	// true
}

// A Chain takes the tenant from the first source present, and refuses a
// request whose sources name different tenants.
func ExampleChain() {
	store := memstore.New()
	_, _ = store.Create(context.Background(), &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme"})
	_, _ = store.Create(context.Background(), &tenancy.Tenant{Identifier: "globex", Name: "Globex"})
	r := resolve.Chain(resolve.Path{Lookup: store}, resolve.Header{Lookup: store})

	res, err := r.Resolve(httptest.NewRequest("GET", "/t/globex/notes", nil))
	fmt.Println(res.Tenant.Identifier, res.Source, res.Path, err)

	req := httptest.NewRequest("GET", "/t/globex/notes", nil)
	req.Header.Set("X-Tenant-ID", "acme-corp")
	_, err = r.Resolve(req)
	fmt.Println(errors.Is(err, tenancy.ErrTenantConflict))
	// Output:
	// globex path /notes <nil>
	// true
}
