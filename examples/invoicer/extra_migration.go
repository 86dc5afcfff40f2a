//go:build invoicer_extra_migration

package main

import (
	"io/fs"
	"testing/fstest"

	"github.com/go-tenancy/tenancy/isolation"
)

// extraMigration is the migration that a binary built with the tag
// invoicer_extra_migration has beyond billing's: an index that the
// end-to-end test finds in every tenant schema (or file) once `migrate`
// has run, while a server built without it keeps serving.
const extraMigration = `-- +goose Up
CREATE INDEX invoices_due_date_idx ON invoices (due_date);

-- +goose Down
DROP INDEX invoices_due_date_idx;
`

// extraMigrationName sorts after billing's migrations.
const extraMigrationName = "00099_invoices_due_date_idx.sql"

func init() {
	extendMigrations = func(_ isolation.Dialect, base fs.FS) (fs.FS, error) {
		out := fstest.MapFS{}
		err := fs.WalkDir(base, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(base, path)
			if err != nil {
				return err
			}
			out[path] = &fstest.MapFile{Data: b}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out[extraMigrationName] = &fstest.MapFile{Data: []byte(extraMigration)}
		return out, nil
	}
}
