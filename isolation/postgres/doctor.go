package postgres

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
)

// DoctorConfig tells the isolation doctor what to inspect.
type DoctorConfig struct {
	// Role is the tenant role. Default DefaultRole.
	Role string
	// Prefix starts tenant schema names. Default isolation.DefaultPrefix.
	Prefix string
	// ExcludeSchemas are schemas whose tables are not tenant tables even
	// with a tenant_id column, such as the tenant store's control schema.
	// Default ["tenancy"].
	ExcludeSchemas []string
}

// Finding codes.
const (
	FindingRLSDisabled      = "rls-disabled"
	FindingRLSNotForced     = "rls-not-forced"
	FindingNoPolicy         = "no-policy"
	FindingPolicyNotTenant  = "policy-not-tenant"
	FindingNoWithCheck      = "no-with-check"
	FindingPolicyFuncVolat  = "policy-function-not-stable"
	FindingViewNotInvoker   = "view-not-security-invoker"
	FindingRoleMissing      = "role-missing"
	FindingRoleSuperuser    = "role-superuser"
	FindingRoleBypassRLS    = "role-bypassrls"
	FindingRoleOwnsTables   = "role-owns-tables"
	FindingSchemaMissingTbl = "schema-missing-table"
)

// Finding is one isolation problem found in a live database.
type Finding struct {
	// Code is one of the Finding* constants.
	Code string `json:"code"`
	// Object names the table, view, function, role or schema at fault.
	Object string `json:"object"`
	// Message says what is wrong and why it matters.
	Message string `json:"message"`
}

func (f Finding) String() string { return f.Code + " " + f.Object + ": " + f.Message }

// Report is what the doctor found.
type Report struct {
	// Findings are problems that weaken isolation; none means healthy.
	Findings []Finding `json:"findings"`
	// Info are facts worth knowing that are not problems, such as the
	// privileges of the connecting role (tenant statements do not run as it).
	Info []string `json:"info"`
}

// Doctor inspects the database db is connected to and reports what would let
// one tenant reach another's data: tenant tables (tables with a tenant_id
// column outside excluded schemas) without ENABLE and FORCE ROW LEVEL
// SECURITY, without a policy on app.tenant_id, or without WITH CHECK;
// functions used by policies that are not STABLE; views over tenant tables
// that run as their owner; a tenant role that is missing, superuser, has
// BYPASSRLS or owns tables; and tenant schemas that lack a table other
// tenant schemas have.
func Doctor(ctx context.Context, db execerQuery, cfg DoctorConfig) (*Report, error) {
	if cfg.Role == "" {
		cfg.Role = DefaultRole
	}
	if cfg.Prefix == "" {
		cfg.Prefix = isolation.DefaultPrefix
	}
	if cfg.ExcludeSchemas == nil {
		cfg.ExcludeSchemas = []string{"tenancy"}
	}
	r := &Report{Findings: []Finding{}, Info: []string{}}
	checks := []func(context.Context, execerQuery, DoctorConfig, *Report) error{
		checkTables, checkPolicyFunctions, checkViews, checkRole, checkSchemas, describeSessionRole,
	}
	for _, check := range checks {
		if err := check(ctx, db, cfg, r); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(r.Findings, func(i, j int) bool {
		if r.Findings[i].Code != r.Findings[j].Code {
			return r.Findings[i].Code < r.Findings[j].Code
		}
		return r.Findings[i].Object < r.Findings[j].Object
	})
	return r, nil
}

func (r *Report) add(code, object, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{Code: code, Object: object, Message: fmt.Sprintf(format, args...)})
}

// tenantTablesSQL selects tenant tables: ordinary or partitioned tables with a
// tenant_id column outside system and excluded schemas. $1 is the excluded
// schemas.
const tenantTablesSQL = `
SELECT c.oid FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  AND n.nspname <> ALL ($1::text[])`

func collect[T any](rows pgx.Rows, err error, scan func(pgx.Rows) (T, error)) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("doctor: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("doctor: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("doctor: %w", err)
	}
	return out, nil
}

func checkTables(ctx context.Context, db execerQuery, cfg DoctorConfig, r *Report) error {
	type tbl struct {
		name                      string
		enabled, forced           bool
		policies, tenantPolicies  int
		writePolicies, withChecks int
	}
	rows, err := db.Query(ctx, `
SELECT format('%I.%I', n.nspname, c.relname), c.relrowsecurity, c.relforcerowsecurity,
       count(p.oid),
       count(p.oid) FILTER (WHERE pg_get_expr(p.polqual, p.polrelid) LIKE '%`+TenantSetting+`%'
                              OR pg_get_expr(p.polwithcheck, p.polrelid) LIKE '%`+TenantSetting+`%'
                              OR EXISTS (SELECT FROM pg_depend d JOIN pg_proc f ON f.oid = d.refobjid
                                         WHERE d.classid = 'pg_policy'::regclass AND d.objid = p.oid
                                           AND d.refclassid = 'pg_proc'::regclass AND f.prosrc LIKE '%`+TenantSetting+`%')),
       count(p.oid) FILTER (WHERE p.polcmd IN ('*', 'a', 'w')),
       count(p.oid) FILTER (WHERE p.polcmd IN ('*', 'a', 'w') AND p.polwithcheck IS NOT NULL)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_policy p ON p.polrelid = c.oid
WHERE c.oid IN (`+tenantTablesSQL+`)
GROUP BY c.oid, n.nspname ORDER BY 1`, cfg.ExcludeSchemas)
	tables, err := collect(rows, err, func(rows pgx.Rows) (tbl, error) {
		var t tbl
		err := rows.Scan(&t.name, &t.enabled, &t.forced, &t.policies, &t.tenantPolicies, &t.writePolicies, &t.withChecks)
		return t, err
	})
	if err != nil {
		return err
	}
	for _, t := range tables {
		if !t.enabled {
			r.add(FindingRLSDisabled, t.name, "row-level security is not enabled: every tenant sees every row")
		}
		if !t.forced {
			r.add(FindingRLSNotForced, t.name, "row-level security is not forced: the table owner bypasses the policies")
		}
		switch {
		case t.policies == 0:
			r.add(FindingNoPolicy, t.name, "no policy: with row-level security enabled, nobody sees any row")
		case t.tenantPolicies == 0:
			r.add(FindingPolicyNotTenant, t.name, "no policy reads %s, so rows are not confined to the current tenant", TenantSetting)
		}
		if t.writePolicies > t.withChecks {
			r.add(FindingNoWithCheck, t.name, "a policy lacks WITH CHECK: writes are checked by USING alone, or not at all")
		}
	}
	return nil
}

func checkPolicyFunctions(ctx context.Context, db execerQuery, cfg DoctorConfig, r *Report) error {
	rows, err := db.Query(ctx, `
SELECT DISTINCT format('%I.%I(%s)', fn.nspname, f.proname, pg_get_function_identity_arguments(f.oid)), f.provolatile::text, p.polrelid::regclass::text
FROM pg_policy p
JOIN pg_depend d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_proc'::regclass
JOIN pg_proc f ON f.oid = d.refobjid
JOIN pg_namespace fn ON fn.oid = f.pronamespace
WHERE f.provolatile <> 's' AND p.polrelid IN (`+tenantTablesSQL+`)
ORDER BY 1`, cfg.ExcludeSchemas)
	funcs, err := collect(rows, err, func(rows pgx.Rows) ([3]string, error) {
		var v [3]string
		err := rows.Scan(&v[0], &v[1], &v[2])
		return v, err
	})
	if err != nil {
		return err
	}
	for _, f := range funcs {
		kind := map[string]string{"i": "IMMUTABLE", "v": "VOLATILE"}[f[1]]
		r.add(FindingPolicyFuncVolat, f[0], "used by a policy on %s but %s: an IMMUTABLE function may be folded into a cached plan with one tenant's value; mark it STABLE", f[2], kind)
	}
	return nil
}

func checkViews(ctx context.Context, db execerQuery, cfg DoctorConfig, r *Report) error {
	rows, err := db.Query(ctx, `
SELECT DISTINCT format('%I.%I', n.nspname, v.relname)
FROM pg_class v
JOIN pg_namespace n ON n.oid = v.relnamespace
JOIN pg_rewrite rw ON rw.ev_class = v.oid
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
WHERE v.relkind IN ('v', 'm') AND d.refobjid IN (`+tenantTablesSQL+`)
  AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  AND (v.relkind = 'm' OR NOT coalesce('security_invoker=true' = ANY (v.reloptions) OR 'security_invoker=on' = ANY (v.reloptions), false))
ORDER BY 1`, cfg.ExcludeSchemas)
	views, err := collect(rows, err, func(rows pgx.Rows) (string, error) {
		var s string
		return s, rows.Scan(&s)
	})
	if err != nil {
		return err
	}
	for _, v := range views {
		r.add(FindingViewNotInvoker, v, "reads tenant tables with its owner's rights; create it WITH (security_invoker = true) so policies apply to the caller")
	}
	return nil
}

func checkRole(ctx context.Context, db execerQuery, cfg DoctorConfig, r *Report) error {
	rows, err := db.Query(ctx, `
SELECT r.rolsuper, r.rolbypassrls,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relowner = r.oid AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema')
FROM pg_roles r WHERE r.rolname = $1`, cfg.Role)
	roles, err := collect(rows, err, func(rows pgx.Rows) ([3]int64, error) {
		var super, bypass bool
		var owned int64
		err := rows.Scan(&super, &bypass, &owned)
		return [3]int64{b2i(super), b2i(bypass), owned}, err
	})
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		r.add(FindingRoleMissing, cfg.Role, "the tenant role does not exist")
		return nil
	}
	if roles[0][0] == 1 {
		r.add(FindingRoleSuperuser, cfg.Role, "the tenant role is superuser: row-level security never applies to it")
	}
	if roles[0][1] == 1 {
		r.add(FindingRoleBypassRLS, cfg.Role, "the tenant role has BYPASSRLS: row-level security never applies to it")
	}
	if roles[0][2] > 0 {
		r.add(FindingRoleOwnsTables, cfg.Role, "the tenant role owns %d relations: owners bypass unforced policies and may alter or drop them", roles[0][2])
	}
	return nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func checkSchemas(ctx context.Context, db execerQuery, cfg DoctorConfig, r *Report) error {
	rows, err := db.Query(ctx, `
SELECT n.nspname, coalesce(array_agg(c.relname ORDER BY c.relname) FILTER (WHERE c.oid IS NOT NULL), '{}')
FROM pg_namespace n
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p') AND NOT c.relispartition
WHERE starts_with(n.nspname, $1)
GROUP BY n.nspname ORDER BY 1`, cfg.Prefix)
	type schema struct {
		name   string
		tables []string
	}
	schemas, err := collect(rows, err, func(rows pgx.Rows) (schema, error) {
		var s schema
		return s, rows.Scan(&s.name, &s.tables)
	})
	if err != nil {
		return err
	}
	all := map[string]bool{}
	for _, s := range schemas {
		for _, t := range s.tables {
			all[t] = true
		}
	}
	for _, s := range schemas {
		var missing []string
		for t := range all {
			if !slices.Contains(s.tables, t) {
				missing = append(missing, t)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			r.add(FindingSchemaMissingTbl, s.name, "lacks tables other tenant schemas have: %s (a migration failed or was skipped here)", strings.Join(missing, ", "))
		}
	}
	return nil
}

func describeSessionRole(ctx context.Context, db execerQuery, _ DoctorConfig, r *Report) error {
	rows, err := db.Query(ctx, `SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`)
	info, err := collect(rows, err, func(rows pgx.Rows) (string, error) {
		var user string
		var super, bypass bool
		if err := rows.Scan(&user, &super, &bypass); err != nil {
			return "", err
		}
		return fmt.Sprintf("connected as %s (superuser %v, bypassrls %v); tenant statements switch to the tenant role, so this does not weaken isolation", user, super, bypass), nil
	})
	if err != nil {
		return err
	}
	r.Info = append(r.Info, info...)
	return nil
}
