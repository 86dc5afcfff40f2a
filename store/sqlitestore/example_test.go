package sqlitestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/store/sqlitestore"
)

func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlitestore-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	// Open creates the file and its table when missing.
	store, err := sqlitestore.Open(ctx, filepath.Join(dir, "tenants.db"), sqlitestore.Config{})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	_, _ = store.Create(ctx, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme"})
	_, _ = store.Create(ctx, &tenancy.Tenant{Identifier: "globex", Name: "Globex", Status: tenancy.StatusSuspended})
	active, _ := store.Count(ctx, tenancy.StatusActive)
	all, _ := store.List(ctx, tenancy.ListParams{})
	fmt.Println(active, len(all), all[1].Identifier, all[1].Status)
	// Output:
	// 1 2 globex suspended
}
