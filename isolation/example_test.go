package isolation_test

import (
	"context"
	"fmt"
	"os"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
)

// Schema and database names derive from the identifier, one-to-one; an
// identifier that could break out of a name is refused before any SQL or
// path is built.
func ExampleName() {
	name, _ := isolation.Name(isolation.DefaultPrefix, "acme-corp")
	fmt.Println(name)
	_, err := isolation.Name(isolation.DefaultPrefix, `a"; DROP SCHEMA public; --`)
	fmt.Println(err)
	// Output:
	// tenant_acme_corp
	// invalid tenant identifier
}

// A request handler binds the provider to the request's tenant once and
// runs every statement in its scope; the same code serves every strategy.
func ExampleFromContext() {
	dir, _ := os.MkdirTemp("", "notes")
	defer os.RemoveAll(dir)
	p, _ := sqlite.New(sqlite.Config{Dir: dir})
	defer p.Close()
	acme := &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Status: tenancy.StatusActive}
	ctx := tenancy.WithTenant(context.Background(), acme) // the middleware does this

	db, err := isolation.FromContext(ctx, p)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _ = db.Exec(ctx, "CREATE TABLE notes (title TEXT)")
	_, _ = db.Exec(ctx, "INSERT INTO notes VALUES ('hello')")
	var n int
	_ = db.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n)
	fmt.Println(n, "note for", db.Tenant.Identifier)
	// Output: 1 note for acme-corp
}
