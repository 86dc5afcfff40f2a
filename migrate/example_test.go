package migrate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing/fstest"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/go-tenancy/tenancy/store/memstore"
)

// One migration set applied to every tenant's SQLite file; a second run
// with nothing to do opens none of them.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "migrate-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	files, err := sqlite.New(sqlite.Config{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer files.Close()
	jdb, err := files.Open(filepath.Join(dir, "_migrations.db"))
	if err != nil {
		panic(err)
	}
	defer jdb.Close()
	journal, err := migrate.NewSQLiteJournal(ctx, jdb)
	if err != nil {
		panic(err)
	}
	store := memstore.New()
	for _, ident := range []string{"acme-corp", "globex"} {
		_, _ = store.Create(ctx, &tenancy.Tenant{Identifier: ident, Name: ident})
	}

	r, err := migrate.New(migrate.Config{
		// Usually an embed.FS; fs.Sub for a sub-directory.
		Migrations: fstest.MapFS{"001_notes.sql": {Data: []byte(
			"-- +goose Up\nCREATE TABLE notes (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, title TEXT NOT NULL);\n")}},
		Targets: files,
		Store:   store,
		Journal: journal,
	})
	if err != nil {
		panic(err)
	}
	report, err := r.Up(ctx, migrate.Options{})
	if err != nil {
		panic(err)
	}
	for _, res := range report.Results {
		fmt.Println(res.Identifier, res.Status, res.From, "->", res.To)
	}
	report, _ = r.Up(ctx, migrate.Options{})
	fmt.Println(report.Count(migrate.StatusSkipped), "skipped")
	// Output:
	// acme-corp migrated 0 -> 1
	// globex migrated 0 -> 1
	// 2 skipped
}
