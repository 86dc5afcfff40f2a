// Package move moves a tenant's data while it serves: between PostgreSQL
// servers (its Placement) and between isolation strategies (shared tables
// under row-level security, or a schema of its own), as a tier change in a
// hybrid deployment needs; and exports and imports one tenant's data as a
// portable archive, for backups and restores.
//
// # How a move keeps the tenant consistent
//
// Every tenant statement of package isolation/postgres takes its tenant's
// fence (postgres.FenceKey, an advisory lock per tenant and place) shared
// for its transaction, without waiting: a try in the statement that already
// sets the tenant, so the hot path gains no round trip. Tenant copies the
// tenant's rows to the destination while the source serves, then takes the
// fence exclusively on the source server: that waits for the statements in
// flight, and every new statement of that tenant (only that tenant) fails
// its try before anything of it runs and waits on the client
// (postgres.Config.FreezeTimeout, then 503 with Retry-After through the
// problem package). Under the freeze the mover compares every table's row
// count and checksum at both places, copies again the tables that changed,
// verifies, and switches the tenant's record in the store (which
// invalidates every instance's cache). Statements waiting on the fence
// reread the record (postgres.Config.Reload) and go to the new place; the
// source stays fenced for Mover.HoldFence, then is removed.
//
// Several instances agree because the fence is in the database: an
// instance with a stale record is held at the old place like any other.
// Keep HoldFence at least as long as a stale record can live in a cache
// whose invalidation was missed (the cache's L1 TTL): once the fence is
// released and the source removed, a statement sent there with a record
// older than that would find no data (schema) or write where nothing reads
// it (shared tables).
//
// # Resuming
//
// Each step (StepPlanned, StepCopied, StepVerified, StepSwitched,
// StepDone) is journaled in the control-plane database (table
// tenancy.moves) and idempotent: a move stopped at any step, by a crash or
// by Mover.StopAfter, resumes when Tenant runs again with the same
// destination. Before the switch the source is authoritative and the copy
// is redone; after it the destination is, and only the source's removal
// remains. One process at a time moves, exports into or imports a tenant.
//
// # Archives
//
// Export writes a tar archive: manifest.json (the tenant's record, and
// each table's columns, row count and checksum) and each table's rows in
// PostgreSQL's COPY text format, read in one snapshot while the tenant
// serves. Import replaces the tenant's rows by an archive's in one
// transaction, under the freeze, and commits only when every count and
// checksum matches the manifest.
package move
