// Package sqlite isolates tenants on SQLite with a database file per tenant,
// using modernc.org/sqlite (pure Go: nothing to install). It is the embedded
// default of the example apps: a service runs with no database server at all.
package sqlite

import (
	"container/list"
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
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Config configures file-per-tenant isolation.
type Config struct {
	// Dir holds one file per tenant, named by isolation.FileName. It is
	// created when missing. Required; it must not contain '?'.
	Dir string
	// MaxOpen caps how many tenant databases are open at once; the least
	// recently used idle one is closed to open another. Default 64.
	MaxOpen int
	// MaxConnsPerTenant caps each tenant's connections. SQLite in WAL mode
	// reads concurrently and writes one at a time. Default 4.
	MaxConnsPerTenant int
	// BusyTimeout is how long a writer waits for the file's write lock.
	// Default 5s.
	BusyTimeout time.Duration
}

// Provider gives every tenant its own SQLite file, in WAL mode with a busy
// timeout, foreign keys on, and transactions that take the write lock when
// they begin (so two writers never deadlock upgrading read locks).
type Provider struct {
	cfg   Config
	mu    sync.Mutex
	dbs   map[string]*tenantDB // by file path
	lru   list.List
	freed chan struct{}
	done  bool
}

type tenantDB struct {
	path string
	db   *sql.DB
	refs int
	el   *list.Element
}

var _ isolation.Provider = (*Provider)(nil)

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
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("isolation/sqlite: create data directory: %w", err)
	}
	return &Provider{cfg: cfg, dbs: make(map[string]*tenantDB), freed: make(chan struct{})}, nil
}

// Path returns the file holding t's data.
func (p *Provider) Path(t *tenancy.Tenant) (string, error) {
	if err := isolation.CheckTenant(t); err != nil {
		return "", err
	}
	return isolation.FileName(p.cfg.Dir, t.Identifier)
}

// Open opens a database file with the provider's settings. Migrations and
// tools use it for a tenant's file; the caller closes the handle.
func (p *Provider) Open(path string) (*sql.DB, error) {
	dsn := path + "?_busy_timeout=" + strconv.FormatInt(p.cfg.BusyTimeout.Milliseconds(), 10) +
		"&_journal_mode=WAL&_foreign_keys=1&_synchronous=NORMAL&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(p.cfg.MaxConnsPerTenant)
	db.SetMaxIdleConns(p.cfg.MaxConnsPerTenant)
	return db, nil
}

// Dialect implements isolation.Provider.
func (p *Provider) Dialect() isolation.Dialect { return isolation.SQLite }

// Initialize implements isolation.Provider: it creates t's file.
func (p *Provider) Initialize(ctx context.Context, t *tenancy.Tenant) error {
	tdb, err := p.acquire(ctx, t)
	if err != nil {
		return err
	}
	defer p.release(tdb)
	if err := tdb.db.PingContext(ctx); err != nil {
		return fmt.Errorf("open tenant database %s: %w", tdb.path, err)
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
	p.mu.Lock()
	tdb := p.dbs[path]
	if tdb != nil {
		p.remove(tdb)
	}
	p.mu.Unlock()
	if tdb != nil {
		_ = tdb.db.Close()
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", f, err)
		}
	}
	return nil
}

// Exec implements isolation.Provider.
func (p *Provider) Exec(ctx context.Context, t *tenancy.Tenant, query string, args ...any) (int64, error) {
	tdb, err := p.acquire(ctx, t)
	if err != nil {
		return 0, err
	}
	defer p.release(tdb)
	return execDB(ctx, tdb.db, query, args)
}

type execContexter interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func execDB(ctx context.Context, db execContexter, query string, args []any) (int64, error) {
	res, err := db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Query implements isolation.Provider.
func (p *Provider) Query(ctx context.Context, t *tenancy.Tenant, query string, args ...any) (isolation.Rows, error) {
	tdb, err := p.acquire(ctx, t)
	if err != nil {
		return nil, err
	}
	rows, err := tdb.db.QueryContext(ctx, query, args...)
	if err != nil {
		p.release(tdb)
		return nil, err
	}
	return &sqlRows{Rows: rows, release: func() { p.release(tdb) }}, nil
}

// QueryRow implements isolation.Provider.
func (p *Provider) QueryRow(ctx context.Context, t *tenancy.Tenant, query string, args ...any) isolation.Row {
	return isolation.RowOf(p.Query(ctx, t, query, args...))
}

// Tx implements isolation.Provider.
func (p *Provider) Tx(ctx context.Context, t *tenancy.Tenant, fn func(isolation.Tx) error) error {
	tdb, err := p.acquire(ctx, t)
	if err != nil {
		return err
	}
	defer p.release(tdb)
	tx, err := tdb.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	// Rollback after Commit is a no-op; this one undoes a failed or
	// panicking fn.
	defer func() { _ = tx.Rollback() }()
	if err := fn(&sqlTx{tx: tx}); err != nil {
		return err
	}
	return tx.Commit()
}

// Close implements isolation.Provider: it closes every tenant database.
func (p *Provider) Close() {
	p.mu.Lock()
	p.done = true
	var dbs []*sql.DB
	for _, tdb := range p.dbs {
		dbs = append(dbs, tdb.db)
		p.remove(tdb)
	}
	p.mu.Unlock()
	for _, db := range dbs {
		_ = db.Close()
	}
}

func (p *Provider) acquire(ctx context.Context, t *tenancy.Tenant) (*tenantDB, error) {
	path, err := p.Path(t)
	if err != nil {
		return nil, err
	}
	for {
		p.mu.Lock()
		if p.done {
			p.mu.Unlock()
			return nil, errors.New("isolation/sqlite: provider is closed")
		}
		if tdb, ok := p.dbs[path]; ok {
			tdb.refs++
			p.lru.MoveToFront(tdb.el)
			p.mu.Unlock()
			return tdb, nil
		}
		var evicted *sql.DB
		if len(p.dbs) >= p.cfg.MaxOpen {
			for el := p.lru.Back(); el != nil; el = el.Prev() {
				if v := el.Value.(*tenantDB); v.refs == 0 {
					evicted = v.db
					p.remove(v)
					break
				}
			}
		}
		if len(p.dbs) < p.cfg.MaxOpen {
			db, err := p.Open(path)
			if err != nil {
				p.mu.Unlock()
				return nil, fmt.Errorf("open tenant database: %w", err)
			}
			tdb := &tenantDB{path: path, db: db, refs: 1}
			tdb.el = p.lru.PushFront(tdb)
			p.dbs[path] = tdb
			p.mu.Unlock()
			if evicted != nil {
				_ = evicted.Close()
			}
			return tdb, nil
		}
		freed := p.freed
		p.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a tenant database: %w", ctx.Err())
		}
	}
}

func (p *Provider) release(tdb *tenantDB) {
	p.mu.Lock()
	tdb.refs--
	if tdb.refs == 0 {
		close(p.freed)
		p.freed = make(chan struct{})
	}
	p.mu.Unlock()
}

// remove forgets tdb and wakes waiters for a free slot; p.mu is held and the
// caller closes its handle.
func (p *Provider) remove(tdb *tenantDB) {
	if p.dbs[tdb.path] != tdb {
		return
	}
	delete(p.dbs, tdb.path)
	p.lru.Remove(tdb.el)
	close(p.freed)
	p.freed = make(chan struct{})
}

// OpenCount reports how many tenant databases are open.
func (p *Provider) OpenCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.dbs)
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

type sqlTx struct{ tx *sql.Tx }

func (t *sqlTx) Pgx() pgx.Tx  { return nil }
func (t *sqlTx) SQL() *sql.Tx { return t.tx }

func (t *sqlTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return execDB(ctx, t.tx, query, args)
}

func (t *sqlTx) Query(ctx context.Context, query string, args ...any) (isolation.Rows, error) {
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
