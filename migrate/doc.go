// Package migrate applies one migration set to every target a tenant
// isolation strategy implies: the shared tables once for row-level security,
// each tenant's schema, database or SQLite file, or all of those for hybrid
// isolation. pressly/goose applies the migrations and keeps a version table in
// each target; a journal records each target's outcome, so that a run with
// nothing to do reads one table and opens no connection per tenant.
//
// One target's failure never stops the others: it is reported with its error
// and retried by the next run. A lock per target, held in the journal's
// database, lets two runs start at once safely.
//
// A target on the migration pool's own server borrows one of its
// connections (reset before it goes back), commits its migrations
// asynchronously, and ends with one synchronous commit that makes them
// durable before the journal records the outcome. A Verify run reads each
// target's version with one query, skips goose when the target and the
// journal agree it is current, and writes grants only where missing.
//
// A canary (Options.Canary, Options.CanaryTier) migrates a subset first and
// halts the rollout when more than Options.MaxFailureRate of it fails: the
// other targets are reported held (StatusHeld), untouched, and the failed
// ones named.
//
// A Runner is a tenancy.Component: purging a tenant (package lifecycle)
// forgets its journal records, so that its identifier can be provisioned
// again from scratch.
package migrate
