// Package sqlite isolates tenants on SQLite with a database file per tenant,
// using modernc.org/sqlite (pure Go: nothing to install). It is the embedded
// default of the example apps: a service runs with no database server at all.
//
// A tenant's statements run on connections to its own file only: ATTACH is
// refused on every connection the provider opens, so no statement can reach
// another tenant's file. Code written for database/sql (sqlc's database/sql
// output, sqlx) runs on the tenant's *sql.Conn or *sql.Tx through Conn and
// BeginFunc; both are valid only inside their callback.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/poolcache"
	"github.com/go-tenancy/tenancy/isolation"
	"modernc.org/sqlite"
)

// Config configures file-per-tenant isolation.
type Config struct {
	// Dir holds one file per tenant, named by isolation.FileName. It is
	// created when missing. Required; it must not contain '?'.
	Dir string
	// MaxOpen caps how many tenant databases are open at once; the least
	// recently used idle one is closed to open another, and when every open
	// one is in use a call waits for one, as long as its context allows.
	// Default 64.
	MaxOpen int
	// MaxConnsPerTenant caps each tenant's connections. SQLite in WAL mode
	// reads concurrently and writes one at a time. Default 4.
	MaxConnsPerTenant int
	// BusyTimeout is how long a writer waits for the file's write lock.
	// Default 5s.
	BusyTimeout time.Duration
	// IdleTimeout closes a tenant database unused for that long. Default 5m.
	IdleTimeout time.Duration
}

// Provider gives every tenant its own SQLite file, in WAL mode with a busy
// timeout, foreign keys on, and transactions that take the write lock when
// they begin (so two writers never deadlock upgrading read locks).
type Provider struct {
	cfg Config
	dbs *poolcache.Cache[string, *sql.DB]
}

var _ isolation.Provider = (*Provider)(nil)

// driverName names the private registration of modernc.org/sqlite whose
// connections refuse ATTACH.
const driverName = "tenancy-sqlite"

var registerOnce sync.Once

// register registers the provider's driver: modernc.org/sqlite with an
// authorizer, installed on every connection it opens, that refuses ATTACH.
// Without it a tenant's statement could attach another tenant's file and
// read it.
func register() {
	registerOnce.Do(func() {
		drv := &sqlite.Driver{}
		drv.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, _ string) error {
			reg, ok := c.(sqlite.AuthorizerRegisterer)
			if !ok {
				return errors.New("isolation/sqlite: the driver cannot refuse ATTACH on this connection")
			}
			return reg.RegisterAuthorizer(func(action sqlite.AuthorizerActionCode, _, _, _, _ string) sqlite.AuthorizerReturnCode {
				if action == sqlite.AuthAttach {
					return sqlite.AuthorizerDeny
				}
				return sqlite.AuthorizerOK
			})
		})
		sql.Register(driverName, drv)
	})
}

// New returns a provider storing tenant files under cfg.Dir.
func New(cfg Config) (*Provider, error) {
	if cfg.Dir == "" {
		return nil, errors.New("isolation/sqlite: Config.Dir is required")
	}
	if strings.ContainsRune(cfg.Dir, '?') {
		return nil, errors.New("isolation/sqlite: Config.Dir must not contain '?'")
	}
	if cfg.MaxOpen <= 0 {
		cfg.MaxOpen = 64
	}
	if cfg.MaxConnsPerTenant <= 0 {
		cfg.MaxConnsPerTenant = 4
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = 5 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("isolation/sqlite: create data directory: %w", err)
	}
	register()
	dbs, err := poolcache.New[string](poolcache.Config[*sql.DB]{
		MaxWeight:   cfg.MaxOpen,
		IdleTimeout: cfg.IdleTimeout,
		Close:       func(db *sql.DB) { _ = db.Close() },
	})
	if err != nil {
		return nil, err
	}
	return &Provider{cfg: cfg, dbs: dbs}, nil
}

// Path returns the file holding t's data.
func (p *Provider) Path(t *tenancy.Tenant) (string, error) {
	if err := isolation.CheckTenant(t); err != nil {
		return "", err
	}
	return isolation.FileName(p.cfg.Dir, t.Identifier)
}

// Open opens a database file with the provider's settings, ATTACH refused
// included. Migrations and tools use it for a tenant's file; the caller
// closes the handle.
func (p *Provider) Open(path string) (*sql.DB, error) {
	dsn := path + "?_busy_timeout=" + strconv.FormatInt(p.cfg.BusyTimeout.Milliseconds(), 10) +
		"&_journal_mode=WAL&_foreign_keys=1&_synchronous=NORMAL&_txlock=immediate"
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(p.cfg.MaxConnsPerTenant)
	db.SetMaxIdleConns(p.cfg.MaxConnsPerTenant)
	return db, nil
}

// acquire returns t's database, opening it when needed, held open until
// release.
func (p *Provider) acquire(ctx context.Context, t *tenancy.Tenant) (*sql.DB, func(), error) {
	path, err := p.Path(t)
	if err != nil {
		return nil, nil, err
	}
	h, err := p.dbs.Acquire(ctx, path, 1, func() (*sql.DB, error) { return p.Open(path) })
	if err != nil {
		if errors.Is(err, poolcache.ErrClosed) {
			return nil, nil, errors.New("isolation/sqlite: provider is closed")
		}
		return nil, nil, fmt.Errorf("isolation/sqlite: open tenant database: %w", err)
	}
	return h.Value(), h.Release, nil
}

// Dialect implements isolation.Provider.
func (p *Provider) Dialect() isolation.Dialect { return isolation.SQLite }

// Initialize implements isolation.Provider: it creates t's file.
func (p *Provider) Initialize(ctx context.Context, t *tenancy.Tenant) error {
	db, release, err := p.acquire(ctx, t)
	if err != nil {
		return err
	}
	defer release()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("open tenant database of %s: %w", t.Identifier, err)
	}
	return nil
}

// Destroy implements isolation.Provider: it closes t's database and removes
// its file with the WAL and shared-memory files beside it.
func (p *Provider) Destroy(_ context.Context, t *tenancy.Tenant) error {
	path, err := p.Path(t)
	if err != nil {
		return err
	}
	p.dbs.Remove(path)
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", f, err)
		}
	}
	return nil
}

// Exec implements isolation.Provider.
func (p *Provider) Exec(ctx context.Context, t *tenancy.Tenant, query string, args ...any) (int64, error) {
	db, release, err := p.acquire(ctx, t)
	if err != nil {
		return 0, err
	}
	defer release()
	res, err := db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Query implements isolation.Provider.
func (p *Provider) Query(ctx context.Context, t *tenancy.Tenant, query string, args ...any) (isolation.Rows, error) {
	db, release, err := p.acquire(ctx, t)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		release()
		return nil, err
	}
	return &sqlRows{Rows: rows, release: release}, nil
}

// QueryRow implements isolation.Provider.
func (p *Provider) QueryRow(ctx context.Context, t *tenancy.Tenant, query string, args ...any) isolation.Row {
	return isolation.RowOf(p.Query(ctx, t, query, args...))
}

// Tx implements isolation.Provider. The transaction refuses every call once
// fn has returned.
func (p *Provider) Tx(ctx context.Context, t *tenancy.Tenant, fn func(isolation.Tx) error) error {
	return p.BeginFunc(ctx, t, nil, func(tx *sql.Tx) error {
		st := &sqlTx{tx: tx}
		defer st.end()
		return fn(st)
	})
}

// BeginFunc runs fn in a transaction on t's file, for database/sql code
// (sqlc's database/sql output, sqlx), and commits when fn returns nil or
// rolls back otherwise. The *sql.Tx is valid only inside fn: after it,
// database/sql refuses every call with sql.ErrTxDone.
func (p *Provider) BeginFunc(ctx context.Context, t *tenancy.Tenant, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	db, release, err := p.acquire(ctx, t)
	if err != nil {
		return err
	}
	defer release()
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	// Rollback after Commit is a no-op; this one undoes a failed or
	// panicking fn.
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Conn runs fn with a connection to t's file, for database/sql code. The
// *sql.Conn is valid only inside fn: after it, database/sql refuses every
// call with sql.ErrConnDone.
func (p *Provider) Conn(ctx context.Context, t *tenancy.Tenant, fn func(*sql.Conn) error) error {
	db, release, err := p.acquire(ctx, t)
	if err != nil {
		return err
	}
	defer release()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(conn)
}

// Close implements isolation.Provider: it closes every tenant database.
func (p *Provider) Close() { p.dbs.Close() }

// OpenCount reports how many tenant databases are open.
func (p *Provider) OpenCount() int {
	n, _ := p.dbs.Stats()
	return n
}

type sqlRows struct {
	*sql.Rows
	release func()
	err     error
	done    bool
}

func (r *sqlRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *sqlRows) Close() {
	if r.done {
		return
	}
	r.done = true
	r.err = r.Rows.Err()
	if err := r.Rows.Close(); r.err == nil {
		r.err = err
	}
	if r.release != nil {
		r.release()
	}
}

func (r *sqlRows) Err() error {
	if r.done {
		return r.err
	}
	return r.Rows.Err()
}

// sqlTx is an isolation.Tx over a *sql.Tx that refuses every call after its
// callback returned, with isolation.ErrTxClosed, as every provider's does.
type sqlTx struct {
	mu    sync.Mutex
	tx    *sql.Tx
	ended bool
}

var errTxClosed = fmt.Errorf("%w: %w", isolation.ErrTxClosed, sql.ErrTxDone)

func (t *sqlTx) end() {
	t.mu.Lock()
	t.ended = true
	t.mu.Unlock()
}

func (t *sqlTx) open() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.ended
}

func (t *sqlTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if !t.open() {
		return 0, errTxClosed
	}
	res, err := t.tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *sqlTx) Query(ctx context.Context, query string, args ...any) (isolation.Rows, error) {
	if !t.open() {
		return nil, errTxClosed
	}
	rows, err := t.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return &sqlRows{Rows: rows}, nil
}

func (t *sqlTx) QueryRow(ctx context.Context, query string, args ...any) isolation.Row {
	return isolation.RowOf(t.Query(ctx, query, args...))
}

// Targets implements isolation.Migratable: one file per tenant.
func (p *Provider) Targets(tenants []*tenancy.Tenant) ([]isolation.Target, error) {
	out := make([]isolation.Target, 0, len(tenants))
	for _, t := range tenants {
		path, err := p.Path(t)
		if err != nil {
			return nil, err
		}
		out = append(out, isolation.Target{
			Key:     "file/" + t.Identifier,
			Tenant:  t,
			Dialect: isolation.SQLite,
			Open:    func(context.Context) (*sql.DB, error) { return p.Open(path) },
		})
	}
	return out, nil
}

// Residue implements isolation.ResidueChecker: t's file and the WAL and
// shared-memory files beside it, if any exist.
func (p *Provider) Residue(_ context.Context, t *tenancy.Tenant) ([]string, error) {
	path, err := p.Path(t)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(f); err == nil {
			out = append(out, "file "+f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return out, nil
}
