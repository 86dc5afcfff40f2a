package postgres

import (
	"context"
	"fmt"
	"regexp"
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
	// TenantColumn is the column that holds a row's tenant ID. Default
	// DefaultTenantColumn ("tenant_id").
	TenantColumn string
	// ExcludeSchemas are schemas whose tables are not tenant tables even
	// with a tenant column, such as the tenant store's control schema.
	// Default ["tenancy"].
	ExcludeSchemas []string
	// AllowPolicies names policies that may differ from the canonical
	// predicates, as "schema.table.policy" (a job queue's own policies are
	// such a case). Default: none.
	AllowPolicies []string
	// AppRole is the role the service's request connections log in as. It
	// must not be superuser, have BYPASSRLS or own tenant tables. Default:
	// the role the doctor connects as.
	AppRole string
}

// Finding codes.
const (
	FindingRLSDisabled        = "rls-disabled"
	FindingRLSNotForced       = "rls-not-forced"
	FindingNoPolicy           = "no-policy"
	FindingPolicyNotCanonical = "policy-not-canonical"
	FindingNoWithCheck        = "no-with-check"
	FindingPolicyFuncVolat    = "policy-function-not-stable"
	FindingViewNotInvoker     = "view-not-security-invoker"
	FindingSecurityDefiner    = "security-definer"
	FindingForeignKey         = "foreign-key-without-tenant"
	FindingRoleMissing        = "role-missing"
	FindingRoleSuperuser      = "role-superuser"
	FindingRoleBypassRLS      = "role-bypassrls"
	FindingRoleOwnsTables     = "role-owns-tables"
	FindingRoleTemporary      = "role-temporary"
	FindingAppRole            = "app-role-unsafe"
	FindingSchemaMissingTbl   = "schema-missing-table"
	FindingSchemaNotSealed    = "schema-not-sealed"
	FindingSchemaBoundary     = "schema-boundary-mismatch"
	FindingSchemaGrant        = "schema-grant"
	FindingPlacementUnknown   = "placement-unknown"
	FindingShardPolicy        = "citus-shard-policy"
)

// Finding is one isolation problem found in a live database.
type Finding struct {
	// Code is one of the Finding* constants.
	Code string `json:"code"`
	// Object names the table, view, function, role or schema at fault.
	Object string `json:"object"`
	// Message says what is wrong and why it matters.
	Message string `json:"message"`
	// Server names the server the finding is on, in a report over several
	// (DoctorServers); empty in a report of one.
	Server string `json:"server,omitempty"`
}

func (f Finding) String() string {
	if f.Server != "" {
		return f.Code + " " + f.Server + ":" + f.Object + ": " + f.Message
	}
	return f.Code + " " + f.Object + ": " + f.Message
}

// Report is what the doctor found.
type Report struct {
	// Findings are problems that weaken isolation; none means healthy.
	Findings []Finding `json:"findings"`
	// Info are facts worth knowing that are not problems.
	Info []string `json:"info"`
}

// Doctor inspects the database db is connected to and reports what would let
// one tenant reach another's data. Tenant tables are tables (partitions
// included: a partition read directly applies its own policies, not its
// parent's) with the tenant column outside excluded schemas, and every table
// of a tenant schema. It reports tenant tables without ENABLE and FORCE ROW
// LEVEL SECURITY or without a policy; any permissive policy that applies to
// the tenant role (directly, through a role it belongs to, or through
// PUBLIC) and is not one of the canonical predicates (TenantPredicate, or in
// a tenant schema BoundaryPredicate), unless allowed by name; INSERT
// policies without WITH CHECK; tenant schemas whose tables lack the boundary
// policies or whose boundaries name different tenants; functions used by
// policies that are not STABLE; views over tenant tables that run as their
// owner; SECURITY DEFINER functions the tenant role may call whose owner
// bypasses row-level security or owns tenant tables; foreign keys between
// tenant tables without the tenant column, or between tenant schemas;
// privileges on tenant schemas or their tables for roles other than the
// owner and the tenant role; a tenant role that is missing, superuser, has
// BYPASSRLS, owns tables or may create temporary tables; an application
// role that is superuser, has BYPASSRLS or owns tenant tables; and tenant
// schemas that lack a table other tenant schemas have.
func Doctor(ctx context.Context, db execerQuery, cfg DoctorConfig) (*Report, error) {
	if cfg.Role == "" {
		cfg.Role = DefaultRole
	}
	if cfg.Prefix == "" {
		cfg.Prefix = isolation.DefaultPrefix
	}
	if cfg.TenantColumn == "" {
		cfg.TenantColumn = DefaultTenantColumn
	}
	if cfg.ExcludeSchemas == nil {
		cfg.ExcludeSchemas = []string{"tenancy"}
	}
	d := &doctor{db: db, cfg: cfg, r: &Report{Findings: []Finding{}, Info: []string{}}}
	checks := []func(context.Context) error{
		d.checkRole, d.checkTables, d.checkPolicies, d.checkPolicyFunctions, d.checkViews,
		d.checkSecurityDefiners, d.checkForeignKeys, d.checkGrants, d.checkSchemas, d.checkAppRole,
		d.checkCitusShards,
	}
	for _, check := range checks {
		if err := check(ctx); err != nil {
			return nil, fmt.Errorf("doctor: %w", err)
		}
	}
	sort.SliceStable(d.r.Findings, func(i, j int) bool {
		a, b := d.r.Findings[i], d.r.Findings[j]
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Object < b.Object
	})
	return d.r, nil
}

type doctor struct {
	db  execerQuery
	cfg DoctorConfig
	r   *Report
	// roleExists is set by checkRole; checks that ask about the role's
	// privileges need it to exist.
	roleExists bool
}

func (d *doctor) add(code, object, format string, args ...any) {
	d.r.Findings = append(d.r.Findings, Finding{Code: code, Object: object, Message: fmt.Sprintf(format, args...)})
}

// tenantTablesCTE selects tenant tables, partitions included: tables with
// the tenant column outside system and excluded schemas, and every table of
// a tenant schema. $1 is the tenant column, $2 the excluded schemas, $3 the
// tenant schema prefix.
const tenantTablesCTE = `tt AS (
SELECT c.oid, n.nspname, c.relname, starts_with(n.nspname, $3) AS in_tenant_schema
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  AND n.nspname <> ALL ($2::text[])
  AND (starts_with(n.nspname, $3)
       OR EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = $1 AND NOT a.attisdropped)))`

func (d *doctor) query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return d.db.Query(ctx, sql, append([]any{d.cfg.TenantColumn, d.cfg.ExcludeSchemas, d.cfg.Prefix}, args...)...)
}

func (d *doctor) checkTables(ctx context.Context) error {
	rows, err := d.query(ctx, `WITH `+tenantTablesCTE+`
SELECT format('%I.%I', tt.nspname, tt.relname), c.relrowsecurity, c.relforcerowsecurity,
       EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid = tt.oid AND p.polpermissive)
FROM tt JOIN pg_catalog.pg_class c ON c.oid = tt.oid ORDER BY 1`)
	type tbl struct {
		name                     string
		enabled, forced, allowed bool
	}
	tables, err := collect(rows, err, func(rows pgx.Rows) (tbl, error) {
		var t tbl
		return t, rows.Scan(&t.name, &t.enabled, &t.forced, &t.allowed)
	})
	if err != nil {
		return err
	}
	for _, t := range tables {
		if !t.enabled {
			d.add(FindingRLSDisabled, t.name, "row-level security is not enabled: every tenant sees every row")
		}
		if !t.forced {
			d.add(FindingRLSNotForced, t.name, "row-level security is not forced: the table owner bypasses the policies")
		}
		if !t.allowed {
			d.add(FindingNoPolicy, t.name, "no permissive policy: with row-level security enabled, nobody sees any row")
		}
	}
	return nil
}

// checkPolicies checks every policy of every tenant table: permissive ones
// that apply to the tenant role must use a canonical predicate, and tenant
// schemas must carry consistent boundary policies.
func (d *doctor) checkPolicies(ctx context.Context) error {
	if !d.roleExists {
		return nil
	}
	rows, err := d.query(ctx, `WITH `+tenantTablesCTE+`
SELECT tt.nspname, tt.relname, tt.in_tenant_schema, coalesce(p.polname, ''), coalesce(p.polpermissive, true), coalesce(p.polcmd::text, ''),
       coalesce(pg_get_expr(p.polqual, p.polrelid), ''), coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''),
       coalesce(0 = ANY (p.polroles) OR EXISTS (SELECT FROM unnest(p.polroles) r WHERE r <> 0 AND pg_has_role($4, r, 'MEMBER')), false)
FROM tt LEFT JOIN pg_catalog.pg_policy p ON p.polrelid = tt.oid
ORDER BY 1, 2, 4`, d.cfg.Role)
	type policy struct {
		schema, table     string
		tenantSchema      bool
		name              string
		permissive        bool
		cmd, using, check string
		appliesToTenant   bool
	}
	policies, err := collect(rows, err, func(rows pgx.Rows) (policy, error) {
		var p policy
		return p, rows.Scan(&p.schema, &p.table, &p.tenantSchema, &p.name, &p.permissive, &p.cmd, &p.using, &p.check, &p.appliesToTenant)
	})
	if err != nil {
		return err
	}
	tenantPred := canonicalTenantPredicate(d.cfg.TenantColumn)
	type sealState struct{ restrictive bool }
	sealed := map[string]*sealState{} // tenant-schema table -> boundary policies found
	boundary := map[string][]string{} // tenant schema -> tenant IDs its boundaries name
	for _, p := range policies {
		tbl := quoteIdent(p.schema) + "." + quoteIdent(p.table)
		if p.tenantSchema && sealed[tbl] == nil {
			sealed[tbl] = &sealState{}
		}
		if p.name == "" {
			continue
		}
		obj := tbl + "." + quoteIdent(p.name)
		if p.tenantSchema && (p.name == BoundaryPolicy || p.name == BoundaryAccessPolicy) {
			idU, okU := boundaryTenant(p.using)
			idC, okC := boundaryTenant(p.check)
			switch {
			case !okU || !okC || idU != idC || p.cmd != "*":
				d.add(FindingSchemaNotSealed, obj, "the boundary policy is not the canonical one (FOR ALL, USING and WITH CHECK both %s)", "(SELECT current_setting('app.tenant_id', true)) = '<tenant ID>'")
			case p.name == BoundaryPolicy && p.permissive:
				d.add(FindingSchemaNotSealed, obj, "the boundary policy must be RESTRICTIVE, or other permissive policies widen it")
			default:
				if p.name == BoundaryPolicy {
					sealed[tbl].restrictive = true
				}
				if !slices.Contains(boundary[p.schema], idU) {
					boundary[p.schema] = append(boundary[p.schema], idU)
				}
			}
			continue
		}
		if !p.permissive || !p.appliesToTenant || d.allowed(p.schema, p.table, p.name) {
			continue
		}
		canonical := func(expr string) bool {
			if tenantPred.MatchString(expr) {
				return true
			}
			_, ok := boundaryTenant(expr)
			return ok && p.tenantSchema
		}
		switch {
		case p.cmd == "a" && p.check == "":
			d.add(FindingNoWithCheck, obj, "an INSERT policy without WITH CHECK lets the tenant role insert rows for any tenant")
		case p.cmd != "a" && !canonical(p.using):
			d.add(FindingPolicyNotCanonical, obj, "USING (%s) applies to the tenant role and is not the tenant predicate %s: permissive policies are OR'ed, so it widens what every tenant may read", p.using, TenantPredicate)
		case p.check != "" && !canonical(p.check):
			d.add(FindingPolicyNotCanonical, obj, "WITH CHECK (%s) applies to the tenant role and is not the tenant predicate %s: it lets a tenant write rows another tenant reads", p.check, TenantPredicate)
		}
	}
	for tbl, s := range sealed {
		if !s.restrictive {
			d.add(FindingSchemaNotSealed, tbl, "a table in a tenant schema lacks the restrictive boundary policy %s: a statement in another tenant's scope that names it may read or write it (run the schema's migrations, or postgres.SealSchema)", BoundaryPolicy)
		}
	}
	owner := map[string]string{}
	for schema, ids := range boundary {
		if len(ids) > 1 {
			d.add(FindingSchemaBoundary, quoteIdent(schema), "the boundary policies of one schema name different tenants: %s", strings.Join(ids, ", "))
		}
		for _, id := range ids {
			if other, ok := owner[id]; ok {
				a, b := other, schema
				if a > b {
					a, b = b, a
				}
				d.add(FindingSchemaBoundary, quoteIdent(b), "schemas %s and %s both admit tenant %s", a, b, id)
			}
			owner[id] = schema
		}
	}
	return nil
}

func (d *doctor) allowed(schema, table, policy string) bool {
	return slices.Contains(d.cfg.AllowPolicies, schema+"."+table+"."+policy)
}

// canonicalTenantPredicate matches TenantPredicate as pg_get_expr prints it,
// with a cast of the setting to the column's type where it is not text.
func canonicalTenantPredicate(col string) *regexp.Regexp {
	c := regexp.QuoteMeta(col)
	if !validRoleName(col) {
		c = regexp.QuoteMeta(pgx.Identifier{col}.Sanitize())
	}
	return regexp.MustCompile(`^\(` + c + ` = (NULLIF\(current_setting\('app\.tenant_id'::text, true\), ''::text\)|\(NULLIF\(current_setting\('app\.tenant_id'::text, true\), ''::text\)\)::(uuid|bigint|integer))\)$`)
}

var boundaryPredicate = regexp.MustCompile(`^\((?:\( SELECT current_setting\('app\.tenant_id'::text, true\) AS current_setting\)|current_setting\('app\.tenant_id'::text, true\)) = '([A-Za-z0-9_-]+)'::text\)$`)

// boundaryTenant returns the tenant ID of a boundary predicate as pg_get_expr
// prints it.
func boundaryTenant(expr string) (string, bool) {
	m := boundaryPredicate.FindStringSubmatch(expr)
	if m == nil {
		return "", false
	}
	return m[1], true
}

func (d *doctor) checkPolicyFunctions(ctx context.Context) error {
	rows, err := d.query(ctx, `WITH `+tenantTablesCTE+`
SELECT DISTINCT format('%I.%I(%s)', fn.nspname, f.proname, pg_get_function_identity_arguments(f.oid)), f.provolatile::text, p.polrelid::regclass::text
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_proc'::regclass
JOIN pg_catalog.pg_proc f ON f.oid = d.refobjid
JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace
WHERE f.provolatile <> 's' AND p.polrelid IN (SELECT oid FROM tt)
ORDER BY 1`)
	funcs, err := collect(rows, err, func(rows pgx.Rows) ([3]string, error) {
		var v [3]string
		return v, rows.Scan(&v[0], &v[1], &v[2])
	})
	if err != nil {
		return err
	}
	for _, f := range funcs {
		kind := map[string]string{"i": "IMMUTABLE", "v": "VOLATILE"}[f[1]]
		d.add(FindingPolicyFuncVolat, f[0], "used by a policy on %s but %s: an IMMUTABLE function may be folded into a cached plan with one tenant's value; mark it STABLE", f[2], kind)
	}
	return nil
}

func (d *doctor) checkViews(ctx context.Context) error {
	rows, err := d.query(ctx, `WITH `+tenantTablesCTE+`
SELECT DISTINCT format('%I.%I', n.nspname, v.relname)
FROM pg_catalog.pg_class v
JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = v.oid
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
WHERE v.relkind IN ('v', 'm') AND d.refobjid IN (SELECT oid FROM tt)
  AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  AND (v.relkind = 'm' OR NOT coalesce('security_invoker=true' = ANY (v.reloptions) OR 'security_invoker=on' = ANY (v.reloptions), false))
ORDER BY 1`)
	views, err := collect(rows, err, scanString)
	if err != nil {
		return err
	}
	for _, v := range views {
		d.add(FindingViewNotInvoker, v, "reads tenant tables with its owner's rights; create it WITH (security_invoker = true) so policies apply to the caller")
	}
	return nil
}

// checkSecurityDefiners reports SECURITY DEFINER functions outside
// extensions that the tenant role may execute and whose owner bypasses
// row-level security or owns tenant tables: calling one runs as that owner.
func (d *doctor) checkSecurityDefiners(ctx context.Context) error {
	if !d.roleExists {
		return nil
	}
	rows, err := d.query(ctx, `WITH `+tenantTablesCTE+`
SELECT format('%I.%I(%s)', n.nspname, f.proname, pg_get_function_identity_arguments(f.oid)), r.rolname,
       CASE WHEN r.rolsuper THEN 'is superuser' WHEN r.rolbypassrls THEN 'has BYPASSRLS' ELSE 'owns tenant tables' END
FROM pg_catalog.pg_proc f
JOIN pg_catalog.pg_namespace n ON n.oid = f.pronamespace
JOIN pg_catalog.pg_roles r ON r.oid = f.proowner
WHERE f.prosecdef
  AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_proc'::regclass AND e.objid = f.oid AND e.deptype = 'e')
  AND has_function_privilege($4, f.oid, 'EXECUTE')
  AND (r.rolsuper OR r.rolbypassrls OR EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid IN (SELECT oid FROM tt) AND c.relowner = f.proowner))
ORDER BY 1`, d.cfg.Role)
	funcs, err := collect(rows, err, func(rows pgx.Rows) ([3]string, error) {
		var v [3]string
		return v, rows.Scan(&v[0], &v[1], &v[2])
	})
	if err != nil {
		return err
	}
	for _, f := range funcs {
		d.add(FindingSecurityDefiner, f[0], "SECURITY DEFINER, executable by the tenant role, and its owner %s %s: a call runs with rights that skip row-level security; revoke EXECUTE from PUBLIC and %s, or make it SECURITY INVOKER", f[1], f[2], d.cfg.Role)
	}
	return nil
}

// checkForeignKeys reports foreign keys between tenant tables without the
// tenant column, and foreign keys from one tenant schema into another.
func (d *doctor) checkForeignKeys(ctx context.Context) error {
	cat := catalog{col: d.cfg.TenantColumn, exclude: d.cfg.ExcludeSchemas}
	keys, err := cat.looseKeys(ctx, d.db)
	if err != nil {
		return err
	}
	for _, k := range keys {
		d.add(FindingForeignKey, k, "the key leaves out %s: it is checked without row-level security, so a tenant learns which IDs exist in other tenants, may attach its rows to theirs, and a purge cascades into them; make it (%s, ...) REFERENCES (%s, ...)", d.cfg.TenantColumn, d.cfg.TenantColumn, d.cfg.TenantColumn)
	}
	rows, err := d.db.Query(ctx, `
SELECT format('%s on %s references %s', quote_ident(f.conname), f.conrelid::regclass, f.confrelid::regclass)
FROM pg_catalog.pg_constraint f
JOIN pg_catalog.pg_class src ON src.oid = f.conrelid JOIN pg_catalog.pg_namespace sn ON sn.oid = src.relnamespace
JOIN pg_catalog.pg_class dst ON dst.oid = f.confrelid JOIN pg_catalog.pg_namespace dn ON dn.oid = dst.relnamespace
WHERE f.contype = 'f' AND sn.oid <> dn.oid AND (starts_with(sn.nspname, $1) OR starts_with(dn.nspname, $1))
ORDER BY 1`, d.cfg.Prefix)
	cross, err := collect(rows, err, scanString)
	if err != nil {
		return err
	}
	for _, k := range cross {
		d.add(FindingForeignKey, k, "the key crosses a tenant schema's boundary: it is checked without row-level security, and dropping either schema drops it")
	}
	return nil
}

// checkGrants reports privileges on tenant schemas and their tables held by
// roles other than the object's owner and the tenant role (PUBLIC
// included).
func (d *doctor) checkGrants(ctx context.Context) error {
	rows, err := d.db.Query(ctx, `
WITH objs AS (
  SELECT format('%I', n.nspname) AS obj, n.nspowner AS owner, n.nspacl AS acl
  FROM pg_catalog.pg_namespace n WHERE starts_with(n.nspname, $1)
  UNION ALL
  SELECT format('%I.%I', n.nspname, c.relname), c.relowner, c.relacl
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE starts_with(n.nspname, $1) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
)
SELECT o.obj, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
       string_agg(DISTINCT a.privilege_type, ', ' ORDER BY a.privilege_type)
FROM objs o, aclexplode(o.acl) a
WHERE a.grantee <> o.owner AND a.grantee NOT IN (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $2)
GROUP BY 1, 2 ORDER BY 1, 2`, d.cfg.Prefix, d.cfg.Role)
	grants, err := collect(rows, err, func(rows pgx.Rows) ([3]string, error) {
		var v [3]string
		return v, rows.Scan(&v[0], &v[1], &v[2])
	})
	if err != nil {
		return err
	}
	for _, g := range grants {
		d.add(FindingSchemaGrant, g[0], "%s holds %s on a tenant schema's object: only its owner and the tenant role should", g[1], g[2])
	}
	return nil
}

func (d *doctor) checkRole(ctx context.Context) error {
	rows, err := d.db.Query(ctx, `
SELECT r.rolsuper, r.rolbypassrls,
       (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relowner = r.oid AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'),
       has_database_privilege(r.oid, current_database(), 'TEMPORARY')
FROM pg_catalog.pg_roles r WHERE r.rolname = $1`, d.cfg.Role)
	type role struct {
		super, bypass, temp bool
		owned               int64
	}
	roles, err := collect(rows, err, func(rows pgx.Rows) (role, error) {
		var r role
		return r, rows.Scan(&r.super, &r.bypass, &r.owned, &r.temp)
	})
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		d.add(FindingRoleMissing, d.cfg.Role, "the tenant role does not exist")
		return nil
	}
	d.roleExists = true
	r := roles[0]
	if r.super {
		d.add(FindingRoleSuperuser, d.cfg.Role, "the tenant role is superuser: row-level security never applies to it")
	}
	if r.bypass {
		d.add(FindingRoleBypassRLS, d.cfg.Role, "the tenant role has BYPASSRLS: row-level security never applies to it")
	}
	if r.owned > 0 {
		d.add(FindingRoleOwnsTables, d.cfg.Role, "the tenant role owns %d relations: owners bypass unforced policies and may alter or drop them", r.owned)
	}
	if r.temp {
		d.add(FindingRoleTemporary, d.cfg.Role, "the tenant role may create temporary tables here: one a tenant statement creates stays on the pooled connection for the next tenant; REVOKE TEMPORARY ON DATABASE ... FROM PUBLIC, %s", d.cfg.Role)
	}
	return nil
}

// checkAppRole reports an application role that skips row-level security.
// Tenant statements switch to the tenant role, which protects against an
// application that forgets a filter; it does not protect against SQL
// injection, which can switch back to the connecting role (a superuser may
// set any role), so the role requests connect as must be as weak as the
// tenant role.
func (d *doctor) checkAppRole(ctx context.Context) error {
	rows, err := d.query(ctx, `WITH `+tenantTablesCTE+`
SELECT r.rolname, r.rolsuper, r.rolbypassrls,
       (SELECT count(*) FROM pg_catalog.pg_class c WHERE c.oid IN (SELECT oid FROM tt) AND c.relowner = r.oid)
FROM pg_catalog.pg_roles r WHERE r.rolname = coalesce(nullif($4, ''), session_user)`, d.cfg.AppRole)
	type role struct {
		name          string
		super, bypass bool
		owned         int64
	}
	roles, err := collect(rows, err, func(rows pgx.Rows) (role, error) {
		var r role
		return r, rows.Scan(&r.name, &r.super, &r.bypass, &r.owned)
	})
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		d.add(FindingAppRole, d.cfg.AppRole, "the application role does not exist")
		return nil
	}
	r := roles[0]
	var why []string
	if r.super {
		why = append(why, "is superuser")
	}
	if r.bypass {
		why = append(why, "has BYPASSRLS")
	}
	if r.owned > 0 {
		why = append(why, fmt.Sprintf("owns %d tenant tables", r.owned))
	}
	d.r.Info = append(d.r.Info, fmt.Sprintf("application role %s (superuser %v, bypassrls %v, owns %d tenant tables); tenant statements switch to %s", r.name, r.super, r.bypass, r.owned, d.cfg.Role))
	if len(why) > 0 {
		d.add(FindingAppRole, r.name, "requests connect as a role that %s: the switch to the tenant role guards against an application that forgets a filter, not against SQL injection, which can set its own tenant or switch back to this role; connect requests as a role that owns nothing and has neither (set DoctorConfig.AppRole when the doctor runs as another role)", strings.Join(why, " and "))
	}
	return nil
}

func (d *doctor) checkSchemas(ctx context.Context) error {
	rows, err := d.db.Query(ctx, `
SELECT n.nspname, coalesce(array_agg(c.relname ORDER BY c.relname) FILTER (WHERE c.oid IS NOT NULL), '{}')
FROM pg_catalog.pg_namespace n
LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p') AND NOT c.relispartition
WHERE starts_with(n.nspname, $1)
GROUP BY n.nspname ORDER BY 1`, d.cfg.Prefix)
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
			d.add(FindingSchemaMissingTbl, s.name, "lacks tables other tenant schemas have: %s (a migration failed or was skipped here)", strings.Join(missing, ", "))
		}
	}
	return nil
}

func collect[T any](rows pgx.Rows, err error, scan func(pgx.Rows) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanString(rows pgx.Rows) (string, error) {
	var s string
	return s, rows.Scan(&s)
}
