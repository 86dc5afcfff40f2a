package move

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
)

// Sum is a table's row count and checksum: the sum, as a decimal, of the
// first 64 bits of the MD5 of each row's text form over the copied columns.
// It does not depend on row order, so the same rows give the same sum on
// any server and in any strategy.
type Sum struct {
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum"`
}

// pair is a table at the source matched with its namesake at the
// destination, with the columns both have.
type pair struct {
	src, dst postgres.Table
	cols     []string
}

// pairTables matches the source's tables with the destination's by name, in
// the destination's order (children first). A source table the destination
// lacks is an error when it holds rows of the tenant.
func pairTables(ctx context.Context, src, dst postgres.Place) ([]pair, error) {
	st, err := src.Tables(ctx)
	if err != nil {
		return nil, err
	}
	dt, err := dst.Tables(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]postgres.Table{}
	for _, t := range st {
		byName[t.Name] = t
	}
	var out []pair
	for _, d := range dt {
		s, ok := byName[d.Name]
		if !ok {
			continue
		}
		delete(byName, d.Name)
		var cols []string
		for _, c := range d.Columns {
			if slices.Contains(s.Columns, c) {
				cols = append(cols, c)
			}
		}
		out = append(out, pair{src: s, dst: d, cols: cols})
	}
	err = inTenant(ctx, src, func(tx pgx.Tx) error {
		for _, s := range byName {
			sum, err := checksum(ctx, tx, src, s, s.Columns)
			if err != nil {
				return err
			}
			if sum.Rows > 0 {
				return fmt.Errorf("move: table %s holds %d rows of the tenant and %s has no table %q", s.Sanitized(), sum.Rows, dst, s.Name)
			}
		}
		return nil
	})
	return out, err
}

func columnList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// querier is a pool, connection or transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// checksum sums t's rows of the tenant at pl over cols.
func checksum(ctx context.Context, q querier, pl postgres.Place, t postgres.Table, cols []string) (Sum, error) {
	var s Sum
	sql := "SELECT count(*), coalesce(sum(('x' || substr(md5(ROW(" + columnList(cols) + ")::text), 1, 16))::bit(64)::bigint::numeric), 0)::text FROM " +
		t.Sanitized() + pl.Filter(t)
	if err := q.QueryRow(ctx, sql).Scan(&s.Rows, &s.Checksum); err != nil {
		return Sum{}, fmt.Errorf("checksum %s: %w", t.Sanitized(), err)
	}
	return s, nil
}

// setTenant sets the tenant for the rest of the transaction, so that the
// policies of FORCE ROW LEVEL SECURITY admit its rows when the connecting
// role is the tables' owner, and the tenant column's default is the tenant.
func setTenant(ctx context.Context, tx pgx.Tx, id string) error {
	_, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('"+postgres.TenantSetting+"', $1, true)", id)
	return err
}

// clear deletes the tenant's rows from tables (children first) at pl: the
// whole table in the tenant's own schema, the tenant's rows in shared ones.
func clear(ctx context.Context, tx pgx.Tx, pl postgres.Place, tables []postgres.Table) error {
	if len(tables) == 0 {
		return nil
	}
	if pl.Schema != "" {
		names := make([]string, len(tables))
		for i, t := range tables {
			names[i] = t.Sanitized()
		}
		if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(names, ", ")); err != nil {
			return fmt.Errorf("clear %s: %w", pl, err)
		}
		return nil
	}
	for _, t := range tables {
		if _, err := tx.Exec(ctx, "DELETE FROM "+t.Sanitized()+pl.Filter(t)); err != nil {
			return fmt.Errorf("clear %s: %w", t.Sanitized(), err)
		}
	}
	return nil
}

// copyTable streams t's rows of the tenant from the source transaction to
// the destination one, in COPY's text format.
func copyTable(ctx context.Context, src pgx.Tx, srcPl postgres.Place, dst pgx.Tx, p pair) (int64, error) {
	r, w := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		_, err := src.Conn().PgConn().CopyTo(ctx, w, "COPY (SELECT "+columnList(p.cols)+" FROM "+p.src.Sanitized()+srcPl.Filter(p.src)+") TO STDOUT")
		w.CloseWithError(err)
		errc <- err
	}()
	tag, err := copyIn(ctx, dst.Conn().PgConn(), r, p.dst, p.cols)
	r.CloseWithError(io.ErrClosedPipe)
	if srcErr := <-errc; srcErr != nil && err == nil {
		err = fmt.Errorf("read %s: %w", p.src.Sanitized(), srcErr)
	}
	return tag, err
}
