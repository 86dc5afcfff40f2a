// Package postgres keeps tenants' data apart on PostgreSQL: row-level
// security over shared tables (RLS), a schema per tenant (Schema), or a
// database per tenant (Database); isolation.Hybrid routes each tenant to one
// of them by tier.
//
// # How a tenant statement runs
//
// Every statement runs in a transaction that first sets three things for
// its length only (set_config with is_local): app.tenant_id (TenantSetting),
// which policies and the tenant column's default read; the tenant role
// (Config.Role, default tenancy_tenant), which is not superuser, has no
// BYPASSRLS, owns nothing and may not create temporary tables; and the
// search path (the tenant's schema, or the server's default), which always
// ends in an explicit pg_temp, so a temporary object can never shadow a
// tenant table. Nothing outlives the transaction: a pooled connection, or
// PgBouncer in transaction mode, never hands a tenant to the next borrower.
//
// A one-shot call (Exec, Query, QueryRow) sends the tenant statement and the
// caller's statement in one pipeline: one round trip, the implicit
// transaction of the pipeline holding both. The tenant statement and the
// caller's statements are prepared once per connection (the caller's per
// search path too: pgx's own cache is keyed by SQL alone, which would share
// a statement's row description between schemas at different versions),
// under names that start with a prefix drawn at random for the connection,
// so that no statement of the application's names one by mistake (to
// re-prepare it with another tenant, say). With Config.Pooler set to
// PoolerTransaction, only unnamed statements are sent. A transaction (Tx,
// or Begin on a Querier) sets the tenant in its BEGIN's round trip and
// refuses every call once it has ended.
//
// # Moves
//
// The tenant statement also takes the tenant's fence (FenceKey) shared,
// with a try that never waits, so that package move can hold one tenant's
// statements, and only that tenant's, while it switches the tenant to
// another place: a statement that finds the fence held runs nothing, waits
// (Config.FreezeTimeout, then *isolation.FrozenError, a 503 with
// Retry-After), and with Config.Reload follows the tenant to its new place
// once the move has switched its record. PlaceOf tells where a tenant's
// data is, for the mover. Citus mode takes no fence: moves do not support
// it.
//
// # Native access
//
// For returns a Querier with pgx's own shapes (pgconn.CommandTag, pgx.Rows,
// pgx.Row, pgx.Tx, CopyFrom, SendBatch), so sqlc's pgx/v5 output and pgx's
// helpers run on it unchanged. NewConnector and OpenDB give a database/sql
// driver that takes the tenant from each call's context, for GORM, bun,
// sqlx and ent. Unscoped and UnscopedContext are the sanctioned way to run
// without a tenant, for cross-tenant reports and administration: explicit
// in their name, logged with the caller's reason.
//
// # Tables
//
// DDL writes tenant tables: the tenant column defaulting to the current
// tenant, ENABLE and FORCE ROW LEVEL SECURITY with the canonical policy
// (USING and WITH CHECK both TenantPredicate), and keys that carry the
// tenant (PrimaryKey, ForeignKey): a foreign key is checked without
// row-level security, so one without the tenant column would reveal other
// tenants' IDs and tie their rows to yours. In schema isolation every table
// of a tenant schema is sealed (SealSchema, which schema migrations run) by
// a restrictive policy admitting only that schema's tenant, so naming
// another tenant's schema reads nothing and cannot write, whether or not the
// table has a tenant column.
//
// # What the isolation holds against
//
// The switch to the tenant role protects against an application that
// forgets a filter, including one that connects as the table owner or a
// superuser: its statements still run as the tenant role, under the
// policies. It does not protect against SQL injection, whatever role the
// service connects as: SQL that runs inside a tenant statement may set its
// own tenant (set_config('app.tenant_id', ...)), may switch back to the
// connecting role (RESET ROLE), and may change what the connection carries
// for later statements (its prepared statements, for one). Least privilege
// limits what injected SQL reaches: connect the service as a role that is
// not superuser, has no BYPASSRLS and owns nothing (Doctor reports one that
// does), so it cannot read server files, run programs or change the schema.
// A database per tenant, without dblink or postgres_fdw, keeps injected SQL
// inside its tenant; sharing tables or a server does not. In schema
// isolation, tenants share the tenant role, so one tenant's statements may
// use another tenant schema's sequences (advancing its counters); tables
// are sealed, sequences are not.
//
// # Several servers
//
// A tenant's Placement names the server holding its data. Config.Placements
// maps each placement to a pool on its server: RLS and Schema keep one pool
// per server, shared by every tenant placed there, never one per tenant;
// tenants without a Placement (or with DefaultServer, "default") use the
// provider's own pool, the default server, which also holds the control
// plane (the tenant store, the job queue). A placement naming no configured
// server is refused when the tenant's statement is looked up, with
// isolation.ErrUnknownPlacement, never sent to the default server.
// ParseServers reads a server map (DATABASE_URLS:
// "default=postgres://...,eu=postgres://..."), OpenServers opens it, and
// CheckPlacements finds tenants placed on no server. Migration targets,
// Destroy and Residue cover every server (Destroy and Residue also the
// servers a tenant is not placed on, so that a copy a move left behind is
// found and purged), and DoctorServers inspects every server.
//
// # Citus
//
// With Config.Citus, RLS runs over tables distributed on the tenant column
// (DistributeTable; shared tables are reference tables, ReferenceTable) and
// Schema over distributed schemas (DistributeSchema, schema-based sharding),
// each tenant's statements routed to the worker holding its rows. Citus
// forwards SET commands to the workers but never set_config, so on Citus the
// tenant is set with SET LOCAL (of a validated literal) in an explicit
// transaction, with citus.propagate_set_commands = 'local' set the same way:
// a one-shot statement is sent as BEGIN, the settings, the statement and
// COMMIT, separate messages in one pipeline, one round trip; a statement
// that fails leaves the transaction to be rolled back before the connection
// is reused. Citus connects to the workers as the current role, so the
// tenant role must be able to log in; one role is shared by all tenants,
// and Citus keys its worker connections by role. The doctor, on a
// coordinator, also compares every shard's policies with its table's.

// # Many tenant schemas: memory and warm-up
//
// A PostgreSQL backend caches the catalog entries of every table it has
// touched and keeps every statement prepared on it, for its whole life.
// Measured on PostgreSQL 15 (pg_backend_memory_contexts, one backend,
// schemas holding one table with three indexes and a policy, the read and
// list statements of the load harness run in each):
//
//	backend memory ≈ 1.4 MB + schemas seen × (19 KB + prepared statements per schema × 11 KB)
//
// that is 20 MB after 1,000 schemas without prepared statements and 54 MB
// with three prepared per schema; at 10,000 schemas, about 520 MB per
// backend, times the pool size. Each connection of a pool serving every
// tenant sees every schema, and after a start each of them prepares every
// statement for every schema once. SchemaConfig.Partitions splits the pool
// so that each backend sees only the schemas of its partition (schemas seen
// = tenants / Partitions), at the price of fewer connections for each
// tenant when the load is uneven. Migration targets on the pool's own
// database borrow its connections for their sessions and give them back
// reset (DISCARD ALL).
//
// Doctor inspects a live database for what would let tenants reach each
// other's rows and reports it.
package postgres
