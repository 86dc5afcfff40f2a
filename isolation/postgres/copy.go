package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// copyChunk is how many rows copyFrom sends per round trip.
const copyChunk = 1000

// copyFrom inserts rows from src into table on c, which must be in a
// transaction whose tenant is set. PostgreSQL refuses COPY FROM into a
// table under row-level security (every tenant table), so the rows are
// inserted by one statement per row, pipelined copyChunk at a time: one
// round trip per chunk, the statement prepared once per connection and
// search path like any other. Each row is checked by the table's policies
// like any insert.
func (e *executor) copyFrom(ctx context.Context, c *pgx.Conn, path string, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if len(columns) == 0 {
		return 0, fmt.Errorf("tenancy: copy into %s names no columns", table.Sanitize())
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + table.Sanitize() + " (")
	for i, col := range columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{col}.Sanitize())
	}
	b.WriteString(") VALUES (")
	for i := range columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(i+1))
	}
	b.WriteString(")")
	insert := b.String()

	var total int64
	qs := make([]query, 0, copyChunk)
	flush := func() error {
		if len(qs) == 0 {
			return nil
		}
		res, err := e.start(ctx, c, nil, qs, nil)
		if err != nil {
			return err
		}
		for range qs {
			rr, err := res.reader()
			if err != nil {
				_ = res.close()
				return err
			}
			tag, err := rr.Close()
			if err != nil {
				res.err = err
				_ = res.close()
				return err
			}
			total += tag.RowsAffected()
		}
		qs = qs[:0]
		return res.close()
	}
	for src.Next() {
		values, err := src.Values()
		if err != nil {
			return total, err
		}
		if len(values) != len(columns) {
			return total, fmt.Errorf("tenancy: copy row has %d values for %d columns", len(values), len(columns))
		}
		qs = append(qs, query{sql: insert, args: values, key: stmtKey{path: path, sql: insert}})
		if len(qs) == copyChunk {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	if err := src.Err(); err != nil {
		return total, err
	}
	return total, flush()
}
