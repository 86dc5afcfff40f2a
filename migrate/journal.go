package migrate

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Record is the journal's entry for one target.
type Record struct {
	Target   string
	TenantID string
	// From is the version before the last run; Version the version after it.
	From, Version int64
	// Status is StatusOK or StatusFailed.
	Status   Status
	Error    string
	Duration time.Duration
	// UpdatedAt is set by the journal.
	UpdatedAt time.Time
}

// Journal records each target's last outcome, and serializes work on a
// target across processes.
type Journal interface {
	// Load returns every record, by target.
	Load(ctx context.Context) (map[string]Record, error)
	// Delete drops a target's record.
	Delete(ctx context.Context, target string) error
	// Lock waits until the target is free and holds it until the lease is
	// committed or released. The lock cannot outlive the process holding it.
	Lock(ctx context.Context, target string) (Lease, error)
}

// Lease holds a target's lock.
type Lease interface {
	// Commit records the outcome and releases the lock, atomically where
	// the journal's database allows.
	Commit(ctx context.Context, r Record) error
	// Release releases the lock without recording; it does nothing after
	// Commit.
	Release()
}

// PostgresJournal keeps the journal in a table of the control schema, and
// locks a target with a transaction-level advisory lock held by an open
// transaction: unlike a session lock it cannot leak through a transaction
// pooler, and it ends with the transaction if the process dies.
type PostgresJournal struct {
	pool  *pgxpool.Pool
	table string
}

// OpenPostgresJournal uses the journal table <schema>.migration_targets
// that NewPostgresJournal created, creating nothing: for commands that only
// read (migrate status), run as a role that may not create tables. Until
// the table exists, its methods return errors.
func OpenPostgresJournal(pool *pgxpool.Pool, schema string) *PostgresJournal {
	if schema == "" {
		schema = "tenancy"
	}
	return &PostgresJournal{pool: pool, table: pgx.Identifier{schema, "migration_targets"}.Sanitize()}
}

// NewPostgresJournal creates the journal table <schema>.migration_targets
// when missing. Each concurrent migration holds one connection of pool.
func NewPostgresJournal(ctx context.Context, pool *pgxpool.Pool, schema string) (*PostgresJournal, error) {
	if schema == "" {
		schema = "tenancy"
	}
	j := &PostgresJournal{pool: pool, table: pgx.Identifier{schema, "migration_targets"}.Sanitize()}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Serialize creation: concurrent CREATE ... IF NOT EXISTS may
		// collide in the catalog.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('tenancy-migrate-journal', 0))"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()+`;
CREATE TABLE IF NOT EXISTS `+j.table+` (
	target      text PRIMARY KEY,
	tenant_id   text,
	from_version bigint NOT NULL,
	version     bigint NOT NULL,
	status      text NOT NULL CHECK (status IN ('ok', 'failed')),
	error       text NOT NULL DEFAULT '',
	duration_ms bigint NOT NULL,
	updated_at  timestamptz NOT NULL DEFAULT now()
)`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: create journal: %w", err)
	}
	return j, nil
}

// Load implements Journal.
func (j *PostgresJournal) Load(ctx context.Context) (map[string]Record, error) {
	rows, err := j.pool.Query(ctx, "SELECT target, coalesce(tenant_id, ''), from_version, version, status, error, duration_ms, updated_at FROM "+j.table)
	if err != nil {
		return nil, fmt.Errorf("migrate: load journal: %w", err)
	}
	defer rows.Close()
	out := make(map[string]Record)
	for rows.Next() {
		var r Record
		var ms int64
		if err := rows.Scan(&r.Target, &r.TenantID, &r.From, &r.Version, &r.Status, &r.Error, &ms, &r.UpdatedAt); err != nil {
			return nil, fmt.Errorf("migrate: load journal: %w", err)
		}
		r.Duration = time.Duration(ms) * time.Millisecond
		out[r.Target] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: load journal: %w", err)
	}
	return out, nil
}

// Delete implements Journal.
func (j *PostgresJournal) Delete(ctx context.Context, target string) error {
	if _, err := j.pool.Exec(ctx, "DELETE FROM "+j.table+" WHERE target = $1", target); err != nil {
		return fmt.Errorf("migrate: forget %s: %w", target, err)
	}
	return nil
}

// Lock implements Journal.
func (j *PostgresJournal) Lock(ctx context.Context, target string) (Lease, error) {
	tx, err := j.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	// The transaction stays idle while the target migrates on another
	// connection: a server-wide idle_in_transaction_session_timeout must
	// not end it (and the lock) midway.
	if _, err := tx.Exec(ctx, "SELECT set_config('idle_in_transaction_session_timeout', '0', true), pg_advisory_xact_lock(hashtextextended('tenancy-migrate:' || $1, 0))", target); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return &pgLease{j: j, tx: tx}, nil
}

type pgLease struct {
	j    *PostgresJournal
	tx   pgx.Tx
	done bool
}

func (l *pgLease) Commit(ctx context.Context, r Record) error {
	if l.done {
		return errors.New("migrate: lease already released")
	}
	l.done = true
	var tenantID *string
	if r.TenantID != "" {
		tenantID = &r.TenantID
	}
	_, err := l.tx.Exec(ctx, `INSERT INTO `+l.j.table+` (target, tenant_id, from_version, version, status, error, duration_ms, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, now())
ON CONFLICT (target) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, from_version = EXCLUDED.from_version,
	version = EXCLUDED.version, status = EXCLUDED.status, error = EXCLUDED.error,
	duration_ms = EXCLUDED.duration_ms, updated_at = EXCLUDED.updated_at`,
		r.Target, tenantID, r.From, r.Version, string(r.Status), r.Error, r.Duration.Milliseconds())
	if err != nil {
		_ = l.tx.Rollback(context.WithoutCancel(ctx))
		return fmt.Errorf("migrate: record %s: %w", r.Target, err)
	}
	if err := l.tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: record %s: %w", r.Target, err)
	}
	return nil
}

func (l *pgLease) Release() {
	if !l.done {
		l.done = true
		_ = l.tx.Rollback(context.Background())
	}
}

// SQLiteJournal keeps the journal in an SQLite file. Locks are leases in the
// same file, renewed while held and taken over once expired, so that a
// crashed process cannot hold a target for ever.
type SQLiteJournal struct {
	db    *sql.DB
	owner string
	ttl   time.Duration
	local sync.Map // target -> *sync.Mutex, so goroutines of one process queue without polling
}

// NewSQLiteJournal creates the journal tables in db when missing. db should
// be opened with a busy timeout (isolation/sqlite's Provider.Open does).
func NewSQLiteJournal(ctx context.Context, db *sql.DB) (*SQLiteJournal, error) {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migration_targets (
	target TEXT PRIMARY KEY,
	tenant_id TEXT,
	from_version INTEGER NOT NULL,
	version INTEGER NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
	error TEXT NOT NULL DEFAULT '',
	duration_ms INTEGER NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS migration_locks (
	target TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	expires_at INTEGER NOT NULL
)`)
	if err != nil {
		return nil, fmt.Errorf("migrate: create journal: %w", err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &SQLiteJournal{db: db, owner: hex.EncodeToString(b), ttl: 30 * time.Second}, nil
}

// Load implements Journal.
func (j *SQLiteJournal) Load(ctx context.Context) (map[string]Record, error) {
	rows, err := j.db.QueryContext(ctx, "SELECT target, coalesce(tenant_id, ''), from_version, version, status, error, duration_ms, updated_at FROM migration_targets")
	if err != nil {
		return nil, fmt.Errorf("migrate: load journal: %w", err)
	}
	defer rows.Close()
	out := make(map[string]Record)
	for rows.Next() {
		var r Record
		var ms int64
		var updated string
		if err := rows.Scan(&r.Target, &r.TenantID, &r.From, &r.Version, &r.Status, &r.Error, &ms, &updated); err != nil {
			return nil, fmt.Errorf("migrate: load journal: %w", err)
		}
		r.Duration = time.Duration(ms) * time.Millisecond
		r.UpdatedAt, _ = time.Parse(time.RFC3339Nano, updated)
		out[r.Target] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: load journal: %w", err)
	}
	return out, nil
}

// Delete implements Journal.
func (j *SQLiteJournal) Delete(ctx context.Context, target string) error {
	if _, err := j.db.ExecContext(ctx, "DELETE FROM migration_targets WHERE target = ?", target); err != nil {
		return fmt.Errorf("migrate: forget %s: %w", target, err)
	}
	return nil
}

// Lock implements Journal. A lease left by this process after a failed
// commit is taken back at once: the in-process mutex already serializes
// this process's own work.
func (j *SQLiteJournal) Lock(ctx context.Context, target string) (Lease, error) {
	mu, _ := j.local.LoadOrStore(target, &sync.Mutex{})
	local := mu.(*sync.Mutex)
	local.Lock()
	for {
		now := time.Now()
		res, err := j.db.ExecContext(ctx, `INSERT INTO migration_locks (target, owner, expires_at) VALUES (?, ?, ?)
ON CONFLICT (target) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE migration_locks.expires_at < ? OR migration_locks.owner = excluded.owner`, target, j.owner, now.Add(j.ttl).UnixMilli(), now.UnixMilli())
		if err != nil {
			local.Unlock()
			return nil, fmt.Errorf("migrate: lock %s: %w", target, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			break
		}
		select {
		case <-ctx.Done():
			local.Unlock()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	l := &sqliteLease{j: j, target: target, local: local, stop: make(chan struct{}), stopped: make(chan struct{})}
	go l.renew()
	return l, nil
}

type sqliteLease struct {
	j       *SQLiteJournal
	target  string
	local   *sync.Mutex
	once    sync.Once
	stop    chan struct{}
	stopped chan struct{}
}

// renew extends the lease while it is held.
func (l *sqliteLease) renew() {
	defer close(l.stopped)
	tick := time.NewTicker(l.j.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
			_, _ = l.j.db.Exec("UPDATE migration_locks SET expires_at = ? WHERE target = ? AND owner = ?",
				time.Now().Add(l.j.ttl).UnixMilli(), l.target, l.j.owner)
		}
	}
}

func (l *sqliteLease) Commit(ctx context.Context, r Record) error {
	var err error
	ran := false
	l.once.Do(func() {
		ran = true
		l.halt()
		err = l.commit(ctx, r)
		l.local.Unlock()
	})
	if !ran {
		return errors.New("migrate: lease already released")
	}
	return err
}

func (l *sqliteLease) commit(ctx context.Context, r Record) error {
	tx, err := l.j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: record %s: %w", r.Target, err)
	}
	defer func() { _ = tx.Rollback() }()
	// The lease may have expired and been taken over (a stalled process):
	// then another run owns the target, and this outcome is not recorded.
	res, err := tx.ExecContext(ctx, "DELETE FROM migration_locks WHERE target = ? AND owner = ?", l.target, l.j.owner)
	if err != nil {
		return fmt.Errorf("migrate: unlock %s: %w", r.Target, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("migrate: record %s: the lock expired and was taken over", r.Target)
	}
	var tenantID any
	if r.TenantID != "" {
		tenantID = r.TenantID
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO migration_targets (target, tenant_id, from_version, version, status, error, duration_ms, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (target) DO UPDATE SET tenant_id = excluded.tenant_id, from_version = excluded.from_version,
	version = excluded.version, status = excluded.status, error = excluded.error,
	duration_ms = excluded.duration_ms, updated_at = excluded.updated_at`,
		r.Target, tenantID, r.From, r.Version, string(r.Status), r.Error, r.Duration.Milliseconds(), time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("migrate: record %s: %w", r.Target, err)
	}
	return tx.Commit()
}

func (l *sqliteLease) halt() {
	close(l.stop)
	<-l.stopped
}

func (l *sqliteLease) Release() {
	l.once.Do(func() {
		l.halt()
		_, _ = l.j.db.Exec("DELETE FROM migration_locks WHERE target = ? AND owner = ?", l.target, l.j.owner)
		l.local.Unlock()
	})
}
