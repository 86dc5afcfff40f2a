// Package isolation defines how application code reaches a tenant's data,
// whichever strategy keeps it apart: row-level security, a schema per tenant
// or a database per tenant on PostgreSQL (package isolation/postgres), or a
// file per tenant on SQLite (package isolation/sqlite).
//
// Code written against Provider is the same for every strategy; only the SQL
// dialect may differ. Every call names its tenant explicitly: nothing is
// taken from a connection, a goroutine or a global, so work started for one
// tenant cannot run in another's.
package isolation

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/go-tenancy/tenancy"
)

// Dialect is the SQL dialect a provider speaks.
type Dialect int

// Dialects.
const (
	Postgres Dialect = iota + 1
	SQLite
)

func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case SQLite:
		return "sqlite"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// ErrNoRows is returned by Row.Scan when the query selected nothing. It is
// database/sql's sql.ErrNoRows, which pgx's ErrNoRows also matches, so one
// errors.Is check serves every dialect.
var ErrNoRows = sql.ErrNoRows

// Errors.
var (
	// ErrUnknownPlacement: a tenant's Placement names no configured server.
	ErrUnknownPlacement = errors.New("tenant placement names no configured database server")
	// ErrTxClosed is returned by every call on a transaction after its
	// callback returned (or after Commit or Rollback, where the driver's
	// native transaction is used): nothing is sent. A transaction captured
	// by a goroutine or a closure can therefore never run a statement
	// outside its tenant's scope, or inside another tenant's transaction
	// that now holds the connection.
	ErrTxClosed = errors.New("isolation: transaction has ended")
)

// Rows is the result of a query. Call Close when done (it is also closed by a
// Next that returns false), then check Err.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is the result of a query expected to return one row. Scan returns
// ErrNoRows when there is none.
type Row interface {
	Scan(dest ...any) error
}

// Querier runs statements in one tenant's scope.
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
	// Query runs a statement that returns rows.
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
	// QueryRow runs a statement that returns at most one row.
	QueryRow(ctx context.Context, sql string, args ...any) Row
}

// Tx is a transaction in one tenant's scope. It is valid only until the
// callback it was passed to returns; every later call returns ErrTxClosed.
// For the driver's own types (pgx.Tx, *sql.Tx), use the provider package's
// native access: isolation/postgres.For, isolation/sqlite.Provider.Tx.
type Tx interface {
	Querier
}

// Provider keeps tenants' data apart. Every method that reaches data takes the
// tenant explicitly; a nil tenant is refused with tenancy.ErrNoTenant before
// anything is sent.
type Provider interface {
	// Dialect reports the SQL dialect statements must be written in.
	Dialect() Dialect
	// Initialize creates what the strategy needs for t (a schema, a database,
	// a file). It is idempotent.
	Initialize(ctx context.Context, t *tenancy.Tenant) error
	// Destroy removes all of t's data: its rows, schema, database or file.
	// It is idempotent.
	Destroy(ctx context.Context, t *tenancy.Tenant) error
	// Exec runs one statement in t's scope and returns the rows affected.
	Exec(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) (int64, error)
	// Query runs one statement in t's scope.
	Query(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) (Rows, error)
	// QueryRow runs one statement in t's scope and returns its first row.
	QueryRow(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) Row
	// Tx runs fn in a transaction in t's scope. It commits when fn returns
	// nil and rolls back otherwise.
	Tx(ctx context.Context, t *tenancy.Tenant, fn func(Tx) error) error
	// Close releases what the provider opened. Pools passed in by the caller
	// stay open.
	Close()
}

// Router is implemented by providers that delegate each tenant to another
// provider, such as Hybrid. Driver packages use it to reach the provider
// that serves a tenant, for native access.
type Router interface {
	ProviderFor(t *tenancy.Tenant) (Provider, error)
}

// Resolve returns the provider that serves t: p itself, or, through any
// number of Routers, the one p delegates t to.
func Resolve(p Provider, t *tenancy.Tenant) (Provider, error) {
	for {
		r, ok := p.(Router)
		if !ok {
			return p, nil
		}
		next, err := r.ProviderFor(t)
		if err != nil {
			return nil, err
		}
		p = next
	}
}

// Scoped binds a Provider to one tenant, for code that works for a single
// tenant throughout, such as a request handler.
type Scoped struct {
	Provider Provider
	Tenant   *tenancy.Tenant
}

// For returns p bound to t.
func For(p Provider, t *tenancy.Tenant) Scoped { return Scoped{Provider: p, Tenant: t} }

// FromContext returns p bound to the tenant ctx carries, or
// tenancy.ErrNoTenant when it carries none.
func FromContext(ctx context.Context, p Provider) (Scoped, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok {
		return Scoped{}, tenancy.ErrNoTenant
	}
	return For(p, t), nil
}

// Exec runs a statement in the bound tenant's scope.
func (s Scoped) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return s.Provider.Exec(ctx, s.Tenant, sql, args...)
}

// Query runs a statement in the bound tenant's scope.
func (s Scoped) Query(ctx context.Context, sql string, args ...any) (Rows, error) {
	return s.Provider.Query(ctx, s.Tenant, sql, args...)
}

// QueryRow runs a statement in the bound tenant's scope.
func (s Scoped) QueryRow(ctx context.Context, sql string, args ...any) Row {
	return s.Provider.QueryRow(ctx, s.Tenant, sql, args...)
}

// Tx runs fn in a transaction in the bound tenant's scope.
func (s Scoped) Tx(ctx context.Context, fn func(Tx) error) error {
	return s.Provider.Tx(ctx, s.Tenant, fn)
}

// ErrRow is a Row whose Scan returns an error; providers return it when a
// query could not be sent.
type ErrRow struct{ Err error }

// Scan returns the error.
func (r ErrRow) Scan(...any) error { return r.Err }

// RowOf returns the Row of a query's result: Scan reads the first row,
// returns ErrNoRows when there is none, and closes rows. Providers build
// QueryRow with it.
func RowOf(rows Rows, err error) Row {
	if err != nil {
		return ErrRow{Err: err}
	}
	return firstRow{rows: rows}
}

type firstRow struct{ rows Rows }

func (r firstRow) Scan(dest ...any) error {
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// CheckTenant returns tenancy.ErrNoTenant for a nil tenant and the
// validation error for a tenant whose ID or identifier is invalid: providers
// call it before building any name or statement.
func CheckTenant(t *tenancy.Tenant) error {
	if t == nil {
		return tenancy.ErrNoTenant
	}
	if err := tenancy.ValidateID(t.ID); err != nil {
		return err
	}
	return tenancy.ValidateIdentifier(t.Identifier)
}

// Target is one place a migration set is applied: the shared tables, or one
// tenant's schema, database or file. Providers describe their targets; the
// migrate package applies migrations to them.
type Target struct {
	// Key names the target, stable across runs: "shared",
	// "schema/<schema>", "database/<database>" or "file/<identifier>".
	Key string
	// Tenant owns the target; nil for shared tables.
	Tenant *tenancy.Tenant
	// Dialect is the SQL dialect of the target.
	Dialect Dialect
	// Open opens a handle on the target, with the search path set to it
	// where that matters. The caller closes it.
	Open func(ctx context.Context) (*sql.DB, error)
	// Finish runs on the handle after migrations changed the target, for
	// what the strategy needs on new tables (grants to the tenant role). It
	// may be nil.
	Finish func(ctx context.Context, db *sql.DB) error
}

// VersionTable is the table in each target where the migrate package's goose
// runner records applied versions. Providers keep tenants' statements out of
// it.
const VersionTable = "goose_db_version"

// Migratable is implemented by providers whose storage a migration runner
// can reach. Build the provider on the migration DSN (which may differ from
// the application's) to migrate.
type Migratable interface {
	// Targets returns the targets of tenants, each once, shared tables
	// first. Tenants whose strategy keeps them in shared tables add no
	// target of their own.
	Targets(tenants []*tenancy.Tenant) ([]Target, error)
}

// ResidueChecker is implemented by providers that can tell what remains of a
// tenant's data, to prove a purge complete.
type ResidueChecker interface {
	// Residue describes what is left of t's data; empty means nothing.
	Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error)
}
