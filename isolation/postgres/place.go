package postgres

import (
	"context"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Place is where one tenant's data lives on PostgreSQL, as a move, an
// export or an import of it sees it: a server (Pool, reached as the
// provider's connecting role, for administration) and either shared tables
// (RLS: the tenant's rows in every tenant table, by Config.TenantColumn) or
// the tenant's own schema.
type Place struct {
	// Strategy is tenancy.IsolationRLS or tenancy.IsolationSchema.
	Strategy tenancy.Isolation
	// Placement is the tenant's placement: "" for the default server.
	Placement string
	// Pool reaches the server, as the provider's connecting role.
	Pool *pgxpool.Pool
	// Schema is the tenant's schema; empty for shared tables.
	Schema string
	// TenantColumn is the column that holds the tenant ID.
	TenantColumn string
	// Fence is the tenant's fence at this place (FenceKey).
	Fence [2]int32

	tenantID string
	exclude  []string
}

// PlaceOf returns where t's data lives under p, following routers such as
// isolation.Hybrid. Only RLS and Schema providers have a Place; a database
// per tenant is refused.
func PlaceOf(p isolation.Provider, t *tenancy.Tenant) (Place, error) {
	if err := isolation.CheckTenant(t); err != nil {
		return Place{}, err
	}
	target, err := isolation.Resolve(p, t)
	if err != nil {
		return Place{}, err
	}
	switch target := target.(type) {
	case *RLS:
		srv, err := serverFor(target.servers, t)
		if err != nil {
			return Place{}, err
		}
		return Place{
			Strategy: tenancy.IsolationRLS, Placement: t.Placement, Pool: srv.pool,
			TenantColumn: target.cfg.TenantColumn, Fence: FenceKey(tenancy.IsolationRLS, t.Placement, t.ID),
			tenantID: t.ID, exclude: target.cfg.ExcludeSchemas,
		}, nil
	case *Schema:
		name, pool, err := target.place(t)
		if err != nil {
			return Place{}, err
		}
		return Place{
			Strategy: tenancy.IsolationSchema, Placement: t.Placement, Pool: pool, Schema: name,
			TenantColumn: target.cfg.TenantColumn, Fence: FenceKey(tenancy.IsolationSchema, t.Placement, t.ID),
			tenantID: t.ID, exclude: target.cfg.ExcludeSchemas,
		}, nil
	}
	return Place{}, fmt.Errorf("tenancy: %T keeps no tenant's data in shared tables or a schema of its own; only RLS and Schema places can be copied", target)
}

// TenantID returns the ID of the tenant whose place it is.
func (pl Place) TenantID() string { return pl.tenantID }

// Same reports whether two places are one: the same server, strategy and
// schema.
func (pl Place) Same(o Place) bool {
	return pl.Strategy == o.Strategy && pl.Placement == o.Placement && pl.Schema == o.Schema
}

func (pl Place) String() string {
	if pl.Schema != "" {
		return fmt.Sprintf("schema %s on %q", pl.Schema, pl.Placement)
	}
	return fmt.Sprintf("shared tables on %q", pl.Placement)
}

// Table is one table of a Place.
type Table struct {
	// Schema and Name name the table.
	Schema, Name string
	// Columns are its columns that hold data (not generated, not dropped),
	// in table order.
	Columns []string
	// Shared is true for a shared table: the place's rows are those whose
	// tenant column holds the tenant.
	Shared bool
}

// Sanitized returns the table's quoted, qualified name.
func (t Table) Sanitized() string { return pgx.Identifier{t.Schema, t.Name}.Sanitize() }

// Tables lists the place's tables ordered so that a table comes before
// every table it references (delete in this order, insert in reverse): for
// shared tables those with the tenant column, for a schema every table in
// it but the migration version table. A schema not created yet has none.
func (pl Place) Tables(ctx context.Context) ([]Table, error) {
	var ts []table
	var err error
	if pl.Schema == "" {
		ts, err = catalog{col: pl.TenantColumn, exclude: pl.exclude}.sharedTables(ctx, pl.Pool)
	} else {
		ts, err = schemaTables(ctx, pl.Pool, pl.Schema)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Table, 0, len(ts))
	for _, t := range ts {
		cols, err := collectStrings(pl.Pool.Query(ctx, `SELECT a.attname FROM pg_catalog.pg_attribute a
WHERE a.attrelid = (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)
  AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum`, simple, t.schema, t.name))
		if err != nil {
			return nil, fmt.Errorf("list columns of %s: %w", t, err)
		}
		out = append(out, Table{Schema: t.schema, Name: t.name, Columns: cols, Shared: pl.Schema == ""})
	}
	return out, nil
}

// Filter returns the WHERE clause that selects the tenant's rows of t, with
// the tenant ID inlined as a literal (for COPY, which takes no
// parameters), or "" for a table of the tenant's own schema.
func (pl Place) Filter(t Table) string {
	if !t.Shared {
		return ""
	}
	return " WHERE " + pgx.Identifier{pl.TenantColumn}.Sanitize() + " = " + quoteLiteral(pl.tenantID)
}

// schemaTables lists the tables of one schema, not counting partitions or
// the migration version table, children before the tables they reference.
func schemaTables(ctx context.Context, db execerQuery, schema string) ([]table, error) {
	rows, err := db.Query(ctx, `
SELECT c.oid, n.nspname, c.relname,
       coalesce(array_agg(DISTINCT f.confrelid) FILTER (WHERE f.confrelid IS NOT NULL AND f.confrelid <> c.oid), '{}')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_constraint f ON f.conrelid = c.oid AND f.contype = 'f'
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> $2
GROUP BY c.oid, n.nspname, c.relname`, simple, schema, isolation.VersionTable)
	if err != nil {
		return nil, fmt.Errorf("list tables of schema %s: %w", schema, err)
	}
	return childrenFirst(rows)
}
