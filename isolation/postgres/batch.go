package postgres

import (
	"context"
	"errors"
	"reflect"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// sendBatch sends b's statements in one pipeline, after the tenant statement
// when sc is not nil (outside a transaction: the batch is then one implicit
// transaction, all or nothing, as in pgx).
func sendBatch(ctx context.Context, e *executor, c *pgx.Conn, sc *scope, path string, b *pgx.Batch, finish func(error)) pgx.BatchResults {
	fail := func(err error) pgx.BatchResults {
		if finish != nil {
			finish(err)
		}
		return pgx.FailedBatchResults(b, err)
	}
	if beginsTx(b) {
		return fail(errors.New("tenancy: Batch.BeginTx is not supported: begin the tenant's transaction first"))
	}
	qs := make([]query, len(b.QueuedQueries))
	for i, qq := range b.QueuedQueries {
		q, err := newQuery(ctx, c, path, qq.SQL, qq.Arguments)
		if err != nil {
			return fail(err)
		}
		qs[i] = q
	}
	res, err := e.start(ctx, c, sc, qs, finish)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return &batchResults{res: res, b: b}
}

// batchResults reads a batch's results in order, as pgx's own do.
type batchResults struct {
	res    *results
	b      *pgx.Batch
	err    error
	closed bool
}

func (br *batchResults) Exec() (pgconn.CommandTag, error) {
	if br.closed {
		return pgconn.CommandTag{}, errors.New("batch already closed")
	}
	rr, err := br.res.reader()
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return rr.Close()
}

func (br *batchResults) Query() (pgx.Rows, error) {
	if br.closed {
		err := errors.New("batch already closed")
		return errRows(err), err
	}
	rr, err := br.res.reader()
	if err != nil {
		return errRows(err), err
	}
	return pgx.RowsFromResultReader(br.res.c.TypeMap(), rr), nil
}

func (br *batchResults) QueryRow() pgx.Row {
	rs, _ := br.Query()
	return row{rs}
}

// Close reads the results not read yet, running their queued callbacks,
// then finishes the pipeline and releases the connection.
func (br *batchResults) Close() error {
	if br.closed {
		return br.err
	}
	for br.err == nil && br.res.err == nil && br.res.next < len(br.res.qs) {
		if fn := br.b.QueuedQueries[br.res.next].Fn; fn != nil {
			br.err = fn(br)
		} else {
			_, br.err = br.Exec()
		}
	}
	br.closed = true
	if err := br.res.close(); br.err == nil {
		br.err = err
	}
	return br.err
}

// Tx returns nil: a batch sent through the provider never begins a
// transaction of its own.
func (br *batchResults) Tx() pgx.Tx { return nil }

// beginsTx reports whether Batch.BeginTx was called on b: pgx records it in
// an unexported field only.
func beginsTx(b *pgx.Batch) bool {
	f := reflect.ValueOf(b).Elem().FieldByName("txOptions")
	return f.IsValid() && !f.IsNil()
}
