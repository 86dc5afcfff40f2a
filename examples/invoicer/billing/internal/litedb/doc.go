// Package litedb is sqlc's database/sql output for Invoicer's tables on
// SQLite, generated from the SQLite migrations and query.sql. It runs on the
// *sql.Tx of a tenant's own file (sqlite.Provider.BeginFunc).
package litedb

//go:generate sqlc generate
