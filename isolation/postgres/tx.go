package postgres

import (
	"context"
	"errors"
	"sync"

	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// errTxClosed is returned by every call on a transaction that has ended. It
// matches both isolation.ErrTxClosed and pgx.ErrTxClosed.
var errTxClosed error = txClosedError{}

type txClosedError struct{}

func (txClosedError) Error() string { return "tenancy: transaction has ended; nothing was sent" }

func (txClosedError) Is(target error) bool {
	return target == isolation.ErrTxClosed || target == pgx.ErrTxClosed
}

// txRoot is what a transaction and its savepoints share: the connection the
// transaction holds, and the lock that orders every call against the end of
// the transaction.
type txRoot struct {
	mu      sync.Mutex
	conn    *pgx.Conn
	exec    *executor
	sc      *scope
	release func()
	trace   func(context.Context, string) (context.Context, func(error))
}

// tx is a transaction in one tenant's scope, as a pgx.Tx: statements go
// through the provider's executor (its statement cache is keyed by search
// path and SQL, where pgx's own is keyed by SQL alone), and once the
// transaction (or, for a savepoint, it or an enclosing one) has ended,
// every call returns an error matching pgx.ErrTxClosed and
// isolation.ErrTxClosed, and sends nothing: a transaction captured by a
// goroutine or a closure cannot run a statement outside its tenant's
// scope, nor inside the transaction of whichever tenant holds the
// connection next.
type tx struct {
	root   *txRoot
	inner  pgx.Tx // pgx's transaction, or its savepoint for a nested one
	parent *tx
	ended  bool // guarded by root.mu
}

var _ pgx.Tx = (*tx)(nil)

func newTx(conn *pgx.Conn, inner pgx.Tx, e *executor, sc *scope, release func()) *tx {
	root := &txRoot{conn: conn, exec: e, sc: sc, release: release}
	root.trace = func(ctx context.Context, _ string) (context.Context, func(error)) { return ctx, noTrace }
	return &tx{root: root, inner: inner}
}

// open reports whether t and every transaction enclosing it are open;
// root.mu is held.
func (t *tx) open() bool {
	for p := t; p != nil; p = p.parent {
		if p.ended {
			return false
		}
	}
	return true
}

// lock takes the transaction's lock if the transaction is open.
func (t *tx) lock() bool {
	t.root.mu.Lock()
	if !t.open() {
		t.root.mu.Unlock()
		return false
	}
	return true
}

// Begin starts a nested transaction: a savepoint.
func (t *tx) Begin(ctx context.Context) (pgx.Tx, error) {
	if !t.lock() {
		return nil, errTxClosed
	}
	defer t.root.mu.Unlock()
	inner, err := t.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &tx{root: t.root, inner: inner, parent: t}, nil
}

// Commit commits the transaction, or releases the savepoint.
func (t *tx) Commit(ctx context.Context) error { return t.end(ctx, true) }

// Rollback rolls the transaction back, or back to the savepoint. After the
// transaction has ended it returns an error matching pgx.ErrTxClosed, so
// that a deferred Rollback after Commit is harmless.
func (t *tx) Rollback(ctx context.Context) error { return t.end(ctx, false) }

func (t *tx) end(ctx context.Context, commit bool) error {
	if !t.lock() {
		return errTxClosed
	}
	defer t.root.mu.Unlock()
	t.ended = true
	var err error
	if commit {
		err = t.inner.Commit(ctx)
	} else {
		err = t.inner.Rollback(ctx)
	}
	if t.parent == nil {
		t.root.release()
	}
	return err
}

// run runs fn, then commits, or rolls back when fn fails or panics.
func (t *tx) run(ctx context.Context, fn func() error) error {
	defer func() {
		if p := recover(); p != nil {
			_ = t.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
	}()
	if err := fn(); err != nil {
		if rbErr := t.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			return errors.Join(err, rbErr)
		}
		return err
	}
	return t.Commit(ctx)
}

// Query runs a statement in the transaction.
func (t *tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if !t.lock() {
		return errRows(errTxClosed), errTxClosed
	}
	defer t.root.mu.Unlock()
	ctx, traced := t.root.trace(ctx, sql)
	rs, err := t.root.exec.run(ctx, t.root.conn, nil, t.root.sc.path, sql, args, traced)
	if err != nil {
		traced(err)
		return errRows(err), err
	}
	return rs, nil
}

// QueryRow runs a statement in the transaction and returns its first row.
func (t *tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rs, _ := t.Query(ctx, sql, args...)
	return row{rs}
}

// Exec runs a statement in the transaction.
func (t *tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if !t.lock() {
		return pgconn.CommandTag{}, errTxClosed
	}
	defer t.root.mu.Unlock()
	ctx, traced := t.root.trace(ctx, sql)
	tag, err := t.root.exec.exec(ctx, t.root.conn, nil, t.root.sc.path, sql, args)
	traced(err)
	return tag, err
}

// SendBatch sends every statement of b in one round trip (two when some
// are new to the connection).
func (t *tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if !t.lock() {
		return pgx.FailedBatchResults(b, errTxClosed)
	}
	defer t.root.mu.Unlock()
	ctx, traced := t.root.trace(ctx, batchSQL(b))
	return sendBatch(ctx, t.root.exec, t.root.conn, nil, t.root.sc.path, b, traced)
}

// CopyFrom inserts rows into table in the transaction, a thousand rows per
// round trip, each checked by the table's policies. PostgreSQL refuses COPY
// FROM into a table under row-level security, as every tenant table is, so
// the rows travel as pipelined INSERT statements.
func (t *tx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if !t.lock() {
		return 0, errTxClosed
	}
	defer t.root.mu.Unlock()
	return t.root.exec.copyFrom(ctx, t.root.conn, t.root.sc.path, table, columns, src)
}

// LargeObjects returns pgx's large objects on the transaction. Large
// objects are not tenant data to PostgreSQL: any role that may read one
// reads it whatever the tenant, so keep tenant data in tables.
func (t *tx) LargeObjects() pgx.LargeObjects { return t.inner.LargeObjects() }

// Prepare is not supported: the provider prepares statements itself, per
// connection and search path, and a name of the caller's would be shared by
// every tenant on the connection.
func (t *tx) Prepare(context.Context, string, string) (*pgconn.StatementDescription, error) {
	return nil, errors.New("tenancy: Prepare is not supported in a tenant transaction: statements are prepared per connection and search path as they are used")
}

// Conn returns the connection while the transaction is open, and nil after.
// Statements sent on it directly leave the provider's executor: they still
// run in the transaction's scope, but through pgx's statement cache, which
// is keyed by SQL alone and so may hold a statement described in another
// tenant's schema.
func (t *tx) Conn() *pgx.Conn {
	if !t.lock() {
		return nil
	}
	defer t.root.mu.Unlock()
	return t.root.conn
}

// neutralTx is a tx as an isolation.Tx.
type neutralTx struct{ t *tx }

func (n neutralTx) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := n.t.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

func (n neutralTx) Query(ctx context.Context, sql string, args ...any) (isolation.Rows, error) {
	return n.t.Query(ctx, sql, args...)
}

func (n neutralTx) QueryRow(ctx context.Context, sql string, args ...any) isolation.Row {
	return n.t.QueryRow(ctx, sql, args...)
}
