package service_test

import (
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
