// Package billing is Invoicer's data layer: customers, invoices and their
// line items, kept per tenant behind one Store interface with two
// implementations.
//
//   - PostgresStore keeps each tenant in a schema of its own
//     (tenant_acme_corp, tenant_globex) through a postgres.Schema provider.
//     The tables have no tenant column: the schema is the boundary, and the
//     database enforces it with the boundary policies the schema migrations
//     seal every table with. Its queries are written once in SQL and
//     generated with sqlc (internal/pgdb), running unchanged on the
//     provider's tenant Querier and pgx.Tx.
//   - SQLiteStore keeps each tenant in a file of its own through
//     isolation/sqlite, with sqlc's database/sql output (internal/litedb)
//     running on the tenant file's *sql.Tx.
//
// The migration sets (Migrations) are goose SQL files run per tenant target
// by package migrate. Money is integer cents throughout; an invoice's total
// is its subtotal (no tax). Invoice numbers (INV-0001, INV-0002, ...) are
// per tenant and gap-free: a one-row counter is advanced in the same
// transaction as the insert, so concurrent creates queue on its row lock
// and a failed create gives its number back.
//
// Every method takes the tenant explicitly and none reaches another
// tenant's rows: an ID of another tenant is not found, exactly like one
// that exists nowhere.
package billing
