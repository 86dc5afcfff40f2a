package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
)

func codes(r *postgres.Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.Code+" "+f.Object)
	}
	return out
}

// TestDoctor plants every misconfiguration the doctor knows, one object
// each, and expects exactly the findings they cause; a healthy database has
// none.
func TestDoctor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(2)
	openSchema(t, e, e.app, tenants, nil) // two healthy, sealed tenant schemas
	ensureSharedNotes(t, e)
	super := testenv.Pool(t, e.super)
	db := super.Config().ConnConfig.Database
	// The control schema holds a tenant_id column but no tenant data.
	mustExec(t, super, "CREATE SCHEMA tenancy", "CREATE TABLE tenancy.tenant_domains (domain text PRIMARY KEY, tenant_id text)")
	healthy := postgres.DoctorConfig{AppRole: testenv.AppRole}
	report, err := postgres.Doctor(ctx, super, healthy)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Findings) != 0 {
		t.Fatalf("healthy database has findings: %v", report.Findings)
	}
	if len(report.Info) == 0 || !strings.Contains(strings.Join(report.Info, "\n"), "application role tenancy_app (superuser false, bypassrls false") {
		t.Fatalf("info: %v", report.Info)
	}

	schemaA := "tenant_" + strings.ReplaceAll(tenants[0].Identifier, "-", "_")
	schemaB := "tenant_" + strings.ReplaceAll(tenants[1].Identifier, "-", "_")
	tp := postgres.TenantPredicate
	rls := func(table string) []string {
		return []string{"ALTER TABLE " + table + " ENABLE ROW LEVEL SECURITY", "ALTER TABLE " + table + " FORCE ROW LEVEL SECURITY"}
	}
	var plant []string
	add := func(stmts ...string) { plant = append(plant, stmts...) }
	add("CREATE TABLE bad_disabled (id int, tenant_id text)")
	add("CREATE TABLE bad_noforce (id int, tenant_id text)", "ALTER TABLE bad_noforce ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY p ON bad_noforce USING ("+tp+") WITH CHECK ("+tp+")")
	// A second permissive policy open to everyone.
	add("CREATE TABLE bad_open (id int, tenant_id text)")
	add(rls("bad_open")...)
	add("CREATE POLICY p ON bad_open USING ("+tp+") WITH CHECK ("+tp+")", "CREATE POLICY open ON bad_open FOR SELECT USING (true)")
	// A policy that names the setting but does not restrict by it.
	add("CREATE TABLE bad_or (id int, tenant_id text)")
	add(rls("bad_or")...)
	add("CREATE POLICY p ON bad_or USING (tenant_id = current_setting('app.tenant_id', true) OR id > 0)")
	// A tenant policy for another role beside one open to PUBLIC; and a
	// restrictive policy, which can only narrow, is fine.
	add("CREATE TABLE bad_roles (id int, tenant_id text)")
	add(rls("bad_roles")...)
	add("CREATE POLICY mine ON bad_roles TO "+testenv.AppRole+" USING ("+tp+")", "CREATE POLICY all_rows ON bad_roles USING (id > 0)",
		"CREATE POLICY narrow ON bad_roles AS RESTRICTIVE USING (id < 100)")
	// Inserts checked by nothing.
	add("CREATE TABLE bad_check (id int, tenant_id text)")
	add(rls("bad_check")...)
	add("CREATE POLICY r ON bad_check FOR SELECT USING ("+tp+")", "CREATE POLICY w ON bad_check FOR INSERT WITH CHECK (true)")
	add("CREATE TABLE bad_nocheck (id int, tenant_id text)")
	add(rls("bad_nocheck")...)
	add("CREATE POLICY r ON bad_nocheck FOR SELECT USING ("+tp+")", "CREATE POLICY w ON bad_nocheck FOR INSERT")
	// An allowed policy is not reported.
	add("CREATE TABLE allowed (id int, tenant_id text)")
	add(rls("allowed")...)
	add("CREATE POLICY queue ON allowed USING (id > 0)")
	// A policy function that is not STABLE.
	add("CREATE FUNCTION imm_tenant() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT current_setting('app.tenant_id', true) $$",
		"CREATE TABLE bad_func (id int, tenant_id text)")
	add(rls("bad_func")...)
	add("CREATE POLICY p ON bad_func USING (tenant_id = imm_tenant()) WITH CHECK (tenant_id = imm_tenant())")
	// Views.
	add("CREATE VIEW v_owner AS SELECT * FROM notes", "CREATE VIEW v_invoker WITH (security_invoker = true) AS SELECT * FROM notes")
	// A SECURITY DEFINER function of a superuser, executable by PUBLIC.
	add("CREATE FUNCTION all_notes() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(*) FROM notes $$")
	// A partition without row-level security under a protected parent.
	add("CREATE TABLE parted (id int, tenant_id text) PARTITION BY LIST (tenant_id)")
	add(rls("parted")...)
	add("CREATE POLICY p ON parted USING ("+tp+") WITH CHECK ("+tp+")", "CREATE TABLE parted_x PARTITION OF parted FOR VALUES IN ('x')")
	// A foreign key without the tenant column.
	add("CREATE TABLE fk_parent (id int PRIMARY KEY, tenant_id text)")
	add(rls("fk_parent")...)
	add("CREATE POLICY p ON fk_parent USING (" + tp + ") WITH CHECK (" + tp + ")")
	add("CREATE TABLE fk_child (id int, tenant_id text, parent_id int REFERENCES fk_parent (id))")
	add(rls("fk_child")...)
	add("CREATE POLICY p ON fk_child USING (" + tp + ") WITH CHECK (" + tp + ")")
	// A table of tenant schema A that its migration did not seal, a
	// foreign key from it into schema B, a grant on A to another role, and
	// a table of B sealed for A's tenant.
	add("CREATE TABLE "+schemaA+".unsealed (id int PRIMARY KEY)",
		"CREATE TABLE "+schemaA+".crossing (id int, note_tenant text, note_id text, FOREIGN KEY (note_tenant, note_id) REFERENCES "+schemaB+".notes (tenant_id, id))",
		"GRANT USAGE ON SCHEMA "+schemaA+" TO "+testenv.AppRole,
		"CREATE TABLE "+schemaB+".crossing (id int, note_tenant text, note_id text)")
	// The tenant role may create temporary tables.
	add("GRANT TEMPORARY ON DATABASE " + pgx.Identifier{db}.Sanitize() + " TO PUBLIC")
	mustExec(t, super, plant...)
	if err := postgres.SealSchema(ctx, super, schemaA, tenants[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := postgres.SealSchema(ctx, super, schemaB, tenants[0].ID); err != nil { // the wrong tenant
		t.Fatal(err)
	}
	mustExec(t, super, "DROP POLICY "+postgres.BoundaryPolicy+" ON "+schemaA+".unsealed")

	cfg := healthy
	cfg.AllowPolicies = []string{"public.allowed.queue"}
	report, err = postgres.Doctor(ctx, super, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, b := schemaA, schemaB
	want := []string{
		"foreign-key-without-tenant crossing_note_tenant_note_id_fkey on " + a + ".crossing references " + b + ".notes",
		"foreign-key-without-tenant fk_child_parent_id_fkey on fk_child references fk_parent",
		"no-policy public.bad_disabled",
		"no-policy public.parted_x",
		"no-with-check public.bad_nocheck.w",
		"policy-function-not-stable public.imm_tenant()",
		"policy-not-canonical public.bad_check.w",
		"policy-not-canonical public.bad_func.p",
		"policy-not-canonical public.bad_open.open",
		"policy-not-canonical public.bad_or.p",
		"policy-not-canonical public.bad_roles.all_rows",
		"rls-disabled public.bad_disabled",
		"rls-disabled public.parted_x",
		"rls-not-forced public.bad_disabled",
		"rls-not-forced public.bad_noforce",
		"rls-not-forced public.parted_x",
		"role-temporary tenancy_tenant",
		"schema-boundary-mismatch " + b, // names two tenants
		"schema-boundary-mismatch " + b, // admits A's tenant, as A does
		"schema-grant " + a,
		"schema-missing-table " + b,
		"schema-not-sealed " + a + ".unsealed",
		"security-definer public.all_notes()",
		"view-not-security-invoker public.v_owner",
	}
	slices.Sort(want)
	if got := codes(report); !slices.Equal(got, want) {
		t.Fatalf("findings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// The application role: a superuser or a table owner is reported.
	for _, role := range []string{"", testenv.OwnerRole} {
		report, err := postgres.Doctor(ctx, super, postgres.DoctorConfig{AppRole: role})
		if err != nil {
			t.Fatal(err)
		}
		who := role
		if who == "" {
			who = "postgres"
		}
		if !slices.Contains(codes(report), "app-role-unsafe "+who) {
			t.Errorf("app role %q not reported: %v", who, codes(report))
		}
	}

	role := testenv.RandomName("tenancy_doc_")
	t.Cleanup(func() {
		mustExec(t, super, "DROP OWNED BY "+role)
		testenv.AdminExec(t, "DROP ROLE IF EXISTS "+role)
	})
	mustExec(t, super, "CREATE ROLE "+role+" NOLOGIN SUPERUSER BYPASSRLS", "CREATE TABLE owned_by_role (id int)", "ALTER TABLE owned_by_role OWNER TO "+role)
	report, err = postgres.Doctor(ctx, super, postgres.DoctorConfig{Role: role, AppRole: testenv.AppRole})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"role-superuser " + role, "role-bypassrls " + role, "role-owns-tables " + role} {
		if !slices.Contains(codes(report), c) {
			t.Errorf("missing finding %q in %v", c, codes(report))
		}
	}
	report, err = postgres.Doctor(ctx, super, postgres.DoctorConfig{Role: role + "_missing", AppRole: testenv.AppRole})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(codes(report), "role-missing "+role+"_missing") {
		t.Errorf("missing role not reported: %v", codes(report))
	}
}

// TestDoctorTenantColumn: the doctor reads the configured tenant column.
func TestDoctorTenantColumn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	super := testenv.Pool(t, e.super)
	ddl := postgres.DDL{TenantColumn: "org_id"}
	mustExec(t, super, append([]string{"CREATE TABLE orgs_ok (id int, " + ddl.Column() + ")"}, ddl.EnableRLS("orgs_ok")...)...)
	mustExec(t, super, "CREATE TABLE orgs_open (id int, org_id text)")
	cfg := postgres.DoctorConfig{TenantColumn: "org_id", AppRole: testenv.AppRole}
	report, err := postgres.Doctor(ctx, super, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"no-policy public.orgs_open", "rls-disabled public.orgs_open", "rls-not-forced public.orgs_open"}
	if got := codes(report); !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
}
