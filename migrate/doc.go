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
// A Runner is a tenancy.Component: purging a tenant (package lifecycle)
// forgets its journal records, so that its identifier can be provisioned
// again from scratch.
package migrate
