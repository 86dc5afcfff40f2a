package admin_test

import (
	"context"
	"fmt"
	"os"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/store/memstore"
)

// An application mounts the CLI with an Open that builds its environment;
// here a store in memory stands in for the application's database.
func ExampleApp() {
	ctx := context.Background()
	store := memstore.New()
	_, _ = store.Create(ctx, &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme Corp", Tier: "starter"})

	app := &admin.App{
		Name: "notekeeper",
		Open: func(ctx context.Context, c admin.Connect) (*admin.Env, error) {
			return &admin.Env{Store: store, Persistent: true}, nil
		},
		Stdout: os.Stdout,
		Stderr: os.Stdout, // so that the example shows the error line too
	}
	app.Run(ctx, []string{"tenants", "suspend", "--reason", "unpaid", "acme-corp"})
	app.Run(ctx, []string{"tenants", "list"})
	code := app.Run(ctx, []string{"tenants", "show", "nope"})
	fmt.Println("exit status", code)
	code = app.Run(ctx, []string{"tenants", "show", "Nope!"})
	fmt.Println("exit status", code)
	// Output:
	// acme-corp is now suspended
	// IDENTIFIER  NAME       STATUS     TIER     ISOLATION  ALIASES  DOMAINS  ID
	// acme-corp   Acme Corp  suspended  starter  -          -        -        t-acme
	// notekeeper: tenant "nope" not found
	// exit status 1
	// notekeeper: invalid tenant identifier "Nope!" (3 to 56 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-')
	// exit status 2
}
