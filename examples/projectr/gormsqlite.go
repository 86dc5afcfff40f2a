package main

import (
	"context"
	"database/sql"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/migrator"
	"gorm.io/gorm/schema"
)

// sqliteDialect is a GORM dialector for SQLite that brings no driver of its
// own: every statement runs on the *sql.Tx or *sql.Conn of a tenant's file,
// which the isolation/sqlite provider opens with modernc.org/sqlite (pure
// Go). gorm.io/driver/sqlite needs cgo, and the pure-Go dialectors register
// a second database/sql driver named "sqlite", which modernc's already is.
// Projectr writes its tables with SQL migrations, so the dialector only
// builds and runs statements: its Migrator is GORM's generic one, unused.
type sqliteDialect struct{}

var _ gorm.Dialector = sqliteDialect{}

// Name implements gorm.Dialector.
func (sqliteDialect) Name() string { return "sqlite" }

// Initialize implements gorm.Dialector: SQLite (3.35 and later) takes
// RETURNING on inserts, updates and deletes.
func (sqliteDialect) Initialize(db *gorm.DB) error {
	callbacks.RegisterDefaultCallbacks(db, &callbacks.Config{
		CreateClauses: []string{"INSERT", "VALUES", "ON CONFLICT", "RETURNING"},
		UpdateClauses: []string{"UPDATE", "SET", "FROM", "WHERE", "RETURNING"},
		DeleteClauses: []string{"DELETE", "FROM", "WHERE", "RETURNING"},
	})
	return nil
}

// Migrator implements gorm.Dialector.
func (d sqliteDialect) Migrator(db *gorm.DB) gorm.Migrator {
	return migrator.Migrator{Config: migrator.Config{DB: db, Dialector: d}}
}

// DataTypeOf implements gorm.Dialector, for GORM's migrator only.
func (sqliteDialect) DataTypeOf(f *schema.Field) string {
	switch f.DataType {
	case schema.Bool, schema.Int, schema.Uint:
		return "INTEGER"
	case schema.Float:
		return "REAL"
	case schema.Time:
		return "DATETIME"
	case schema.Bytes:
		return "BLOB"
	default:
		return "TEXT"
	}
}

// DefaultValueOf implements gorm.Dialector.
func (sqliteDialect) DefaultValueOf(*schema.Field) clause.Expression {
	return clause.Expr{SQL: "NULL"}
}

// BindVarTo implements gorm.Dialector.
func (sqliteDialect) BindVarTo(w clause.Writer, _ *gorm.Statement, _ any) {
	_ = w.WriteByte('?')
}

// QuoteTo implements gorm.Dialector: identifiers in double quotes, a
// dotted name quoted part by part.
func (sqliteDialect) QuoteTo(w clause.Writer, s string) {
	for i, part := range strings.Split(s, ".") {
		if i > 0 {
			_ = w.WriteByte('.')
		}
		_ = w.WriteByte('"')
		_, _ = w.WriteString(strings.ReplaceAll(part, `"`, `""`))
		_ = w.WriteByte('"')
	}
}

// Explain implements gorm.Dialector.
func (sqliteDialect) Explain(sql string, vars ...any) string {
	return logger.ExplainSQL(sql, nil, `'`, vars...)
}

// gormOn returns a GORM handle whose statements run on pool (a tenant's
// *sql.Tx or *sql.Conn), as GORM's own Begin does for its transactions.
func gormOn(base *gorm.DB, ctx context.Context, pool gorm.ConnPool) *gorm.DB {
	db := base.Session(&gorm.Session{NewDB: true, Context: ctx})
	db.Statement.ConnPool = pool
	return db
}

// sqlTxOf returns the *sql.Tx a GORM transaction runs on.
func sqlTxOf(tx *gorm.DB) (*sql.Tx, bool) {
	t, ok := tx.Statement.ConnPool.(*sql.Tx)
	return t, ok
}
