package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/poolcache"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
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
	// one to become idle, as long as its context allows. Default 64.
	MaxTotalConns int
	// IdleTimeout closes a tenant pool unused for that long. Default 5m.
	IdleTimeout time.Duration
}

// Database gives every tenant its own PostgreSQL database. Tenant pools are
// opened lazily, capped in total and closed when idle; statements run with
// the tenant and the tenant role set exactly as in RLS, so one migration
// set, policies included, serves every strategy.
type Database struct {
	core
	servers map[string]*server
	scopes  scopeCache
	prefix  string
	perPool int32
	pools   *poolcache.Cache[string, *tenantPool]
}

// tenantPool is the pool of one tenant database and its executor.
type tenantPool struct {
	pool *pgxpool.Pool
	exec *executor
}

var _ isolation.Provider = (*Database)(nil)

// NewDatabase returns a database-per-tenant provider. admin's user must be
// allowed to create databases (CREATEDB) for Initialize.
func NewDatabase(ctx context.Context, admin *pgxpool.Pool, cfg DatabaseConfig) (*Database, error) {
	if cfg.Citus {
		return nil, errors.New("tenancy: Citus mode is for RLS and Schema, not a database per tenant")
	}
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
	servers, err := openServers(ctx, admin, &cfg.Config)
	if err != nil {
		return nil, err
	}
	pools, err := poolcache.New[string](poolcache.Config[*tenantPool]{
		MaxWeight:   cfg.MaxTotalConns,
		IdleTimeout: cfg.IdleTimeout,
		Close:       func(tp *tenantPool) { tp.pool.Close() },
	})
	if err != nil {
		return nil, err
	}
	p := &Database{servers: servers, prefix: cfg.Prefix, perPool: cfg.MaxConnsPerTenant, pools: pools}
	p.core = core{cfg: cfg.Config, strat: p}
	return p, nil
}

// place validates t and returns its database name and the server holding
// it.
func (p *Database) place(t *tenancy.Tenant) (string, *server, error) {
	if err := isolation.CheckTenant(t); err != nil {
		return "", nil, err
	}
	name, err := isolation.Name(p.prefix, t.Identifier)
	if err != nil {
		return "", nil, err
	}
	srv, err := serverFor(p.servers, t)
	if err != nil {
		return "", nil, err
	}
	return name, srv, nil
}

func (p *Database) locate(ctx context.Context, t *tenancy.Tenant) (location, error) {
	if t == nil {
		return location{}, tenancy.ErrNoTenant
	}
	sc, err := p.scopes.get(t, func() (*scope, error) {
		name, srv, err := p.place(t)
		if err != nil {
			return nil, err
		}
		sc := newScope(tenancy.IsolationDatabase, t, p.cfg.Role, srv.path)
		sc.name = name
		return sc, nil
	})
	if err != nil {
		return location{}, err
	}
	srv, err := serverFor(p.servers, t)
	if err != nil {
		return location{}, err
	}
	name := sc.name
	h, err := p.pools.Acquire(ctx, placementKey(t)+name, int(p.perPool), func() (*tenantPool, error) {
		return p.openPool(srv.pool, name)
	})
	if err != nil {
		return location{}, fmt.Errorf("tenancy: tenant %s database: %w", t.Identifier, err)
	}
	tp := h.Value()
	return location{pool: tp.pool, exec: tp.exec, scope: sc, release: h.Release}, nil
}

// openPool opens a pool on database name of admin's server. pgxpool
// connects lazily, so this does no I/O.
func (p *Database) openPool(admin *pgxpool.Pool, name string) (*tenantPool, error) {
	cfg := admin.Config().Copy()
	cfg.ConnConfig.Database = name
	cfg.MaxConns = p.perPool
	cfg.MinConns, cfg.MinIdleConns = 0, 0
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool for database %s: %w", name, err)
	}
	return &tenantPool{pool: pool, exec: newExecutor(&p.cfg)}, nil
}

// Role returns the tenant role.
func (p *Database) Role() string { return p.cfg.Role }

// DatabaseName returns the name of t's database.
func (p *Database) DatabaseName(t *tenancy.Tenant) (string, error) {
	if t == nil {
		return "", tenancy.ErrNoTenant
	}
	return isolation.Name(p.prefix, t.Identifier)
}

// ConnConfig returns a connection configuration for t's database, with the
// settings of the server's admin pool: migrations connect with it.
func (p *Database) ConnConfig(t *tenancy.Tenant) (*pgx.ConnConfig, error) {
	name, srv, err := p.place(t)
	if err != nil {
		return nil, err
	}
	cc := srv.pool.Config().ConnConfig.Copy()
	cc.Database = name
	return cc, nil
}

// Initialize implements isolation.Provider: it creates t's database (outside
// any transaction, as PostgreSQL requires), takes the TEMPORARY privilege
// from PUBLIC there, and grants the tenant role use of its public schema,
// including tables created later by the same user.
func (p *Database) Initialize(ctx context.Context, t *tenancy.Tenant) error {
	name, srv, err := p.place(t)
	if err != nil {
		return err
	}
	var exists bool
	if err := srv.pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", simple, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	ident := pgx.Identifier{name}.Sanitize()
	if !exists {
		if _, err := srv.pool.Exec(ctx, "CREATE DATABASE "+ident); err != nil && pgCode(err) != "42P04" {
			return fmt.Errorf("create database %s: %w", name, err)
		}
	}
	if _, err := srv.pool.Exec(ctx, "REVOKE TEMPORARY ON DATABASE "+ident+" FROM PUBLIC"); err != nil {
		return fmt.Errorf("revoke temporary on database %s: %w", name, err)
	}
	loc, err := p.locate(ctx, t)
	if err != nil {
		return err
	}
	defer loc.done()
	return GrantSchema(ctx, loc.pool, "public", p.cfg.Role)
}

// Destroy implements isolation.Provider: it closes t's pools and drops its
// database, ending any session still connected to it, on every server (a
// move may have left a copy behind).
func (p *Database) Destroy(ctx context.Context, t *tenancy.Tenant) error {
	name, _, err := p.place(t)
	if err != nil {
		return err
	}
	for _, srvName := range sortedNames(p.servers) {
		p.pools.Remove(placementKey(onServer(t, srvName)) + name)
		if _, err := p.servers[srvName].pool.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return serverErr(p.servers, srvName, fmt.Errorf("drop database %s: %w", name, err))
		}
	}
	return nil
}

// Residue implements isolation.ResidueChecker: t's database, on any server.
func (p *Database) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	name, _, err := p.place(t)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, srvName := range sortedNames(p.servers) {
		var exists bool
		if err := p.servers[srvName].pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", simple, name).Scan(&exists); err != nil {
			return nil, serverErr(p.servers, srvName, fmt.Errorf("look up database %s: %w", name, err))
		}
		if exists {
			out = append(out, onServerMsg(p.servers, srvName, "database "+name))
		}
	}
	return out, nil
}

// Targets implements isolation.Migratable: one database per tenant.
func (p *Database) Targets(tenants []*tenancy.Tenant) ([]isolation.Target, error) {
	out := make([]isolation.Target, 0, len(tenants))
	for _, t := range tenants {
		name, srv, err := p.place(t)
		if err != nil {
			return nil, err
		}
		out = append(out, p.target(srv.pool, "database/"+placementKey(t)+name, t, targetPlace{database: name}))
	}
	return out, nil
}

// Close implements isolation.Provider: it closes every tenant pool.
func (p *Database) Close() { p.pools.Close() }

// OpenPools reports how many tenant pools are open and their total
// connection cap.
func (p *Database) OpenPools() (pools, conns int) { return p.pools.Stats() }
