package move

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5/pgconn"
)

// copyIn loads rows in COPY's text format into t. PostgreSQL refuses COPY
// FROM into a table whose row-level security applies to the loading role
// (the owner, under FORCE ROW LEVEL SECURITY), so the rows go in as
// multi-row INSERTs with text parameters whose types the server takes from
// the columns: any type that COPY writes as text reads back the same.
func copyIn(ctx context.Context, c *pgconn.PgConn, r io.Reader, t postgres.Table, cols []string) (int64, error) {
	per := min(1000, 65535/max(1, len(cols)))
	br := bufio.NewReaderSize(r, 1<<16)
	var (
		batch [][]byte
		rows  int64
		sqls  = map[int]string{}
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n := len(batch) / len(cols)
		sql, ok := sqls[n]
		if !ok {
			sql = insertSQL(t, cols, n)
			sqls[n] = sql
		}
		if _, err := c.ExecParams(ctx, sql, batch, nil, nil, nil).Close(); err != nil {
			return fmt.Errorf("write %s: %w", t.Sanitized(), err)
		}
		rows += int64(n)
		batch = batch[:0]
		return nil
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			if string(line) == `\.` {
				break
			}
			fields := bytes.Split(line, []byte("\t"))
			if len(fields) != len(cols) {
				return rows, fmt.Errorf("write %s: a row has %d fields, want %d", t.Sanitized(), len(fields), len(cols))
			}
			for _, f := range fields {
				v, err := unescape(f)
				if err != nil {
					return rows, fmt.Errorf("write %s: %w", t.Sanitized(), err)
				}
				batch = append(batch, v)
			}
			if len(batch)/len(cols) >= per {
				if err := flush(); err != nil {
					return rows, err
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return rows, fmt.Errorf("read rows of %s: %w", t.Sanitized(), err)
		}
	}
	return rows, flush()
}

func insertSQL(t postgres.Table, cols []string, n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + t.Sanitized() + " (" + columnList(cols) + ") VALUES ")
	p := 1
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range cols {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(p))
			p++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// unescape decodes one field of COPY's text format: nil for \N (NULL).
func unescape(f []byte) ([]byte, error) {
	if string(f) == `\N` {
		return nil, nil
	}
	if bytes.IndexByte(f, '\\') < 0 {
		return append([]byte{}, f...), nil
	}
	out := make([]byte, 0, len(f))
	for i := 0; i < len(f); i++ {
		if f[i] != '\\' {
			out = append(out, f[i])
			continue
		}
		i++
		if i == len(f) {
			return nil, fmt.Errorf("field ends in a lone backslash")
		}
		switch c := f[i]; c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, '\v')
		case 'x':
			j := i + 1
			for j < len(f) && j < i+3 && isHex(f[j]) {
				j++
			}
			if j == i+1 {
				out = append(out, 'x')
				continue
			}
			v, _ := strconv.ParseUint(string(f[i+1:j]), 16, 8)
			out = append(out, byte(v))
			i = j - 1
		default:
			if c >= '0' && c <= '7' {
				j := i
				for j < len(f) && j < i+3 && f[j] >= '0' && f[j] <= '7' {
					j++
				}
				v, _ := strconv.ParseUint(string(f[i:j]), 8, 8)
				out = append(out, byte(v))
				i = j - 1
				continue
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
