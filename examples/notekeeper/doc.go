// Command notekeeper is Example 01 of the tenancy toolkit: a note-taking
// service whose tenants are named by the X-Tenant-ID header, isolated by
// PostgreSQL row-level security in one shared table or, with no database
// configured, by an embedded SQLite file per tenant.
//
//	go run ./examples/notekeeper                    # serve on :8000
//	go run ./examples/notekeeper tenants list       # admin subcommands
//
// See README.md for the configuration.
package main
