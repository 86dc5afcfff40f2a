package service_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy/examples/internal/service"
)

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	env := service.NewEnv(func(string) string { return "" })
	c := service.LoadConfig(env, service.Defaults{Name: "invoicer", TenantStore: service.StoreDB})
	if err := env.Err(); err != nil {
		t.Fatal(err)
	}
	if c.Name != "invoicer" || c.DataDir != "./data/invoicer" || c.RedisPrefix != "invoicer:" || c.TenantStore != service.StoreDB ||
		c.Port != 8000 || !c.MigrateOnStart || !c.SeedDemo || c.Postgres() {
		t.Fatalf("%+v", c)
	}
}

// TestEnvAppVariables: an app's own variables are checked alongside the
// common ones and reported with them, each naming its variable and never
// repeating the value.
func TestEnvAppVariables(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"PORT": "s3cret", "QUOTAS": "s3cret", "JOBS": " 12 ", "WORKERS": "0"}
	env := service.NewEnv(func(k string) string { return vars[k] })
	service.LoadConfig(env, service.Defaults{Name: "projectr"})
	quotas := env.Bool("QUOTAS", true)
	jobs := env.Int("JOBS", 1, nil, "a number")
	env.Int("WORKERS", 1, func(n int) bool { return n > 0 }, "at least 1")
	if !quotas || jobs != 12 {
		t.Fatalf("quotas %v, jobs %d", quotas, jobs)
	}
	err := env.Err()
	want := "configuration: PORT must be a port number\n" +
		"configuration: QUOTAS must be true or false\n" +
		"configuration: WORKERS must be at least 1"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("the error repeats a value")
	}
}

// TestLoadConfigServers: DATABASE_URLS and MIGRATION_DATABASE_URLS name
// the other servers tenants are placed on, the default server being
// DATABASE_URL and MIGRATION_DATABASE_URL; mistakes are reported naming
// the variable and the server, never a URL.
func TestLoadConfigServers(t *testing.T) {
	t.Parallel()
	const (
		app   = "postgres://app:s3cret@db1/app"
		owner = "postgres://owner:s3cret@db1/app"
		appEU = "postgres://app:s3cret@db-eu/app"
		ownEU = "postgres://owner:s3cret@db-eu/app"
		appUS = "postgres://app:s3cret@db-us/app"
	)
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		want    service.Config
		wantErr string
	}{
		{name: "OneRoleDefaultsMigrationServers",
			vars: map[string]string{"DATABASE_URL": app, "DATABASE_URLS": "eu=" + appEU},
			want: service.Config{DatabaseURL: app, MigrationDatabaseURL: app,
				DatabaseURLs: map[string]string{"eu": appEU}, MigrationDatabaseURLs: map[string]string{"eu": appEU}}},
		{name: "TwoRoles",
			vars: map[string]string{"DATABASE_URL": app, "MIGRATION_DATABASE_URL": owner,
				"DATABASE_URLS": "eu=" + appEU + ",us=" + appUS, "MIGRATION_DATABASE_URLS": "eu=" + ownEU + "\nus=" + ownEU},
			want: service.Config{DatabaseURL: app, MigrationDatabaseURL: owner,
				DatabaseURLs:          map[string]string{"eu": appEU, "us": appUS},
				MigrationDatabaseURLs: map[string]string{"eu": ownEU, "us": ownEU}}},
		{name: "DefaultEntrySetsDatabaseURL",
			vars: map[string]string{"DATABASE_URLS": "default=" + app + ",eu=" + appEU},
			want: service.Config{DatabaseURL: app, MigrationDatabaseURL: app,
				DatabaseURLs: map[string]string{"eu": appEU}, MigrationDatabaseURLs: map[string]string{"eu": appEU}}},
		{name: "DefaultEntryDiffers",
			vars:    map[string]string{"DATABASE_URL": app, "DATABASE_URLS": "default=" + appUS + ",eu=" + appEU},
			wantErr: `configuration: DATABASE_URL and the "default" server of DATABASE_URLS differ: set one of them`},
		{name: "MigrationServersMissing",
			vars:    map[string]string{"DATABASE_URL": app, "MIGRATION_DATABASE_URL": owner, "DATABASE_URLS": "eu=" + appEU},
			wantErr: "configuration: MIGRATION_DATABASE_URLS must list the migration role's URL on every server of DATABASE_URLS, as MIGRATION_DATABASE_URL does on the default server"},
		{name: "MigrationServersDiffer",
			vars: map[string]string{"DATABASE_URL": app, "MIGRATION_DATABASE_URL": owner,
				"DATABASE_URLS": "eu=" + appEU, "MIGRATION_DATABASE_URLS": "us=" + ownEU},
			wantErr: "configuration: MIGRATION_DATABASE_URLS names server \"us\", which DATABASE_URLS does not\n" +
				"configuration: MIGRATION_DATABASE_URLS does not name server \"eu\" of DATABASE_URLS"},
		{name: "NotPostgres",
			vars:    map[string]string{"DATABASE_URL": app, "DATABASE_URLS": "eu=mysql://app:s3cret@db-eu/app"},
			wantErr: `configuration: DATABASE_URLS: tenancy: server "eu" needs a postgres:// URL`},
		{name: "NoDefaultServer",
			vars:    map[string]string{"DATABASE_URLS": "eu=" + appEU},
			wantErr: `configuration: DATABASE_URLS: tenancy: server map names no "default" server`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := service.NewEnv(func(k string) string { return tc.vars[k] })
			c := service.LoadConfig(env, service.Defaults{Name: "notekeeper"})
			err := env.Err()
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error:\n%v\nwant:\n%s", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatal("the error repeats a URL")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DatabaseURL != tc.want.DatabaseURL || c.MigrationDatabaseURL != tc.want.MigrationDatabaseURL ||
				!maps.Equal(c.DatabaseURLs, tc.want.DatabaseURLs) || !maps.Equal(c.MigrationDatabaseURLs, tc.want.MigrationDatabaseURLs) {
				t.Fatalf("got %q %q %v %v", c.DatabaseURL, c.MigrationDatabaseURL, c.DatabaseURLs, c.MigrationDatabaseURLs)
			}
		})
	}
}
