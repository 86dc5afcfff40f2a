package billing

import (
	"embed"
	"fmt"
	"io/fs"

	"github.com/go-tenancy/tenancy/isolation"
)

//go:embed migrations
var migrationFiles embed.FS

// Migrations returns the goose SQL migrations of one tenant target in
// dialect d, for migrate.Config.Migrations: PostgreSQL's run in each tenant
// schema (postgres.Schema's targets, which seal every table they create),
// SQLite's in each tenant file.
func Migrations(d isolation.Dialect) (fs.FS, error) {
	switch d {
	case isolation.Postgres:
		return fs.Sub(migrationFiles, "migrations/postgres")
	case isolation.SQLite:
		return fs.Sub(migrationFiles, "migrations/sqlite")
	}
	return nil, fmt.Errorf("billing: no migrations for dialect %s", d)
}
