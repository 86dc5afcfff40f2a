package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
)

// database/sql code (sqlc's database/sql output, sqlx) runs on the tenant's
// own *sql.Tx, valid inside the callback only.
func ExampleProvider_BeginFunc() {
	dir, _ := os.MkdirTemp("", "tenants")
	defer os.RemoveAll(dir)
	p, _ := sqlite.New(sqlite.Config{Dir: dir})
	defer p.Close()
	ctx := context.Background()
	acme := &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp"}
	err := p.BeginFunc(ctx, acme, nil, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "CREATE TABLE notes (title TEXT)"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO notes VALUES (?)", "hello")
		return err
	})
	fmt.Println(err)
	_, err = p.Exec(ctx, acme, "ATTACH DATABASE 'other.db' AS other")
	fmt.Println(err != nil)
	// Output:
	// <nil>
	// true
}
