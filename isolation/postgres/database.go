package postgres

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DatabaseConfig configures database-per-tenant isolation.
type DatabaseConfig struct {
	// Config.Placements maps a tenant's Placement to a pool on the server
	// that holds its database; that pool's user creates and drops tenant
	// databases there, and tenant pools copy its connection settings.
	Config
	// Prefix starts every tenant database name; see isolation.Name.
	// Default isolation.DefaultPrefix ("tenant_").
	Prefix string
	// MaxConnsPerTenant caps each tenant's pool. Default 4.
	MaxConnsPerTenant int32
	// MaxTotalConns caps the connections of all tenant pools together: a
	// tenant pool is opened only when its MaxConnsPerTenant fits, after
	// closing least recently used idle pools; otherwise the call waits for
	// one to become idle. Default 64.
	MaxTotalConns int
	// IdleTimeout closes a tenant pool unused for that long. Default 5m.
	IdleTimeout time.Duration
}

// Database gives every tenant its own PostgreSQL database. Tenant pools are
// opened lazily, capped in total and closed when idle; statements run with
// app.tenant_id and the tenant role set exactly as in RLS, so one migration
// set, policies included, serves every strategy.
type Database struct {
	s      *shared
	cfg    DatabaseConfig
	mu     sync.Mutex
	pools  map[string]*tenantPool // by placement and database name
	lru    list.List              // of *tenantPool, most recently used first
	open   int                    // sum of MaxConns of open pools
	freed  chan struct{}          // closed and replaced whenever a pool is released
	stop   chan struct{}
	closed sync.WaitGroup
}

type tenantPool struct {
	key      string
	pool     *pgxpool.Pool
	exec     *executor
	refs     int
	lastUsed time.Time
	el       *list.Element
}

var _ isolation.Provider = (*Database)(nil)

// NewDatabase returns a database-per-tenant provider. admin's user must be
// allowed to create databases (CREATEDB) for Initialize.
func NewDatabase(ctx context.Context, admin *pgxpool.Pool, cfg DatabaseConfig) (*Database, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = isolation.DefaultPrefix
	}
	if err := isolation.ValidatePrefix(cfg.Prefix); err != nil {
		return nil, err
	}
	if cfg.MaxConnsPerTenant <= 0 {
		cfg.MaxConnsPerTenant = 4
	}
	if cfg.MaxTotalConns <= 0 {
		cfg.MaxTotalConns = 64
	}
	if cfg.MaxTotalConns < int(cfg.MaxConnsPerTenant) {
		return nil, fmt.Errorf("tenancy: MaxTotalConns %d is below MaxConnsPerTenant %d", cfg.MaxTotalConns, cfg.MaxConnsPerTenant)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	s, err := newShared(ctx, admin, cfg.Config)
	if err != nil {
		return nil, err
	}
	d := &Database{
		s:     s,
		cfg:   cfg,
		pools: make(map[string]*tenantPool),
		freed: make(chan struct{}),
		stop:  make(chan struct{}),
	}
	d.closed.Add(1)
	go d.evictIdle()
	return d, nil
}

// Role returns the tenant role.
func (p *Database) Role() string { return p.s.cfg.Role }

// DatabaseName returns the name of t's database.
func (p *Database) DatabaseName(t *tenancy.Tenant) (string, error) {
	if t == nil {
		return "", tenancy.ErrNoTenant
	}
	return isolation.Name(p.cfg.Prefix, t.Identifier)
}

// locate validates t and returns its database name and the admin pool of
// the server holding it.
func (p *Database) locate(t *tenancy.Tenant) (string, *pgxpool.Pool, error) {
	if err := isolation.CheckTenant(t); err != nil {
		return "", nil, err
	}
	name, err := isolation.Name(p.cfg.Prefix, t.Identifier)
	if err != nil {
		return "", nil, err
	}
	admin, _, err := p.s.poolFor(t)
	if err != nil {
		return "", nil, err
	}
	return name, admin, nil
}

// ConnConfig returns a connection configuration for t's database, with the
// settings of the server's admin pool: migrations connect with it.
func (p *Database) ConnConfig(t *tenancy.Tenant) (*pgx.ConnConfig, error) {
	name, admin, err := p.locate(t)
	if err != nil {
		return nil, err
	}
	cc := admin.Config().ConnConfig.Copy()
	cc.Database = name
	return cc, nil
}

// Dialect implements isolation.Provider.
func (p *Database) Dialect() isolation.Dialect { return isolation.Postgres }

// Initialize implements isolation.Provider: it creates t's database (outside
// any transaction, as PostgreSQL requires) and grants the tenant role use of
// its public schema, including tables created later by the same user.
func (p *Database) Initialize(ctx context.Context, t *tenancy.Tenant) error {
	name, admin, err := p.locate(t)
	if err != nil {
		return err
	}
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if !exists {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil && pgCode(err) != "42P04" {
			return fmt.Errorf("create database %s: %w", name, err)
		}
	}
	tp, err := p.acquire(ctx, t)
	if err != nil {
		return err
	}
	defer p.release(tp)
	return GrantSchema(ctx, tp.pool, "public", p.s.cfg.Role)
}

// Destroy implements isolation.Provider: it closes t's pool and drops its
// database, ending any session still connected to it.
func (p *Database) Destroy(ctx context.Context, t *tenancy.Tenant) error {
	name, admin, err := p.locate(t)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if tp, ok := p.pools[placementKey(t)+name]; ok {
		p.remove(tp)
		defer tp.pool.Close()
	}
	p.mu.Unlock()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

func (p *Database) scope(t *tenancy.Tenant) scope {
	return scope{tenantID: t.ID, role: p.s.cfg.Role}
}

// Exec implements isolation.Provider.
func (p *Database) Exec(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) (int64, error) {
	rows, err := p.Query(ctx, t, sql, args...)
	if err != nil {
		return 0, err
	}
	return drain(rows)
}

// Query implements isolation.Provider.
func (p *Database) Query(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) (isolation.Rows, error) {
	if err := isolation.CheckTenant(t); err != nil {
		return nil, err
	}
	tp, err := p.acquire(ctx, t)
	if err != nil {
		return nil, err
	}
	sc := p.scope(t)
	rows, err := tp.exec.query(ctx, tp.pool, &sc, sql, args)
	if err != nil {
		p.release(tp)
		return nil, err
	}
	return &releasingRows{Rows: rows, release: func() { p.release(tp) }}, nil
}

// QueryRow implements isolation.Provider.
func (p *Database) QueryRow(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) isolation.Row {
	return isolation.RowOf(p.Query(ctx, t, sql, args...))
}

// Tx implements isolation.Provider.
func (p *Database) Tx(ctx context.Context, t *tenancy.Tenant, fn func(isolation.Tx) error) error {
	if err := isolation.CheckTenant(t); err != nil {
		return err
	}
	tp, err := p.acquire(ctx, t)
	if err != nil {
		return err
	}
	defer p.release(tp)
	sc := p.scope(t)
	return runTx(ctx, tp.pool, tp.exec, &sc, fn)
}

// Close implements isolation.Provider: it closes every tenant pool.
func (p *Database) Close() {
	p.mu.Lock()
	select {
	case <-p.stop:
		p.mu.Unlock()
		return
	default:
	}
	close(p.stop)
	var pools []*pgxpool.Pool
	for _, tp := range p.pools {
		pools = append(pools, tp.pool)
		p.remove(tp)
	}
	p.mu.Unlock()
	for _, pool := range pools {
		pool.Close()
	}
	p.closed.Wait()
}

// OpenPools reports how many tenant pools are open and their total
// connection cap.
func (p *Database) OpenPools() (pools, conns int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pools), p.open
}

// acquire returns t's pool, opening it when needed, and holds it open until
// release.
func (p *Database) acquire(ctx context.Context, t *tenancy.Tenant) (*tenantPool, error) {
	name, admin, err := p.locate(t)
	if err != nil {
		return nil, err
	}
	for {
		p.mu.Lock()
		select {
		case <-p.stop:
			p.mu.Unlock()
			return nil, fmt.Errorf("tenancy: database provider is closed")
		default:
		}
		if tp, ok := p.pools[placementKey(t)+name]; ok {
			tp.refs++
			p.lru.MoveToFront(tp.el)
			p.mu.Unlock()
			return tp, nil
		}
		perPool := int(p.cfg.MaxConnsPerTenant)
		var evicted []*pgxpool.Pool
		for p.open+perPool > p.cfg.MaxTotalConns {
			victim := p.idleVictim()
			if victim == nil {
				break
			}
			evicted = append(evicted, victim.pool)
			p.remove(victim)
		}
		if p.open+perPool <= p.cfg.MaxTotalConns {
			tp, err := p.openPool(admin, placementKey(t)+name, name)
			p.mu.Unlock()
			for _, pool := range evicted {
				pool.Close()
			}
			return tp, err
		}
		freed := p.freed
		p.mu.Unlock()
		for _, pool := range evicted {
			pool.Close()
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a tenant database connection: %w", ctx.Err())
		}
	}
}

// openPool opens a pool on database name of admin's server, kept under key
// (placement and name, so that equal names on two servers stay apart); p.mu
// is held. pgxpool connects lazily, so this does no I/O.
func (p *Database) openPool(admin *pgxpool.Pool, key, name string) (*tenantPool, error) {
	cfg := admin.Config().Copy()
	cfg.ConnConfig.Database = name
	cfg.MaxConns = p.cfg.MaxConnsPerTenant
	cfg.MinConns, cfg.MinIdleConns = 0, 0
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool for database %s: %w", name, err)
	}
	tp := &tenantPool{key: key, pool: pool, exec: newExecutor(pool, p.s.cfg.StatementCacheCapacity), refs: 1}
	tp.el = p.lru.PushFront(tp)
	p.pools[key] = tp
	p.open += int(p.cfg.MaxConnsPerTenant)
	return tp, nil
}

// idleVictim returns the least recently used pool nobody holds; p.mu is held.
func (p *Database) idleVictim() *tenantPool {
	for el := p.lru.Back(); el != nil; el = el.Prev() {
		if tp := el.Value.(*tenantPool); tp.refs == 0 {
			return tp
		}
	}
	return nil
}

// remove forgets tp; p.mu is held. The caller closes its pool.
func (p *Database) remove(tp *tenantPool) {
	if p.pools[tp.key] != tp {
		return
	}
	delete(p.pools, tp.key)
	p.lru.Remove(tp.el)
	p.open -= int(p.cfg.MaxConnsPerTenant)
	close(p.freed)
	p.freed = make(chan struct{})
}

func (p *Database) release(tp *tenantPool) {
	p.mu.Lock()
	tp.refs--
	tp.lastUsed = time.Now()
	if tp.refs == 0 {
		close(p.freed)
		p.freed = make(chan struct{})
	}
	p.mu.Unlock()
}

// evictIdle closes pools left unused for IdleTimeout.
func (p *Database) evictIdle() {
	defer p.closed.Done()
	tick := time.NewTicker(max(p.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-tick.C:
			var idle []*pgxpool.Pool
			p.mu.Lock()
			for el := p.lru.Back(); el != nil; {
				tp := el.Value.(*tenantPool)
				el = el.Prev()
				if tp.refs == 0 && now.Sub(tp.lastUsed) >= p.cfg.IdleTimeout {
					idle = append(idle, tp.pool)
					p.remove(tp)
				}
			}
			p.mu.Unlock()
			for _, pool := range idle {
				pool.Close()
			}
		}
	}
}

// releasingRows releases the tenant pool when the rows are closed.
type releasingRows struct {
	isolation.Rows
	release func()
	done    bool
}

func (r *releasingRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

// CommandTag reports the command's tag, for Exec's rows affected.
func (r *releasingRows) CommandTag() pgconn.CommandTag {
	if ct, ok := r.Rows.(interface{ CommandTag() pgconn.CommandTag }); ok {
		return ct.CommandTag()
	}
	return pgconn.CommandTag{}
}

func (r *releasingRows) Close() {
	r.Rows.Close()
	if !r.done {
		r.done = true
		r.release()
	}
}
