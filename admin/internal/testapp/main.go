// Command testapp is the smallest application that mounts the admin CLI:
// schema-per-tenant isolation on PostgreSQL, a lifecycle manager and a
// two-step migration set. The admin package's tests build it and run it as
// a subprocess, as an operator would run an application's binary.
//
// Environment:
//
//	DATABASE_URL        postgres:// URL (required)
//	TENANT_STORE        db (default) or memory
//	TESTAPP_MIGRATIONS  how many of the migrations exist: 1 or 2 (default 2)
//	TESTAPP_PANIC       "open" makes opening the environment panic
//	TESTAPP_APP_URL     the request role's URL, for the setup command
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing/fstest"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/lifecycle"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/go-tenancy/tenancy/store/pgstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations is the application's migration set: tenant tables under
// row-level security, built with the isolation/postgres helpers, so that
// one set serves any strategy.
var migrations = fstest.MapFS{
	"001_notes.sql": {Data: []byte("-- +goose Up\nCREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, " +
		postgres.TenantIDColumn + ", title text NOT NULL);\n" + strings.Join(postgres.EnableRLS("notes"), ";\n") + ";\n")},
	"002_tags.sql": {Data: []byte("-- +goose Up\nCREATE TABLE tags (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, " +
		postgres.TenantIDColumn + ", name text NOT NULL);\n" + strings.Join(postgres.EnableRLS("tags"), ";\n") + ";\n")},
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		fmt.Fprintln(os.Stderr, "testapp: this test application only runs admin commands (try: testapp help)")
		os.Exit(admin.ExitUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := &admin.App{Name: "testapp", Open: open, Setup: func(c admin.Connect) (postgres.SetupConfig, error) {
		return admin.SetupFromURLs(os.Getenv("TESTAPP_APP_URL"), c.DatabaseURL)
	}}
	code := app.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func open(ctx context.Context, c admin.Connect) (*admin.Env, error) {
	if os.Getenv("TESTAPP_PANIC") == "open" {
		panic("planted panic while opening")
	}
	if !strings.HasPrefix(c.DatabaseURL, "postgres://") {
		return nil, errors.New("set DATABASE_URL to a postgres:// URL")
	}
	set, err := migrationSet(os.Getenv("TESTAPP_MIGRATIONS"))
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(c.DatabaseURL)
	if err != nil {
		return nil, errors.New("DATABASE_URL is not a valid PostgreSQL URL")
	}
	cfg.MaxConns = 8
	cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	env, err := build(ctx, pool, set, c.Concurrency)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return env, nil
}

func build(ctx context.Context, pool *pgxpool.Pool, set fs.FS, concurrency int) (*admin.Env, error) {
	if err := pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	var (
		store      tenancy.Store
		persistent bool
	)
	switch os.Getenv("TENANT_STORE") {
	case "", "db":
		if err := pgstore.Migrate(ctx, pool, pgstore.Config{}); err != nil {
			return nil, err
		}
		s, err := pgstore.New(ctx, pool, pgstore.Config{})
		if err != nil {
			return nil, err
		}
		store, persistent = s, true
	case "memory":
		store = memstore.New()
	default:
		return nil, errors.New("TENANT_STORE must be db or memory")
	}
	quiet := slog.New(slog.DiscardHandler)
	provider, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{Config: postgres.Config{Logger: quiet}})
	if err != nil {
		return nil, err
	}
	journal, err := migrate.NewPostgresJournal(ctx, pool, pgstore.DefaultSchema)
	if err != nil {
		return nil, err
	}
	runner, err := migrate.New(migrate.Config{
		Migrations: set, Targets: provider, Store: store, Journal: journal,
		Concurrency: concurrency, Logger: quiet,
	})
	if err != nil {
		return nil, err
	}
	manager, err := lifecycle.New(lifecycle.Config{Store: store, Provider: provider, Migrator: runner, Logger: quiet})
	if err != nil {
		return nil, err
	}
	return &admin.Env{
		Store:      store,
		Persistent: persistent,
		BaseDomain: "localhost",
		Lifecycle:  manager,
		Migrator:   runner,
		Doctor: func(ctx context.Context) (*postgres.Report, error) {
			return postgres.Doctor(ctx, pool, postgres.DoctorConfig{AppRole: os.Getenv("TESTAPP_APP_ROLE")})
		},
		Close: pool.Close,
	}, nil
}

// migrationSet returns the first n migrations, so that tests can provision
// tenants at version 1 and then migrate them to 2.
func migrationSet(n string) (fs.FS, error) {
	switch n {
	case "", "2":
		return migrations, nil
	case "1":
		return fstest.MapFS{"001_notes.sql": migrations["001_notes.sql"]}, nil
	}
	return nil, errors.New("TESTAPP_MIGRATIONS must be 1 or 2")
}
