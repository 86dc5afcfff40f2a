package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/jackc/pgx/v5"
)

// The tests of postgres.SetupSQL, PendingSetup and Setup live here, beside
// the setup command that uses them.

func TestSetupSQL(t *testing.T) {
	t.Parallel()
	got, err := postgres.SetupSQL(postgres.SetupConfig{Database: "notes", AppRole: "app", AppPassword: "it's", OwnerRole: "Owner"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`CREATE ROLE "Owner" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;`,
		`CREATE ROLE app LOGIN PASSWORD 'it''s' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;`,
		`CREATE ROLE tenancy_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;`,
		`CREATE DATABASE notes OWNER "Owner";`,
		`REVOKE TEMPORARY ON DATABASE notes FROM PUBLIC;`,
		`GRANT tenancy_tenant TO app, "Owner";`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("SetupSQL:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, bad := range []postgres.SetupConfig{
		{AppRole: "app", OwnerRole: "owner"},
		{Database: "d", AppRole: "same", OwnerRole: "same"},
		{Database: "d", AppRole: "app", OwnerRole: "owner", TenantRole: "Bad-Role"},
		{Database: "d", AppRole: "app", OwnerRole: "owner", TenantRole: "app"},
		{Database: "d", OwnerRole: "owner"},
	} {
		if _, err := postgres.SetupSQL(bad); err == nil {
			t.Errorf("SetupSQL(%+v) accepted", bad)
		}
	}
}

// setupNames is a SetupConfig of names no other test uses, dropped when t
// ends.
func setupNames(t *testing.T) postgres.SetupConfig {
	t.Helper()
	pool := testenv.Admin(t)
	suffix := strings.TrimPrefix(testenv.RandomName("x"), "x")
	cfg := postgres.SetupConfig{
		Database:   "setup_" + suffix,
		AppRole:    "setup_app_" + suffix,
		OwnerRole:  "setup_owner_" + suffix,
		TenantRole: "setup_tenant_" + suffix,
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, s := range []string{
			"DROP DATABASE IF EXISTS " + cfg.Database + " WITH (FORCE)",
			"DROP ROLE IF EXISTS " + cfg.AppRole + ", " + cfg.OwnerRole + ", " + cfg.TenantRole,
		} {
			if _, err := pool.Exec(ctx, s); err != nil {
				t.Logf("%s: %v", s, err)
			}
		}
	})
	return cfg
}

// TestSetupOnFreshServer runs SetupSQL's statements as a superuser, then
// starts providers as the owner and as the application role, serves two
// tenants, and asks the doctor: no findings.
func TestSetupOnFreshServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	super := testenv.Admin(t)
	cfg := setupNames(t)
	sql, err := postgres.SetupSQL(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := postgres.PendingSetup(ctx, super, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pending, sql) {
		t.Errorf("PendingSetup on a server without any of it:\n%s\nwant SetupSQL:\n%s", strings.Join(pending, "\n"), strings.Join(sql, "\n"))
	}
	for _, s := range sql {
		if _, err := super.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if pending, err := postgres.PendingSetup(ctx, super, cfg); err != nil || len(pending) != 0 {
		t.Fatalf("PendingSetup after SetupSQL = %q, %v", pending, err)
	}
	if ran, err := postgres.Setup(ctx, super, cfg); err != nil || len(ran) != 0 {
		t.Fatalf("Setup on a set-up server ran %q, %v", ran, err)
	}
	checkSetUp(t, cfg)
}

// checkSetUp starts providers as cfg's owner and application role: neither
// needs anything more, tenants are kept apart, and the doctor finds
// nothing.
func checkSetUp(t *testing.T, cfg postgres.SetupConfig) {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.WithDatabase(testenv.DatabaseURL(), cfg.Database)
	ownerPool := testenv.Pool(t, testenv.WithUser(dsn, cfg.OwnerRole))
	appPool := testenv.Pool(t, testenv.WithUser(dsn, cfg.AppRole))
	pcfg := postgres.Config{Role: cfg.TenantRole}
	if _, err := postgres.NewRLS(ctx, ownerPool, pcfg); err != nil {
		t.Fatalf("RLS provider as the owner: %v", err)
	}
	// The owner's migration: a tenant table, granted to the tenant role.
	stmts := append([]string{"CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, " + postgres.TenantIDColumn + ", title text NOT NULL)"},
		postgres.EnableRLS("notes")...)
	for _, s := range stmts {
		if _, err := ownerPool.Exec(ctx, s); err != nil {
			t.Fatalf("as the owner: %s: %v", s, err)
		}
	}
	if err := postgres.GrantSchema(ctx, ownerPool, "public", cfg.TenantRole); err != nil {
		t.Fatal(err)
	}
	app, err := postgres.NewRLS(ctx, appPool, pcfg)
	if err != nil {
		t.Fatalf("RLS provider as the application role: %v", err)
	}
	acme := &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Status: tenancy.StatusActive}
	globex := &tenancy.Tenant{ID: "t-globex", Identifier: "globex", Status: tenancy.StatusActive}
	if _, err := app.Exec(ctx, acme, "INSERT INTO notes (title) VALUES ('hello')"); err != nil {
		t.Fatalf("insert as the application role: %v", err)
	}
	for tn, want := range map[*tenancy.Tenant]int{acme: 1, globex: 0} {
		var n int
		if err := app.QueryRow(ctx, tn, "SELECT count(*) FROM notes").Scan(&n); err != nil || n != want {
			t.Errorf("%s sees %d notes (%v), want %d", tn.Identifier, n, err, want)
		}
	}
	report, err := postgres.Doctor(ctx, ownerPool, postgres.DoctorConfig{Role: cfg.TenantRole, AppRole: cfg.AppRole})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Findings) != 0 {
		t.Errorf("doctor findings after setup: %+v", report.Findings)
	}
}

// TestSetupCompletesAPartialServer: Setup runs only what is missing, and
// takes LOGIN and TEMPORARY from a tenant role that had them.
func TestSetupCompletesAPartialServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	super := testenv.Admin(t)
	cfg := setupNames(t)
	for _, s := range []string{
		"CREATE ROLE " + cfg.AppRole + " LOGIN",
		"CREATE ROLE " + cfg.TenantRole + " LOGIN",
		"CREATE ROLE " + cfg.OwnerRole + " LOGIN",
		"CREATE DATABASE " + cfg.Database + " OWNER " + cfg.OwnerRole,
		"GRANT " + cfg.TenantRole + " TO " + cfg.OwnerRole,
		"GRANT TEMPORARY ON DATABASE " + cfg.Database + " TO " + cfg.TenantRole,
	} {
		if _, err := super.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	ran, err := postgres.Setup(ctx, super, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ALTER ROLE " + cfg.TenantRole + " NOLOGIN NOSUPERUSER NOBYPASSRLS;",
		"REVOKE TEMPORARY ON DATABASE " + cfg.Database + " FROM PUBLIC, " + cfg.TenantRole + ";",
		"GRANT " + cfg.TenantRole + " TO " + cfg.AppRole + ";",
	}
	if !slices.Equal(ran, want) {
		t.Errorf("Setup ran:\n%s\nwant:\n%s", strings.Join(ran, "\n"), strings.Join(want, "\n"))
	}
	checkSetUp(t, cfg)
}

func setupHarness(t *testing.T, cfg postgres.SetupConfig) *harness {
	t.Helper()
	h := storeHarness(t, memstore.New(), true)
	h.setup = func(admin.Connect) (postgres.SetupConfig, error) { return cfg, nil }
	return h
}

func TestSetupCommand(t *testing.T) {
	t.Parallel()
	cfg := setupNames(t)
	cfg.AppPassword = "app-secret"
	h := setupHarness(t, cfg)

	r := h.run("setup")
	r.wantOK(t)
	sql, _ := postgres.SetupSQL(cfg)
	if want := "-- Run as a PostgreSQL superuser, on a server without these roles and database.\n" + strings.Join(sql, "\n") + "\n"; r.stdout != want {
		t.Errorf("setup printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	r = h.run("setup", "--json")
	r.wantOK(t)
	var out struct {
		SQL     []string `json:"sql"`
		Applied bool     `json:"applied"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || !slices.Equal(out.SQL, sql) || out.Applied {
		t.Errorf("setup --json = %q, %v", r.stdout, err)
	}
	h.run("setup", "--apply").wantError(t, admin.ExitUsage, "setup: --apply needs --admin-url")
	h.run("setup", "--apply", "--admin-url", "mysql://root@x/y").wantError(t, admin.ExitUsage, "setup: --admin-url must be a postgres:// URL")

	r = h.run("setup", "--apply", "--admin-url", testenv.DatabaseURL())
	r.wantOK(t)
	if !strings.Contains(r.stdout, "CREATE ROLE "+cfg.AppRole+" LOGIN PASSWORD '***' NOSUPERUSER") || strings.Contains(r.stdout, "app-secret") ||
		!strings.HasSuffix(r.stdout, "set up "+cfg.Database+": 6 statements run\n") {
		t.Errorf("setup --apply printed:\n%s", r.stdout)
	}
	h.env["ADMIN_DATABASE_URL"] = testenv.DatabaseURL()
	r = h.run("setup", "--apply")
	r.wantOK(t)
	if r.stdout != "nothing to do: "+cfg.Database+" and its roles are set up\n" {
		t.Errorf("second setup --apply printed %q", r.stdout)
	}
	if h.opened != 0 {
		t.Errorf("setup opened the application's environment")
	}
	// The password printed by setup is the one the role got.
	conn, err := pgx.Connect(context.Background(), testenv.WithDatabase(testenv.DatabaseURL(), cfg.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var hasPassword bool
	if err := conn.QueryRow(context.Background(), "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = $1", cfg.AppRole).Scan(&hasPassword); err != nil || !hasPassword {
		t.Errorf("the application role has no password: %v", err)
	}

	noSetup := storeHarness(t, memstore.New(), true)
	noSetup.run("setup").wantError(t, admin.ExitFailure, "setup: this binary does not know its database roles")
	bad := storeHarness(t, memstore.New(), true)
	bad.setup = func(admin.Connect) (postgres.SetupConfig, error) { return postgres.SetupConfig{}, errors.New("no URL") }
	bad.run("setup").wantError(t, admin.ExitFailure, "setup: no URL")
}

func TestSetupFromURLs(t *testing.T) {
	t.Parallel()
	cfg, err := admin.SetupFromURLs("postgres://app:s%40cret@db:5432/notes?sslmode=disable", "postgresql://owner@db/notes")
	if err != nil {
		t.Fatal(err)
	}
	want := postgres.SetupConfig{Database: "notes", AppRole: "app", AppPassword: "s@cret", OwnerRole: "owner"}
	if cfg != want {
		t.Errorf("SetupFromURLs = %+v, want %+v", cfg, want)
	}
	for _, c := range []struct{ app, owner, want string }{
		{"postgres://app@db/notes", "postgres://app@db/notes", "MIGRATION_DATABASE_URL must connect as another user than DATABASE_URL"},
		{"postgres://app@db/notes", "postgres://owner@db/other", "must name the same database"},
		{"mysql://app:secret@db/notes", "postgres://owner@db/notes", "DATABASE_URL must be a postgres:// URL"},
		{"postgres://db/notes", "postgres://owner@db/notes", "DATABASE_URL names no user"},
		{"postgres://app@db/notes", "", "MIGRATION_DATABASE_URL is not set"},
	} {
		_, err := admin.SetupFromURLs(c.app, c.owner)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("SetupFromURLs(%q, %q) = %v, want %q", c.app, c.owner, err, c.want)
		}
	}
}

// TestPurgeAsks: on a terminal, purge asks for the identifier to be typed
// again; --yes skips the question.
func TestPurgeAsks(t *testing.T) {
	t.Parallel()
	app := newFileApp(t)
	h := app.harness(t, sqliteV1)
	for _, id := range []string{"acme", "beta", "gamma"} {
		h.run("tenants", "create", "--identifier", id, "--name", id).wantOK(t)
	}
	h.interactive = true
	h.stdin = "acme-typo\n"
	r := h.run("tenants", "purge", "--force", "acme")
	if r.code != admin.ExitFailure || r.stdout != "" ||
		!strings.HasPrefix(r.stderr, "Purging acme (acme, active) removes all of its data for good.\nType its identifier to confirm: ") ||
		!strings.HasSuffix(r.stderr, "testcli: purge cancelled: the identifier typed does not match\n") {
		t.Errorf("mistyped confirmation: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if app.tenant(t, "acme").Status != tenancy.StatusActive {
		t.Fatal("a cancelled purge changed the tenant")
	}
	h.stdin = ""
	if r := h.run("tenants", "purge", "--force", "acme"); r.code != admin.ExitFailure || !strings.Contains(r.stderr, "purge cancelled") {
		t.Errorf("no answer: exit %d, stderr %q", r.code, r.stderr)
	}
	h.stdin = "acme\n"
	r = h.run("tenants", "purge", "acme", "--force")
	if r.code != admin.ExitOK || r.stdout != "purged acme\n" {
		t.Errorf("confirmed purge: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// The plain flow asks too, since a purge cannot be undone.
	h.run("tenants", "delete", "beta").wantOK(t)
	h.stdin = "\n"
	if r := h.run("tenants", "purge", "beta"); r.code != admin.ExitFailure || !strings.Contains(r.stderr, "purge cancelled") {
		t.Errorf("empty answer: exit %d, stderr %q", r.code, r.stderr)
	}
	h.stdin = ""
	r = h.run("tenants", "purge", "--yes", "beta")
	r.wantOK(t)
	if r.stdout != "purged beta\n" {
		t.Errorf("purge --yes printed %q", r.stdout)
	}
	// Without a terminal, a deleted tenant is purged without a question.
	h.interactive = false
	h.run("tenants", "delete", "gamma").wantOK(t)
	h.run("tenants", "purge", "gamma").wantOK(t)
	if n, _ := app.store.Count(context.Background(), ""); n != 0 {
		t.Errorf("%d tenants left", n)
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	h := storeHarness(t, seeded(t), true)
	r := h.run("__complete", "tenants", "suspend", "")
	if r.code != admin.ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, w := range []string{"acme-corp\tAcme Corp\n", "beta\tBeta\n", "gone-co\tGone\n", ":4\n"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("completion lacks %q:\n%s", w, r.stdout)
		}
	}
	if !h.connect.ReadOnly {
		t.Error("completion opened the environment for writing")
	}
	r = h.run("__complete", "tenants", "show", "b")
	if !strings.Contains(r.stdout, "beta\t") || strings.Contains(r.stdout, "acme-corp") {
		t.Errorf("completion of b:\n%s", r.stdout)
	}
	r = h.run("__complete", "tenants", "su")
	if !strings.Contains(r.stdout, "suspend\t") {
		t.Errorf("command completion:\n%s", r.stdout)
	}
	r = h.run("completion", "bash")
	r.wantOK(t)
	if !strings.Contains(r.stdout, "__start_testcli") {
		t.Errorf("completion bash printed no script")
	}
}
