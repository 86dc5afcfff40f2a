// Package quota enforces per-tier limits on counted resources (projects:
// enterprise 500, starter 3), in the database, in the same transaction as
// the insert that uses a unit, never with a read in the handler followed by
// a write.
//
// Each tenant's storage holds a counter table (DDL; add it to the tenant
// migration set). Acquire sends one statement before the insert: an upsert
// that adds a unit to the tenant's counter for the resource and records the
// current limit, which a CHECK constraint refuses beyond the limit. The
// refusal aborts the transaction, so the insert never applies; concurrent
// creates wait on the counter row's lock, so ten of them against a limit of
// three leave exactly three. Release, in a delete's transaction, gives the
// unit back. It works the same under row-level security, schema and
// database per tenant (the counter is a tenant table under the canonical
// policies) and SQLite files.
//
// Cost: one extra statement. With Queue the statement goes into a pgx.Batch
// ahead of the insert, and postgres.For(p, t).SendBatch sends the tenant
// statement, the check and the insert in one round trip.
//
// Limits come from Config.Tiers by the tenant's tier, then Config.Default;
// a tenant's own limits (Config.Overrides, by default its metadata under
// MetadataKey) replace them resource by resource. A refusal is a
// *tenancy.QuotaError, which the problem package answers with 403
// problem+json naming the resource, limit, usage and tier. Usage reads a
// tenant's counters for a GET /tenant style endpoint.
//
// Counters start at zero: a table that holds rows before the quota is
// introduced needs its counter set once (an INSERT into the counter table
// of the row count, in the tenant's scope).
package quota
