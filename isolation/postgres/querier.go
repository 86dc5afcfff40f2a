package postgres

import (
	"context"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier runs statements in one tenant's scope with pgx's own types, so
// that code written for pgx runs on it unchanged: sqlc's generated code (its
// pgx/v5 DBTX, :copyfrom and :batch queries included), pgx.CollectRows,
// pgx.RowToStructByName, pgx.BeginFunc. Each one-shot call costs one round
// trip, the tenant statement included, as the provider's own calls do; Begin
// returns a pgx.Tx whose statements stay in the tenant's scope and which
// refuses every call once it has ended.
//
// A Querier is cheap to make (make one per request) and safe for concurrent
// use: each call takes its own connection.
type Querier struct {
	c   *core
	t   *tenancy.Tenant
	err error
}

// pgProvider is implemented by this package's providers.
type pgProvider interface{ pgCore() *core }

func (c *core) pgCore() *core { return c }

// For returns a Querier for t on p: an RLS, Schema or Database provider, or
// a router such as isolation.Hybrid over them. An error (p is not a
// PostgreSQL provider, t is nil or invalid) is returned by every call.
func For(p isolation.Provider, t *tenancy.Tenant) *Querier {
	target, err := isolation.Resolve(p, t)
	if err != nil {
		return &Querier{err: err}
	}
	pp, ok := target.(pgProvider)
	if !ok {
		return &Querier{err: fmt.Errorf("tenancy: %T is not a PostgreSQL provider", target)}
	}
	if t == nil {
		return &Querier{err: tenancy.ErrNoTenant}
	}
	return &Querier{c: pp.pgCore(), t: t}
}

// FromContext returns a Querier for the tenant ctx carries, or
// tenancy.ErrNoTenant when it carries none.
func FromContext(ctx context.Context, p isolation.Provider) (*Querier, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok {
		return nil, tenancy.ErrNoTenant
	}
	q := For(p, t)
	return q, q.err
}

// Tenant returns the tenant the Querier is bound to.
func (q *Querier) Tenant() *tenancy.Tenant { return q.t }

// Exec runs a statement and returns its command tag.
func (q *Querier) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if q.err != nil {
		return pgconn.CommandTag{}, q.err
	}
	return q.c.exec(ctx, q.t, sql, args)
}

// Query runs a statement that returns rows. The rows hold a connection until
// closed; errors are also reported by the rows, as pgx does.
func (q *Querier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if q.err != nil {
		return errRows(q.err), q.err
	}
	rs, err := q.c.query(ctx, q.t, sql, args)
	if err != nil {
		return errRows(err), err
	}
	return rs, nil
}

// QueryRow runs a statement and returns its first row; Scan reports
// pgx.ErrNoRows when there is none.
func (q *Querier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rs, _ := q.Query(ctx, sql, args...)
	return row{rs}
}

// SendBatch sends b's statements after the tenant statement in one round
// trip (two when some statements are new to the connection), as one
// implicit transaction: all or nothing. Batch.BeginTx is refused; use
// Begin.
func (q *Querier) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if q.err != nil {
		return pgx.FailedBatchResults(b, q.err)
	}
	ctx, traced := q.c.trace(ctx, q.t, batchSQL(b))
	loc, err := q.c.strat.locate(ctx, q.t)
	if err != nil {
		traced(err)
		return pgx.FailedBatchResults(b, err)
	}
	conn, err := loc.pool.Acquire(ctx)
	if err != nil {
		loc.done()
		traced(err)
		return pgx.FailedBatchResults(b, err)
	}
	return sendBatch(ctx, loc.exec, conn.Conn(), loc.scope, loc.scope.path, b, func(err error) {
		conn.Release()
		loc.done()
		traced(err)
	})
}

// CopyFrom inserts rows into table in a transaction of its own in the
// tenant's scope, a thousand rows per round trip; see pgx.Tx's CopyFrom on
// Begin's transaction for why it does not use COPY. An unqualified table
// name resolves on the tenant's search path (its schema, in schema
// isolation).
func (q *Querier) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	t, err := q.begin(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, err
	}
	var n int64
	err = t.run(ctx, func() error {
		var err error
		n, err = t.CopyFrom(ctx, table, columns, src)
		return err
	})
	return n, err
}

// Begin opens a transaction in the tenant's scope: BEGIN and the tenant
// statement travel in one round trip. Commit or Rollback it; once either
// has run, every call on it returns an error matching pgx.ErrTxClosed.
func (q *Querier) Begin(ctx context.Context) (pgx.Tx, error) {
	return q.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx is Begin with transaction options. TxOptions.BeginQuery is
// refused: the provider writes the BEGIN that sets the tenant.
func (q *Querier) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	t, err := q.begin(ctx, opts)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (q *Querier) begin(ctx context.Context, opts pgx.TxOptions) (*tx, error) {
	if q.err != nil {
		return nil, q.err
	}
	return q.c.begin(ctx, q.t, opts)
}

// batchSQL names a batch for a tracer: its first statement.
func batchSQL(b *pgx.Batch) string {
	if len(b.QueuedQueries) == 0 {
		return ""
	}
	return b.QueuedQueries[0].SQL
}
