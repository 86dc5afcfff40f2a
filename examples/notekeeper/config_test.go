package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy/examples/internal/service"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	const pg = "postgres://app:s3cret-password@db:5432/notes"
	cases := []struct {
		name    string
		env     map[string]string
		want    func(Config) bool
		wantErr string
	}{
		{
			name: "Defaults",
			env:  nil,
			want: func(c Config) bool {
				return c.Port == 8000 && c.DataDir == "./data/notekeeper" && !c.Postgres() && c.RedisURL == "" &&
					c.TenantStore == service.StoreMemory && c.MigrateOnStart && c.RateLimitPerMinute == 0 &&
					c.RedisPrefix == "notekeeper:" && c.LogLevel == slog.LevelInfo && c.LogFormat == "text"
			},
		},
		{
			name: "PostgresMigrationURLDefaultsToDatabaseURL",
			env:  map[string]string{"DATABASE_URL": pg},
			want: func(c Config) bool { return c.Postgres() && c.MigrationDatabaseURL == pg },
		},
		{
			name: "Everything",
			env: map[string]string{
				"PORT": "9000", "DATA_DIR": "/tmp/x", "DATABASE_URL": pg, "MIGRATION_DATABASE_URL": "postgresql://owner@db/notes",
				"REDIS_URL": "redis://cache:6379/0", "REDIS_PREFIX": "nk:", "TENANT_STORE": "db", "MIGRATE_ON_START": "false",
				"RATE_LIMIT_PER_MINUTE": "120", "LOG_LEVEL": "debug", "LOG_FORMAT": "json",
			},
			want: func(c Config) bool {
				return c.Port == 9000 && c.DataDir == "/tmp/x" && c.MigrationDatabaseURL == "postgresql://owner@db/notes" &&
					c.RedisURL == "redis://cache:6379/0" && c.RedisPrefix == "nk:" && c.TenantStore == service.StoreDB &&
					!c.MigrateOnStart && c.RateLimitPerMinute == 120 && c.LogLevel == slog.LevelDebug && c.LogFormat == "json"
			},
		},
		{name: "BadPort", env: map[string]string{"PORT": "eighty"}, wantErr: "PORT"},
		{name: "PortTooHigh", env: map[string]string{"PORT": "70000"}, wantErr: "PORT"},
		{name: "BadStore", env: map[string]string{"TENANT_STORE": "redis"}, wantErr: "TENANT_STORE"},
		{name: "BadMigrate", env: map[string]string{"MIGRATE_ON_START": "sometimes"}, wantErr: "MIGRATE_ON_START"},
		{name: "BadRate", env: map[string]string{"RATE_LIMIT_PER_MINUTE": "-1"}, wantErr: "RATE_LIMIT_PER_MINUTE"},
		{name: "BadLogLevel", env: map[string]string{"LOG_LEVEL": "loud"}, wantErr: "LOG_LEVEL"},
		{name: "MySQL", env: map[string]string{"DATABASE_URL": "mysql://root:s3cret-password@db/notes"}, wantErr: "DATABASE_URL"},
		{name: "BadSeed", env: map[string]string{"SEED_DEMO": "perhaps"}, wantErr: "SEED_DEMO"},
		{name: "MigrationURLAlone", env: map[string]string{"MIGRATION_DATABASE_URL": pg}, wantErr: "needs DATABASE_URL"},
		{name: "BadRedis", env: map[string]string{"REDIS_URL": "http://s3cret-password@cache"}, wantErr: "REDIS_URL"},
		{name: "QuestionMarkInDataDir", env: map[string]string{"DATA_DIR": "/tmp/a?b"}, wantErr: "DATA_DIR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error repeats a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if !tc.want(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestRunRefusesBadConfigurationAndArguments(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		env  map[string]string
		code int
	}{
		{"BadConfig", nil, map[string]string{"PORT": "x"}, 2},
		{"UnknownCommand", []string{"frobnicate"}, nil, 2},
		{"ServeWithArguments", []string{"serve", "now"}, nil, 2},
		{"Help", []string{"--help"}, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut strings.Builder
			code := run(t.Context(), tc.args, func(k string) string { return tc.env[k] }, &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, tc.code, out.String(), errOut.String())
			}
			if tc.code == 0 && !strings.Contains(out.String(), "serve ") {
				t.Fatalf("help lacks the serve command: %q", out.String())
			}
			if tc.code != 0 && !strings.HasPrefix(errOut.String(), "notekeeper: ") {
				t.Fatalf("stderr %q does not start with the program's name", errOut.String())
			}
		})
	}
}

// TestConfigErrorsNameWhatWasSet: a bad DATABASE_URL is reported once, not
// again for the MIGRATION_DATABASE_URL that defaults to it, and every line
// of a multi-error message starts with the program's name.
func TestConfigErrorsNameWhatWasSet(t *testing.T) {
	t.Parallel()
	var out, errOut strings.Builder
	env := map[string]string{"DATABASE_URL": "mysql://x", "PORT": "eighty"}
	code := run(t.Context(), nil, func(k string) string { return env[k] }, &out, &errOut)
	want := "notekeeper: configuration: PORT must be a port number\n" +
		"notekeeper: configuration: DATABASE_URL must be a postgres:// or postgresql:// URL\n"
	if code != 2 || errOut.String() != want || out.String() != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and %q", code, out.String(), errOut.String(), want)
	}
	env = map[string]string{"DATABASE_URL": "postgres://app@db/notes", "MIGRATION_DATABASE_URL": "mysql://owner@db/notes"}
	errOut.Reset()
	code = run(t.Context(), []string{"tenants", "list"}, func(k string) string { return env[k] }, &out, &errOut)
	if code != 2 || errOut.String() != "notekeeper: configuration: MIGRATION_DATABASE_URL must be a postgres:// or postgresql:// URL\n" {
		t.Fatalf("admin command with a bad MIGRATION_DATABASE_URL: exit %d, stderr %q", code, errOut.String())
	}
}

func TestSeedDemoDefault(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, true},
		{map[string]string{"TENANT_STORE": "db"}, true},
		{map[string]string{"DATABASE_URL": "postgres://app@db/notes"}, true},
		{map[string]string{"DATABASE_URL": "postgres://app@db/notes", "TENANT_STORE": "db"}, false},
		{map[string]string{"DATABASE_URL": "postgres://app@db/notes", "TENANT_STORE": "db", "SEED_DEMO": "true"}, true},
		{map[string]string{"SEED_DEMO": "false"}, false},
	} {
		cfg, err := loadConfig(func(k string) string { return c.env[k] })
		if err != nil || cfg.SeedDemo != c.want {
			t.Errorf("%v: SeedDemo %v (%v), want %v", c.env, cfg.SeedDemo, err, c.want)
		}
	}
}
