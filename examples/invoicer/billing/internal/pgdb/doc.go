// Package pgdb is sqlc's pgx/v5 output for Invoicer's tenant tables,
// generated from the PostgreSQL migrations and query.sql. It runs on a
// tenant's postgres.Querier or pgx.Tx: tables are named unqualified and
// resolve in the tenant's schema.
package pgdb

//go:generate sqlc generate
