package main

import (
	"os"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy/internal/testenv"
)

// TestAdminWithAppRoleOnly: with only the application role's DATABASE_URL
// (no MIGRATION_DATABASE_URL), the read-only admin commands work against
// Notekeeper's database, and a command that needs migration rights says
// to set MIGRATION_DATABASE_URL.
func TestAdminWithAppRoleOnly(t *testing.T) {
	t.Parallel()
	dsn := testenv.NewDatabase(t)
	testenv.EnsureRole(t, testenv.AppRole)
	appURL := testenv.WithUser(dsn, testenv.AppRole)
	bin := buildBinary(t)
	startServer(t, bin, map[string]string{
		"DATABASE_URL":           appURL,
		"MIGRATION_DATABASE_URL": dsn,
		"TENANT_STORE":           "db",
		"SEED_DEMO":              "true",
	})
	app := &server{bin: bin, env: []string{"HOME=" + os.Getenv("HOME"), "DATABASE_URL=" + appURL, "TENANT_STORE=db"}}
	if out := app.admin(t, 0, "tenants", "list"); !strings.Contains(out, acme) || !strings.Contains(out, globex) {
		t.Fatalf("tenants list as the app role: %s", out)
	}
	if out := app.admin(t, 0, "tenants", "show", acme); !strings.Contains(out, acmeID) {
		t.Fatalf("tenants show as the app role: %s", out)
	}
	if out := app.admin(t, 0, "migrate", "status"); !strings.Contains(out, "shared") {
		t.Fatalf("migrate status as the app role: %s", out)
	}
	out := app.admin(t, 1, "tenants", "create", "--identifier", "initech", "--name", "Initech")
	if !strings.Contains(out, "MIGRATION_DATABASE_URL") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("tenants create as the app role, want one line naming MIGRATION_DATABASE_URL: %s", out)
	}
}
