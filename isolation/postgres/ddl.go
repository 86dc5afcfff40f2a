package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-tenancy/tenancy"
	"github.com/jackc/pgx/v5"
)

// TenantPredicate is the condition every tenant row satisfies: its tenant_id
// is the current tenant. NULLIF matters: once a session has set
// app.tenant_id, the setting reads ” (not NULL) in later transactions, and
// without NULLIF a tenant-less statement would match or write tenant_id = ”.
const TenantPredicate = "tenant_id = NULLIF(current_setting('" + TenantSetting + "', true), '')"

// TenantIDColumn is the column definition of tenant_id in a tenant table: it
// defaults to the current tenant, so inserts need not name it, and an insert
// with no tenant set fails on NOT NULL instead of writing a row nobody owns.
const TenantIDColumn = "tenant_id text NOT NULL DEFAULT NULLIF(current_setting('" + TenantSetting + "', true), '')"

// Policy names.
const (
	// PolicyName is the name of the policy EnableRLS creates.
	PolicyName = "tenant_isolation"
	// BoundaryPolicy is the restrictive policy SealSchema puts on every
	// table of a tenant schema: only that tenant's statements may read or
	// write it, whatever other policies allow.
	BoundaryPolicy = "tenancy_schema"
	// BoundaryAccessPolicy is its permissive twin, which grants that
	// tenant access to tables that have no permissive policy of their own
	// (a table with a tenant column keeps the tenant predicate's WITH
	// CHECK instead).
	BoundaryAccessPolicy = "tenancy_schema_access"
)

// DDL writes the statements that make tables tenant tables, for a tenant
// column of any name. The zero value uses tenant_id; the package-level
// functions and constants are DDL{}'s.
//
// Keys of tenant tables carry the tenant: the primary key is led by the
// tenant column and every foreign key to another tenant table includes it.
// A foreign key is checked without row-level security, so one without the
// tenant column would tell a tenant which IDs exist in other tenants, let it
// hang its rows on theirs, and cascade a purge into them.
type DDL struct {
	// TenantColumn names the tenant column. Default "tenant_id".
	TenantColumn string
}

func (d DDL) col() string {
	if d.TenantColumn == "" {
		return DefaultTenantColumn
	}
	return d.TenantColumn
}

func (d DDL) ident() string { return quoteIdent(d.col()) }

// Predicate returns the condition every tenant row satisfies; see
// TenantPredicate.
func (d DDL) Predicate() string {
	return d.ident() + " = NULLIF(current_setting('" + TenantSetting + "', true), '')"
}

// Column returns the column definition of the tenant column; see
// TenantIDColumn.
func (d DDL) Column() string {
	return d.ident() + " text NOT NULL DEFAULT NULLIF(current_setting('" + TenantSetting + "', true), '')"
}

// EnableRLS returns the statements that put table under row-level security:
// ENABLE and FORCE (so the owner is bound too), a policy whose USING and WITH
// CHECK are both the tenant predicate (so a row can be neither read nor
// written for another tenant), and an index led by the tenant column. The
// table name is quoted; leave it unqualified so that the search path picks
// the target, and one migration set serves shared tables and tenant schemas
// alike. Use it from Go migrations, or copy its output into SQL ones.
func (d DDL) EnableRLS(table string) []string {
	t := pgx.Identifier{table}.Sanitize()
	idx := pgx.Identifier{table + "_" + d.col() + "_idx"}.Sanitize()
	return []string{
		"ALTER TABLE " + t + " ENABLE ROW LEVEL SECURITY",
		"ALTER TABLE " + t + " FORCE ROW LEVEL SECURITY",
		"CREATE POLICY " + PolicyName + " ON " + t + " USING (" + d.Predicate() + ") WITH CHECK (" + d.Predicate() + ")",
		"CREATE INDEX IF NOT EXISTS " + idx + " ON " + t + " (" + d.ident() + ")",
	}
}

// PrimaryKey returns a primary key clause led by the tenant column:
// PrimaryKey("id") is PRIMARY KEY (tenant_id, id).
func (d DDL) PrimaryKey(columns ...string) string {
	return "PRIMARY KEY (" + d.ident() + ", " + idents(columns) + ")"
}

// ForeignKey returns a foreign key clause that carries the tenant column:
// ForeignKey([]string{"project_id"}, "projects", []string{"id"}) is FOREIGN
// KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id). The
// referenced table needs a key on the same columns, such as the one
// PrimaryKey writes.
func (d DDL) ForeignKey(columns []string, table string, refColumns []string) string {
	return "FOREIGN KEY (" + d.ident() + ", " + idents(columns) + ") REFERENCES " +
		quoteIdent(table) + " (" + d.ident() + ", " + idents(refColumns) + ")"
}

func idents(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = quoteIdent(n)
	}
	return strings.Join(quoted, ", ")
}

// EnableRLS is DDL{}.EnableRLS.
func EnableRLS(table string) []string { return DDL{}.EnableRLS(table) }

// PrimaryKey is DDL{}.PrimaryKey.
func PrimaryKey(columns ...string) string { return DDL{}.PrimaryKey(columns...) }

// ForeignKey is DDL{}.ForeignKey.
func ForeignKey(columns []string, table string, refColumns []string) string {
	return DDL{}.ForeignKey(columns, table, refColumns)
}

// BoundaryPredicate returns the condition of a tenant schema's boundary
// policies: the current tenant is the schema's. The sub-select makes
// PostgreSQL read the setting once per statement, not once per row.
func BoundaryPredicate(tenantID string) (string, error) {
	if err := tenancy.ValidateID(tenantID); err != nil {
		return "", err
	}
	return "(SELECT current_setting('" + TenantSetting + "', true)) = " + quoteLiteral(tenantID), nil
}

// SealSchemaSQL returns one statement that puts every table of a tenant
// schema (partitions included) under row-level security, enabled and
// forced, with the schema's boundary policy BoundaryPolicy (restrictive),
// and BoundaryAccessPolicy (permissive) where the table has no other
// permissive policy, both reading BoundaryPredicate. A statement in another
// tenant's scope that names the schema's tables then reads nothing and
// cannot write, whether or not the table has a tenant column, whatever
// other policies say. Tables already sealed are left alone, so it takes no
// lock on them; run it again after every migration.
func SealSchemaSQL(schema, tenantID string) (string, error) {
	return sealSchemaSQL(schema, tenantID, BoundaryPredicate)
}

// CitusBoundaryPredicate is BoundaryPredicate for Citus, which refuses
// subqueries in policies: the setting is read without the sub-select that
// lets PostgreSQL read it once per statement.
func CitusBoundaryPredicate(tenantID string) (string, error) {
	if err := tenancy.ValidateID(tenantID); err != nil {
		return "", err
	}
	return "current_setting('" + TenantSetting + "', true) = " + quoteLiteral(tenantID), nil
}

// SealSchemaCitus is SealSchema for a tenant schema on Citus, with
// CitusBoundaryPredicate. Seal a schema before distributing it
// (DistributeSchema), and again after every migration.
func SealSchemaCitus(ctx context.Context, db execer, schema, tenantID string) error {
	sql, err := sealSchemaSQL(schema, tenantID, CitusBoundaryPredicate)
	if err != nil {
		return err
	}
	if err := execCatalog(ctx, db, sql); err != nil {
		return fmt.Errorf("tenancy: seal schema %s: %w", schema, err)
	}
	return nil
}

func sealSchemaSQL(schema, tenantID string, predicate func(string) (string, error)) (string, error) {
	pred, err := predicate(tenantID)
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(schema, "'\x00") || schema == "" {
		return "", fmt.Errorf("tenancy: schema name %q is not valid here", schema)
	}
	return `DO $seal$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = ` + quoteLiteral(schema) + ` AND c.relkind IN ('r', 'p') LOOP
    IF NOT r.relrowsecurity THEN
      EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', ` + quoteLiteral(schema) + `, r.relname);
    END IF;
    IF NOT r.relforcerowsecurity THEN
      EXECUTE format('ALTER TABLE %I.%I FORCE ROW LEVEL SECURITY', ` + quoteLiteral(schema) + `, r.relname);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_policy WHERE polrelid = r.oid AND polname = '` + BoundaryPolicy + `') THEN
      EXECUTE format('CREATE POLICY ` + BoundaryPolicy + ` ON %I.%I AS RESTRICTIVE USING (%s) WITH CHECK (%s)', ` +
		quoteLiteral(schema) + `, r.relname, ` + quoteLiteral(pred) + `, ` + quoteLiteral(pred) + `);
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_policy WHERE polrelid = r.oid AND polpermissive AND polname <> '` + BoundaryAccessPolicy + `') THEN
      EXECUTE format('DROP POLICY IF EXISTS ` + BoundaryAccessPolicy + ` ON %I.%I', ` + quoteLiteral(schema) + `, r.relname);
    ELSIF NOT EXISTS (SELECT FROM pg_catalog.pg_policy WHERE polrelid = r.oid AND polname = '` + BoundaryAccessPolicy + `') THEN
      EXECUTE format('CREATE POLICY ` + BoundaryAccessPolicy + ` ON %I.%I USING (%s) WITH CHECK (%s)', ` +
		quoteLiteral(schema) + `, r.relname, ` + quoteLiteral(pred) + `, ` + quoteLiteral(pred) + `);
    END IF;
  END LOOP;
END
$seal$`, nil
}

// SealSchema runs SealSchemaSQL on db. Schema migrations run it after every
// change (see Schema.Targets); call it yourself when tables of a tenant
// schema are created by other means.
func SealSchema(ctx context.Context, db execer, schema, tenantID string) error {
	sql, err := SealSchemaSQL(schema, tenantID)
	if err != nil {
		return err
	}
	if err := execCatalog(ctx, db, sql); err != nil {
		return fmt.Errorf("tenancy: seal schema %s: %w", schema, err)
	}
	return nil
}
