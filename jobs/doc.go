// Package jobs runs background jobs on River (github.com/riverqueue/river)
// in their tenant: a job carries its tenant, runs in it on every attempt,
// waits while the tenant is not served, and exists if and only if the data
// it was queued with committed.
//
// # Carrying the tenant
//
// Job args embed TenantArgs (jobs.For(t) fills it). Middleware, put in
// river.Config.Middleware of every client, checks inserts (args that should
// name a tenant do, and name the context's) and puts the tenant in every
// unique key; on every attempt it loads the tenant from the store and runs
// the job with the tenant in its context (tenancy.FromContext,
// isolation.FromContext and postgres.FromContext reach the tenant's data)
// and in its log lines (Logger). A job of a suspended, provisioning or
// failed tenant is snoozed (Config.Snooze; Queue.Hook wakes it on
// activation); one of a deleted or unknown tenant is cancelled.
//
// # Enqueuing with the data
//
// Where jobs and data share one PostgreSQL database (row-level security,
// schema per tenant, hybrid), the job is inserted in the data's
// transaction: River's InsertTx on the pgx.Tx of postgres.For(p, t).Begin,
// or, for database/sql code such as GORM, a riverdatabasesql client's
// InsertTx on a *sql.Tx of postgres.OpenDB. River's tables live in their
// own schema (DefaultSchema; give the same name to river.Config.Schema,
// or they would resolve through the tenant's search path). MigratePostgres
// creates them and lets the tenant role insert jobs and see only its own:
// row-level security on river_job keyed on the tenant in the args, with
// River's own client, connected as the application role, unrestricted.
//
// Where they cannot share a transaction (a database per tenant, a tenant
// placed on another server, SQLite files), the job goes into an outbox
// table in the tenant's storage (OutboxDDL), in the data's transaction, and
// Enqueuer.Run relays it to the queue after the commit, at least once and
// deduplicated by a unique key. Enqueuer.Tx and Enqueuer.SQLTx pick the way
// per tenant.
//
// # Embedded mode
//
// With no PostgreSQL at all, the queue is River's SQLite driver
// (riversqlite) on a file of its own (MigrateSQLite), and every tenant's
// jobs go through the outbox of its file.
//
// # Purging
//
// Queue is a tenancy.Component: purging a tenant (package lifecycle)
// deletes its jobs, queued, running or finished, and the residue check
// reports any left. Outbox rows are tenant data and go with the tenant's
// storage.
package jobs
