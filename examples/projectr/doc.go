// Command projectr is Example 03 of the tenancy toolkit: a
// project-management service whose tenants sign in with a client secret
// for a JWT, and whose data is kept apart by tier: enterprise tenants in a
// PostgreSQL schema of their own, starter tenants in shared tables under
// row-level security (isolation.Hybrid), or, with no database configured,
// an embedded SQLite file per tenant. Its data code is GORM on the
// toolkit's database/sql connector; starter tenants are held to 3 projects
// by the database (package quota); project reads are cached per tenant
// (package cache); exports run as River jobs in their tenant (package
// jobs).
//
//	go run ./examples/projectr                    # serve on :8000
//	go run ./examples/projectr tenants list       # admin subcommands
//	go run ./examples/projectr secrets rotate acme-corp
//
// See README.md for the configuration.
package main
