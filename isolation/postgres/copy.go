package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// copyFrom copies rows from src into table on c, which must be in a
// transaction whose tenant is set. The columns' types come from the
// executor's statement cache, keyed by search path like every statement, so
// a table described in one tenant's schema never shapes another's copy (pgx's
// own CopyFrom describes through its cache keyed by SQL alone). Rows are
// encoded in COPY's binary format while they are sent.
func (e *executor) copyFrom(ctx context.Context, c *pgx.Conn, path string, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if len(columns) == 0 {
		return 0, fmt.Errorf("tenancy: copy into %s names no columns", table.Sanitize())
	}
	quoted := make([]string, len(columns))
	for i, col := range columns {
		quoted[i] = pgx.Identifier{col}.Sanitize()
	}
	cols := strings.Join(quoted, ", ")
	sd, err := e.describe(ctx, c, path, "SELECT "+cols+" FROM "+table.Sanitize())
	if err != nil {
		return 0, fmt.Errorf("tenancy: describe %s for copy: %w", table.Sanitize(), err)
	}
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := encodeCopy(w, c.TypeMap(), sd.Fields, src)
		_ = w.CloseWithError(err)
		done <- err
	}()
	tag, err := c.PgConn().CopyFrom(ctx, r, "COPY "+table.Sanitize()+" ("+cols+") FROM STDIN BINARY")
	_ = r.CloseWithError(io.ErrClosedPipe)
	if encErr := <-done; encErr != nil && encErr != io.ErrClosedPipe {
		return 0, encErr
	}
	return tag.RowsAffected(), err
}

// encodeCopy writes src's rows to w in COPY's binary format, in chunks.
func encodeCopy(w io.Writer, m *pgtype.Map, fields []pgconn.FieldDescription, src pgx.CopyFromSource) error {
	buf := make([]byte, 0, 64*1024)
	buf = append(buf, "PGCOPY\n\377\r\n\000"...)
	buf = binary.BigEndian.AppendUint32(buf, 0) // flags
	buf = binary.BigEndian.AppendUint32(buf, 0) // header extension
	for src.Next() {
		values, err := src.Values()
		if err != nil {
			return err
		}
		if len(values) != len(fields) {
			return fmt.Errorf("tenancy: copy row has %d values for %d columns", len(values), len(fields))
		}
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(values)))
		for i, v := range values {
			at := len(buf)
			buf = binary.BigEndian.AppendUint32(buf, 0xffffffff) // NULL until encoded
			enc, err := m.Encode(fields[i].DataTypeOID, pgx.BinaryFormatCode, v, buf)
			if err != nil {
				return fmt.Errorf("tenancy: encode copy value for column %d: %w", i+1, err)
			}
			if enc != nil {
				buf = enc
				binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
			}
		}
		if len(buf) > 60*1024 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if err := src.Err(); err != nil {
		return err
	}
	buf = binary.BigEndian.AppendUint16(buf, 0xffff) // trailer
	_, err := w.Write(buf)
	return err
}
