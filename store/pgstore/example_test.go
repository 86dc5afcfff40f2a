package pgstore_test

import (
	"context"
	"fmt"
	"os"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/store/pgstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The tenant store in a schema of its own (tenancy, by default), created by
// Migrate. Run Migrate on a connection that may create it, at deploy time
// or at start.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	if err := pgstore.Migrate(ctx, pool, pgstore.Config{}); err != nil {
		panic(err)
	}
	store, err := pgstore.New(ctx, pool, pgstore.Config{})
	if err != nil {
		panic(err)
	}
	t, err := store.Create(ctx, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme"})
	if err != nil {
		panic(err)
	}
	fmt.Println(t.Identifier, t.Status)
}
