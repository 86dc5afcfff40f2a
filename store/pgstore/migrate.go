package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Names of the migration bookkeeping tables, inside the control schema.
const (
	versionTable = "store_migrations"
	lockTable    = "store_lock"
)

// Migrate creates the control schema if it does not exist and brings the
// store's tables in it up to date. It is idempotent, and concurrent calls
// (from several instances starting at once) are serialized by a lock row in
// <schema>.store_lock, so exactly one of them applies each migration.
//
// The lock is goose's PostgreSQL table locker rather than a session advisory
// lock: a session lock taken through a transaction pooler such as PgBouncer
// may be taken on one server connection and released on another, or outlive
// the client that took it. A lock row with a lease is plain data, works
// through any pooler, and expires on its own 30 seconds after a crashed
// holder stops renewing it. The version table is <schema>.store_migrations.
//
// Migrate needs a role that may create the schema (or owns it) and tables
// in it, and a pool of at least two connections: goose holds one for the
// migrations while the locker renews its lease on another.
func Migrate(ctx context.Context, pool *pgxpool.Pool, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	if pool.Config().MaxConns < 2 {
		return errors.New("pgstore: migrate: the pool needs at least 2 connections (one for the migrations, one for the lock)")
	}
	if err := createSchema(ctx, pool, cfg.Schema); err != nil {
		return err
	}
	fsys, err := render(cfg.Schema)
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresTableLocker(
		// The names are validated lowercase identifiers, so goose may write
		// them unquoted (it also uses them as string literals).
		lock.WithTableName(cfg.Schema+"."+lockTable),
		// Our migrations take milliseconds: poll often, give up after 5 minutes.
		lock.WithTableLockTimeout(500*time.Millisecond, 600),
		lock.WithTableLogger(cfg.Logger),
		lock.WithTableRetryPolicy(retryable),
	)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: create locker: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close() // does not close pool
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(cfg.Schema+"."+versionTable),
		goose.WithLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(cfg.Logger),
	)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: create provider: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate schema %s: %w", cfg.Schema, err)
	}
	for _, r := range results {
		cfg.Logger.InfoContext(ctx, "pgstore: applied migration",
			"schema", cfg.Schema, "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// retryable reports whether a lock operation that failed with err may
// succeed later. The locker retries every error by default, so a missing
// privilege would otherwise spin for the whole lock timeout.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 42: syntax error or access rule violation; 28: authorization.
		return !strings.HasPrefix(pgErr.Code, "42") && !strings.HasPrefix(pgErr.Code, "28")
	}
	return true
}

// createSchema creates the control schema unless it exists. Two instances
// racing to create it can both pass IF NOT EXISTS; the loser's unique
// violation is ignored once the schema is there.
func createSchema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	const exists = `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`
	var ok bool
	if err := pool.QueryRow(ctx, exists, schema).Scan(&ok); err != nil {
		return fmt.Errorf("pgstore: migrate: look up schema %s: %w", schema, err)
	}
	if ok {
		// No CREATE: a role that owns the schema but may not create
		// schemas in the database can still migrate.
		return nil
	}
	_, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P06") {
		if qerr := pool.QueryRow(ctx, exists, schema).Scan(&ok); qerr == nil && ok {
			return nil
		}
	}
	return fmt.Errorf("pgstore: migrate: create schema %s: %w", schema, err)
}

// render returns the migrations with {{schema}} replaced by the quoted
// schema name. Goose reads static SQL, and the schema is configurable.
func render(schema string) (fs.FS, error) {
	quoted := pgx.Identifier{schema}.Sanitize()
	out := fstest.MapFS{}
	err := fs.WalkDir(migrationFiles, "migrations", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := migrationFiles.ReadFile(path)
		if err != nil {
			return err
		}
		out[d.Name()] = &fstest.MapFile{Data: []byte(strings.ReplaceAll(string(b), "{{schema}}", quoted)), Mode: 0o444}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: read migrations: %w", err)
	}
	return out, nil
}
