package main

import (
	"io/fs"

	"github.com/go-tenancy/tenancy/examples/invoicer/billing"
	"github.com/go-tenancy/tenancy/isolation"
)

// extendMigrations, when set, adds migrations to billing's. Only a build
// for the end-to-end tests sets it (extra_migration.go), to prove that a
// migration added after tenants exist reaches every one of them.
var extendMigrations func(d isolation.Dialect, base fs.FS) (fs.FS, error)

// tenantMigrations returns the migrations of one tenant target in dialect
// d: billing's (a schema per tenant on PostgreSQL, a file per tenant on
// SQLite).
func tenantMigrations(d isolation.Dialect) (fs.FS, error) {
	base, err := billing.Migrations(d)
	if err != nil || extendMigrations == nil {
		return base, err
	}
	return extendMigrations(d, base)
}
