package sqlitestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Names of the migration bookkeeping tables.
const (
	versionTable = "store_migrations"
	lockTable    = "store_lock"
)

// Lock timing. The store's migrations take milliseconds, so a lease of a
// minute is ample and bounds how long a crashed migrator blocks the others.
const (
	lockLease = time.Minute
	lockPoll  = 50 * time.Millisecond
)

// migrate brings the store's tables in db up to date with goose. Processes
// opening one file at once are serialized by a lock row (goose has no
// SQLite locker). The lock is taken around the goose run rather than
// through goose.WithLocker, which would ask for a second connection while
// holding the first: that deadlocks a handle limited to one connection, as
// an in-memory database must be.
func migrate(ctx context.Context, db *sql.DB, cfg Config) (err error) {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("sqlitestore: read migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys,
		goose.WithTableName(versionTable),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(cfg.Logger),
	)
	if err != nil {
		return fmt.Errorf("sqlitestore: migrate: create provider: %w", err)
	}
	l, err := newLocker()
	if err != nil {
		return err
	}
	if err := l.lock(ctx, db); err != nil {
		return err
	}
	defer func() {
		// Release even if ctx was canceled mid-run; the lease covers a crash.
		if uerr := l.unlock(context.WithoutCancel(ctx), db); uerr != nil && err == nil {
			err = uerr
		}
	}()
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("sqlitestore: migrate: %w", err)
	}
	for _, r := range results {
		cfg.Logger.InfoContext(ctx, "sqlitestore: applied migration", "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// locker is a lease on the single row of store_lock.
type locker struct{ owner string }

func newLocker() (*locker, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("sqlitestore: migrate: lock owner: %w", err)
	}
	return &locker{owner: hex.EncodeToString(b)}, nil
}

// lock waits until it holds the lock row: free, or held by someone whose
// lease has expired.
func (l *locker) lock(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+lockTable+` (
	id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	owner      TEXT    NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT`)
	if err != nil {
		return fmt.Errorf("sqlitestore: migrate: create lock table: %w", err)
	}
	for {
		now := time.Now()
		res, err := db.ExecContext(ctx, `INSERT INTO `+lockTable+` (id, owner, expires_at) VALUES (1, ?, ?)
ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE `+lockTable+`.expires_at < ?`, l.owner, now.Add(lockLease).UnixMilli(), now.UnixMilli())
		if err != nil {
			return fmt.Errorf("sqlitestore: migrate: take lock: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sqlitestore: migrate: wait for lock held by another process: %w", ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

func (l *locker) unlock(ctx context.Context, db *sql.DB) error {
	res, err := db.ExecContext(ctx, `DELETE FROM `+lockTable+` WHERE owner = ?`, l.owner)
	if err != nil {
		return fmt.Errorf("sqlitestore: migrate: release lock: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errors.New("sqlitestore: migrate: lock was taken over before release (lease expired)")
	}
	return nil
}
