package postgres

import (
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

// PolicyName is the name of the policy EnableRLS creates.
const PolicyName = "tenant_isolation"

// EnableRLS returns the statements that put table under row-level security:
// ENABLE and FORCE (so the owner is bound too), a policy whose USING and WITH
// CHECK are both TenantPredicate (so a row can be neither read nor written for
// another tenant), and an index led by tenant_id. The table name is quoted;
// leave it unqualified so that the search path picks the target, and one
// migration set serves shared tables and tenant schemas alike. Use it from Go
// migrations, or copy its output into SQL ones.
func EnableRLS(table string) []string {
	t := pgx.Identifier{table}.Sanitize()
	idx := pgx.Identifier{table + "_tenant_id_idx"}.Sanitize()
	return []string{
		"ALTER TABLE " + t + " ENABLE ROW LEVEL SECURITY",
		"ALTER TABLE " + t + " FORCE ROW LEVEL SECURITY",
		"CREATE POLICY " + PolicyName + " ON " + t + " USING (" + TenantPredicate + ") WITH CHECK (" + TenantPredicate + ")",
		"CREATE INDEX IF NOT EXISTS " + idx + " ON " + t + " (tenant_id)",
	}
}
