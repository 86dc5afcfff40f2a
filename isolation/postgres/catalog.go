package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// table names a relation in the catalog.
type table struct {
	schema, name string
}

func (t table) String() string    { return t.schema + "." + t.name }
func (t table) sanitized() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// rlsTables lists the tables on the search path (the shared tables) that
// hold a tenant_id column, ordered so that a table comes before every table
// it references: deleting in that order never violates a foreign key. Tables
// without row-level security are included: their rows are tenant data too
// (and the doctor reports them).
func rlsTables(ctx context.Context, db execerQuery) ([]table, error) {
	rows, err := db.Query(ctx, `
SELECT c.oid, n.nspname, c.relname,
       coalesce(array_agg(DISTINCT f.confrelid) FILTER (WHERE f.confrelid IS NOT NULL AND f.confrelid <> c.oid), '{}')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
LEFT JOIN pg_constraint f ON f.conrelid = c.oid AND f.contype = 'f'
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  AND n.nspname = ANY (current_schemas(false))
GROUP BY c.oid, n.nspname, c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list tenant tables: %w", err)
	}
	type node struct {
		t    table
		refs []uint32
	}
	nodes := map[uint32]*node{}
	var order []uint32
	for rows.Next() {
		var (
			oid uint32
			n   node
		)
		if err := rows.Scan(&oid, &n.t.schema, &n.t.name, &n.refs); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list tenant tables: %w", err)
		}
		nodes[oid] = &n
		order = append(order, oid)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tenant tables: %w", err)
	}
	// Depth-first: emit referencing tables (children) before the tables they
	// reference, by visiting each table's referrers first.
	referrers := map[uint32][]uint32{}
	for _, oid := range order {
		for _, r := range nodes[oid].refs {
			referrers[r] = append(referrers[r], oid)
		}
	}
	done := map[uint32]bool{}
	var out []table
	var visit func(uint32)
	visit = func(oid uint32) {
		if done[oid] {
			return
		}
		done[oid] = true
		for _, child := range referrers[oid] {
			visit(child)
		}
		if n, ok := nodes[oid]; ok {
			out = append(out, n.t)
		}
	}
	for _, oid := range order {
		visit(oid)
	}
	return out, nil
}

// execerQuery is the part of a pool or connection that catalog queries need.
type execerQuery interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}
