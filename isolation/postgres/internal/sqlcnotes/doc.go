// Package sqlcnotes is sqlc's pgx/v5 output for the conformance suite's
// notes table, generated from schema.sql and query.sql: the tests run it on
// a tenant's postgres.Querier and pgx.Tx to prove that sqlc code works there
// unchanged (":copyfrom" and ":batch" queries included).
package sqlcnotes

//go:generate sqlc generate
