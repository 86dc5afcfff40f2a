// Command bench is the load harness: it measures over HTTP what the tenancy
// library costs against hand-rolled WHERE tenant_id = $1, the way a user
// would see it. Run it from the repository root:
//
//	go run ./bench                 # the default run (under 5 minutes)
//	go run ./bench -delay 1ms      # 1 ms each way between servers and PostgreSQL
//	go run ./bench -smoke          # tiny and quick; exits non-zero on any error
//
// In one run it builds the server (./bench/server) once, creates a scratch
// database (dropped at the end), seeds T tenants with N notes each (in a
// plain table, a table under row-level security, a schema per tenant and a
// SQLite file per tenant), starts one server process per mode on loopback,
// each with its own pool of the same size, and drives them in turn with C
// concurrent clients: one scenario (read a note by ID, list 20 notes, create
// a note) and mode at a time, in rounds that rotate the order of the modes,
// so that drift of this shared machine hits every mode alike. The example
// apps' scenarios (invoice: Invoicer's invoice with its line items on a
// subdomain, a schema per tenant; project: Projectr's project with a JWT,
// hybrid isolation and GORM) run on their own modes only, each beside the
// same request without tenancy, which is their baseline. Every response
// is checked (status, note ID, and tenant_id against the tenant asked for):
// a fast wrong answer is an error, not speed. It prints a table per scenario
// (requests/s, p50, p99, errors, server CPU and PostgreSQL CPU per request,
// server RSS, and ratios to the baseline), writes the same as JSON with
// -json, and exits 1 when any request failed.
//
// Fleets: -schema-tenants 1000,10000 adds schema mode over each many tenant
// schemas (seeded a hundred schemas per transaction from one staging copy).
// Over more tenants than -active (default 1000), the fleet runs twice:
// schema-<n>, requests to -active tenants spread through the fleet with
// Zipf-distributed popularity (exponent 1), and schema-<n>-uniform, every
// tenant alike, the worst case. -partitions sets the schema servers'
// SchemaConfig.Partitions.
//
// Several servers (not in the default run; name them in -modes):
// rls-2servers and schema-2servers are rls and schema mode with half the
// tenants placed (Tenant.Placement) on a second PostgreSQL server (-dsn2,
// default DATABASE_URL2; a scratch database of its own there too), one pool
// per server; citus-rls is rls mode over a notes table distributed on
// tenant_id (its reads also name tenant_id, so that Citus routes each to
// one shard), citus-schema schema mode over a distributed schema per tenant,
// both on a Citus coordinator (-citus-dsn, default CITUS_URL, a superuser
// URL of a Citus database; the run creates and drops schemas of its own
// there). Without its URL such a mode is refused.
//
// Warm-up: after the rounds of the first scenario, every server serving it
// is restarted (a new process, pool and PostgreSQL backends) and driven for
// -settle (default 6s); the warm-up table gives its throughput in its first
// second and the time until every one-second window holds 90% of the
// steady throughput the rounds measured ("> 6s": not within the watch).
//
// The DSN (-dsn, default DATABASE_URL or the local server) must be a URL and
// name a role that may create databases and roles; a superuser is simplest.
package main
