// Command server is the HTTP server the load harness (package bench, one
// directory up) measures. One binary serves every mode, with the same
// handlers; only the data path differs:
//
//	baseline  raw pgx, WHERE tenant_id = $1, the tenant found in a map; no tenancy package
//	tx        tenancy middleware, then BEGIN; set the tenant; query; COMMIT (how other libraries do it)
//	rls       tenancy middleware, isolation/postgres RLS (one pipelined round trip per statement)
//	schema    tenancy middleware, isolation/postgres Schema
//	hybrid    tenancy middleware, isolation.Hybrid: starters under RLS, enterprise tenants in schemas
//	sqlite    tenancy middleware, isolation/sqlite: a file per tenant
//
// With -dsn2 and -second-from, rls and schema mode place the tenants from
// -second-from on (Tenant.Placement "second") on a second server, through
// isolation/postgres Config.Placements; with -citus, -dsn is a Citus
// coordinator (Config.Citus), and rls mode's reads also name tenant_id.
//
// It also serves the example apps' requests, each mode beside its no-tenancy baseline
// (GET /invoices/{id} and GET /projects/{id} instead of the notes):
//
//	invoicer-base   the subdomain parsed by hand, raw pgx on shared tables, tenant_id in the query
//	invoicer        resolve.Host, Invoicer's billing store (sqlc) in the tenant's sealed schema
//	projectr-base   the same verified bearer token, plain GORM on a shared table, tenant_id in the query
//	projectr-nojwt  as projectr-base with the tenant from X-Tenant-ID, no token
//	projectr        resolve.JWT, hybrid isolation by tier, GORM through postgres.OpenDB
//
// The harness starts one process per mode, so that each mode's memory is its
// own. On start the server prints one line, "listening http=ADDR debug=ADDR",
// and serves net/http/pprof on the debug address.
package main
