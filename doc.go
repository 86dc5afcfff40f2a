// Package tenancy is the core of a multi-tenancy toolkit for Go services that
// serve many customers (tenants) from one deployment without one tenant ever
// seeing another's data.
//
// This package holds what every other package shares: the Tenant model and
// its lifecycle Status, the one identifier validator (ValidateIdentifier),
// the sentinel errors that the problem package maps to HTTP statuses, the
// Store interface that the memory, PostgreSQL and SQLite stores implement,
// the Component interface through which a purge reaches everything else
// that keeps something of a tenant (its cache entries, rate-limit budget,
// migration records, queued jobs), and the context helpers (WithTenant,
// FromContext, WithClaims) that carry the tenant of a request or job.
//
// One request, end to end:
//
//	HTTP request
//	  -> resolve      request -> tenant   (header, host, path or JWT claim; Chain)
//	  -> store/cache  identifier -> Tenant (in-process LRU + Redis, invalidated on every write)
//	  -> middleware   status check, tenant into the context, problem+json errors
//	  -> handler      tenancy.FromContext(ctx)
//	  -> isolation    tenant-scoped statement: RLS, schema, database or hybrid
//	  -> PostgreSQL or SQLite
//
// Around it, migrate applies one migration set to every tenant target,
// lifecycle provisions, suspends and purges tenants everywhere they live,
// limit enforces per-tenant rate limits, and admin is the command line.
package tenancy
