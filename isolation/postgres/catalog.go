package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// table names a relation in the catalog.
type table struct {
	schema, name string
}

func (t table) String() string    { return t.schema + "." + t.name }
func (t table) sanitized() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// execerQuery is the part of a pool or connection that catalog queries need.
type execerQuery interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// catalog finds tenant tables: ordinary or partitioned tables with the
// tenant column, outside system schemas and the excluded ones.
type catalog struct {
	col     string
	exclude []string
}

// tenantTablesSQL selects the OIDs of tenant tables, partitions included, and
// their tenant column's number. $1 is the tenant column, $2 the excluded
// schemas.
const tenantTablesSQL = `
SELECT c.oid, a.attnum, n.nspname, c.relname, c.relispartition FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = $1 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  AND n.nspname <> ALL ($2::text[])`

// sharedTables lists tenant tables in every schema except tenant schemas
// (whose tables carry the boundary policy: they go with their schema), not
// counting partitions (their parent reaches them), ordered so that a table
// comes before every table it references: deleting in that order never
// violates a foreign key.
func (cat catalog) sharedTables(ctx context.Context, db execerQuery) ([]table, error) {
	rows, err := db.Query(ctx, `
WITH tt AS (`+tenantTablesSQL+`)
SELECT tt.oid, tt.nspname, tt.relname,
       coalesce(array_agg(DISTINCT f.confrelid) FILTER (WHERE f.confrelid IS NOT NULL AND f.confrelid <> tt.oid), '{}')
FROM tt
LEFT JOIN pg_catalog.pg_constraint f ON f.conrelid = tt.oid AND f.contype = 'f'
WHERE NOT tt.relispartition
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid = tt.oid AND p.polname = '`+BoundaryPolicy+`')
GROUP BY tt.oid, tt.nspname, tt.relname`, simple, cat.col, cat.exclude)
	if err != nil {
		return nil, fmt.Errorf("list tenant tables: %w", err)
	}
	return childrenFirst(rows)
}

// childrenFirst reads rows of (oid, schema, name, referenced oids) and
// orders the tables so that each comes before every table it references.
func childrenFirst(rows pgx.Rows) ([]table, error) {
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

// looseKeysSQL selects foreign keys between tenant tables that do not pair
// the referencing table's tenant column with the referenced one's. Keys a
// partition inherits from its parent are reported once, on the parent.
const looseKeysSQL = `
WITH tt AS (` + tenantTablesSQL + `)
SELECT format('%s on %s references %s', quote_ident(f.conname), f.conrelid::regclass, f.confrelid::regclass)
FROM pg_catalog.pg_constraint f
JOIN tt src ON src.oid = f.conrelid
JOIN tt dst ON dst.oid = f.confrelid
WHERE f.contype = 'f' AND f.conparentid = 0
  AND NOT EXISTS (SELECT FROM generate_subscripts(f.conkey, 1) i
                  WHERE f.conkey[i] = src.attnum AND f.confkey[i] = dst.attnum)
ORDER BY 1`

// looseKeys lists foreign keys between tenant tables without the tenant
// column.
func (cat catalog) looseKeys(ctx context.Context, db execerQuery) ([]string, error) {
	rows, err := db.Query(ctx, looseKeysSQL, simple, cat.col, cat.exclude)
	keys, err := collectStrings(rows, err)
	if err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	return keys, nil
}

// refuseLooseKeys returns an error naming every foreign key between tenant
// tables that leaves out the tenant column.
func (cat catalog) refuseLooseKeys(ctx context.Context, db execerQuery) error {
	keys, err := cat.looseKeys(ctx, db)
	if err != nil {
		return err
	}
	if len(keys) > 0 {
		return fmt.Errorf("tenancy: refusing to purge: foreign keys between tenant tables leave out %s, so deleting one tenant's rows could reach another's: %s",
			cat.col, strings.Join(keys, "; "))
	}
	return nil
}

// refuseKeysInto returns an error naming every foreign key from a table
// outside schema into one inside it: dropping the schema would drop them.
func refuseKeysInto(ctx context.Context, db execerQuery, schema string) error {
	rows, err := db.Query(ctx, `
SELECT format('%s on %s references %s', quote_ident(f.conname), f.conrelid::regclass, f.confrelid::regclass)
FROM pg_catalog.pg_constraint f
JOIN pg_catalog.pg_class dst ON dst.oid = f.confrelid
JOIN pg_catalog.pg_class src ON src.oid = f.conrelid
WHERE f.contype = 'f' AND dst.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1)
  AND src.relnamespace <> dst.relnamespace
ORDER BY 1`, simple, schema)
	keys, err := collectStrings(rows, err)
	if err != nil {
		return fmt.Errorf("list foreign keys into schema %s: %w", schema, err)
	}
	if len(keys) > 0 {
		return fmt.Errorf("tenancy: refusing to drop schema %s: tables outside it reference it: %s", schema, strings.Join(keys, "; "))
	}
	return nil
}

func collectStrings(rows pgx.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
