package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation/postgres"
)

func TestDoctor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(2, "")
	openSchema(t, e, e.app, tenants, nil) // two healthy tenant schemas
	ensureSharedNotes(t, e)
	super := testenv.Pool(t, e.super)
	// The control schema holds a tenant_id column but no tenant data.
	mustExec(t, super, "CREATE SCHEMA tenancy", "CREATE TABLE tenancy.tenant_domains (domain text PRIMARY KEY, tenant_id text)")

	report, err := postgres.Doctor(ctx, super, postgres.DoctorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Findings) != 0 {
		t.Fatalf("healthy database has findings: %v", report.Findings)
	}
	if len(report.Info) == 0 || !strings.Contains(report.Info[0], "connected as postgres (superuser true") {
		t.Fatalf("info: %v", report.Info)
	}

	role := testenv.RandomName("tenancy_doc_")
	t.Cleanup(func() {
		mustExec(t, super, "DROP OWNED BY "+role)
		testenv.AdminExec(t, "DROP ROLE IF EXISTS "+role)
	})
	schemaA := "tenant_" + strings.ReplaceAll(tenants[0].Identifier, "-", "_")
	mustExec(t, super,
		"CREATE TABLE bad_disabled (id int, tenant_id text)",
		"CREATE TABLE bad_noforce (id int, tenant_id text)",
		"ALTER TABLE bad_noforce ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY p ON bad_noforce USING ("+postgres.TenantPredicate+") WITH CHECK ("+postgres.TenantPredicate+")",
		"CREATE TABLE bad_nocheck (id int, tenant_id text)",
		"ALTER TABLE bad_nocheck ENABLE ROW LEVEL SECURITY", "ALTER TABLE bad_nocheck FORCE ROW LEVEL SECURITY",
		"CREATE POLICY p ON bad_nocheck USING ("+postgres.TenantPredicate+")",
		"CREATE TABLE bad_notenant (id int, tenant_id text)",
		"ALTER TABLE bad_notenant ENABLE ROW LEVEL SECURITY", "ALTER TABLE bad_notenant FORCE ROW LEVEL SECURITY",
		"CREATE POLICY p ON bad_notenant USING (true) WITH CHECK (true)",
		"CREATE FUNCTION imm_tenant() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT current_setting('app.tenant_id', true) $$",
		"CREATE TABLE bad_func (id int, tenant_id text)",
		"ALTER TABLE bad_func ENABLE ROW LEVEL SECURITY", "ALTER TABLE bad_func FORCE ROW LEVEL SECURITY",
		"CREATE POLICY p ON bad_func USING (tenant_id = imm_tenant()) WITH CHECK (tenant_id = imm_tenant())",
		"CREATE VIEW v_owner AS SELECT * FROM notes",
		"CREATE VIEW v_invoker WITH (security_invoker = true) AS SELECT * FROM notes",
		"CREATE TABLE "+schemaA+".extra (id int)",
		"CREATE ROLE "+role+" NOLOGIN SUPERUSER BYPASSRLS",
		"CREATE TABLE owned_by_role (id int)",
		"ALTER TABLE owned_by_role OWNER TO "+role,
	)
	report, err = postgres.Doctor(ctx, super, postgres.DoctorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got := codes(report)
	want := []string{
		"no-policy public.bad_disabled",
		"no-with-check public.bad_nocheck",
		"policy-function-not-stable public.imm_tenant()",
		"policy-not-tenant public.bad_notenant",
		"rls-disabled public.bad_disabled",
		"rls-not-forced public.bad_disabled",
		"rls-not-forced public.bad_noforce",
		"schema-missing-table tenant_" + strings.ReplaceAll(tenants[1].Identifier, "-", "_"),
		"view-not-security-invoker public.v_owner",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("findings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	report, err = postgres.Doctor(ctx, super, postgres.DoctorConfig{Role: role})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"role-superuser " + role, "role-bypassrls " + role, "role-owns-tables " + role} {
		if !slices.Contains(codes(report), c) {
			t.Errorf("missing finding %q in %v", c, codes(report))
		}
	}
	report, err = postgres.Doctor(ctx, super, postgres.DoctorConfig{Role: role + "_missing"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(codes(report), "role-missing "+role+"_missing") {
		t.Errorf("missing role not reported: %v", codes(report))
	}
}

func codes(r *postgres.Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.Code+" "+f.Object)
	}
	return out
}
