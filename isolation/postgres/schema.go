package postgres

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaConfig configures schema-per-tenant isolation.
type SchemaConfig struct {
	Config
	// Prefix starts every tenant schema name; see isolation.Name.
	// Default isolation.DefaultPrefix ("tenant_").
	Prefix string
	// Partitions, when above one, splits the connections of the provider's
	// own pool (tenants without a Placement) into that many pools, each of
	// MaxConns/Partitions connections (at least one), and runs each
	// tenant's statements in the pool its ID hashes to. Each server
	// process then sees only its partition's schemas: it caches the catalog
	// entries and prepares the statements of 1/Partitions of the tenants,
	// which shortens the warm-up after a start and bounds the server memory
	// per connection (see the package documentation). The partition pools
	// are opened from the pool's configuration and closed by Close; the
	// pool itself keeps serving provisioning, migrations and Pool.
	// Default 0: one pool.
	Partitions int
}

// Schema gives every tenant its own schema. Each statement runs with the
// search path set to the tenant's schema and pg_temp (never public: a table
// missing there is an error, not a read of a shared table), and with the
// tenant and the tenant role set as in RLS. The tables of a tenant schema
// carry its boundary policies (see SealSchema, which its migrations apply),
// so a statement in one tenant's scope that names another tenant's schema
// reads nothing and cannot write, whether or not the table has a tenant
// column.
type Schema struct {
	core
	servers map[string]*server
	scopes  scopeCache
	prefix  string
	// parts are the partitions of the default server, when configured.
	parts []*server
}

var _ isolation.Provider = (*Schema)(nil)

// NewSchema returns a schema-per-tenant provider on pool.
func NewSchema(ctx context.Context, pool *pgxpool.Pool, cfg SchemaConfig) (*Schema, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = isolation.DefaultPrefix
	}
	if err := isolation.ValidatePrefix(cfg.Prefix); err != nil {
		return nil, err
	}
	servers, err := openServers(ctx, pool, &cfg.Config)
	if err != nil {
		return nil, err
	}
	p := &Schema{servers: servers, prefix: cfg.Prefix}
	p.core = core{cfg: cfg.Config, strat: p}
	if cfg.Partitions < 0 {
		return nil, fmt.Errorf("tenancy: %d partitions: must not be negative", cfg.Partitions)
	}
	if cfg.Partitions > 1 {
		def := servers[""]
		conns := max(1, def.pool.Config().MaxConns/int32(cfg.Partitions))
		for range cfg.Partitions {
			pc := def.pool.Config().Copy()
			pc.MaxConns, pc.MinConns = conns, min(pc.MinConns, conns)
			part, err := pgxpool.NewWithConfig(ctx, pc)
			if err != nil {
				p.Close()
				return nil, fmt.Errorf("tenancy: open partition pool: %w", err)
			}
			p.parts = append(p.parts, &server{pool: part, exec: &executor{named: def.exec.named, capacity: def.exec.capacity}, path: def.path})
		}
	}
	return p, nil
}

// Close closes the partition pools, if any; the pools the provider was
// given stay open.
func (p *Schema) Close() {
	for _, s := range p.parts {
		s.pool.Close()
	}
}

// partition returns the server of t's partition: a hash of its ID picks
// one, the same in every process.
func (p *Schema) partition(t *tenancy.Tenant) *server {
	h := fnv.New32a()
	_, _ = h.Write([]byte(t.ID))
	return p.parts[h.Sum32()%uint32(len(p.parts))]
}

func (p *Schema) locate(_ context.Context, t *tenancy.Tenant) (location, error) {
	if t == nil {
		return location{}, tenancy.ErrNoTenant
	}
	srv, err := serverFor(p.servers, t)
	if err != nil {
		return location{}, err
	}
	if len(p.parts) > 0 && t.Placement == "" {
		srv = p.partition(t)
	}
	sc, err := p.scopes.get(t, func() (*scope, error) {
		name, err := isolation.Name(p.prefix, t.Identifier)
		if err != nil {
			return nil, err
		}
		return newScope(tenancy.IsolationSchema, t, p.cfg.Role, pgx.Identifier{name}.Sanitize()+", pg_temp"), nil
	})
	if err != nil {
		return location{}, err
	}
	return location{pool: srv.pool, exec: srv.exec, scope: sc}, nil
}

// place validates t and returns its schema name and the pool of its server.
func (p *Schema) place(t *tenancy.Tenant) (string, *pgxpool.Pool, error) {
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
	return name, srv.pool, nil
}

// Role returns the tenant role.
func (p *Schema) Role() string { return p.cfg.Role }

// Prefix returns the schema name prefix.
func (p *Schema) Prefix() string { return p.prefix }

// SchemaName returns the name of t's schema.
func (p *Schema) SchemaName(t *tenancy.Tenant) (string, error) {
	if t == nil {
		return "", tenancy.ErrNoTenant
	}
	return isolation.Name(p.prefix, t.Identifier)
}

// Pool returns the pool of tenants without a Placement.
func (p *Schema) Pool() *pgxpool.Pool { return p.servers[""].pool }

// PoolFor returns the pool of the server holding t's schema.
func (p *Schema) PoolFor(t *tenancy.Tenant) (*pgxpool.Pool, error) {
	_, pool, err := p.place(t)
	return pool, err
}

// Initialize implements isolation.Provider: it creates t's schema, grants
// the tenant role its use, and seals the tables already in it (none, for a
// new schema; migrations seal the ones they create).
func (p *Schema) Initialize(ctx context.Context, t *tenancy.Tenant) error {
	name, pool, err := p.place(t)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		// Two concurrent CREATE SCHEMA IF NOT EXISTS may race on the catalog's
		// unique index; the schema exists either way.
		if pgCode(err) != "23505" {
			return fmt.Errorf("create schema %s: %w", name, err)
		}
	}
	if err := GrantSchema(ctx, pool, name, p.cfg.Role); err != nil {
		return err
	}
	if p.cfg.Citus {
		return SealSchemaCitus(ctx, pool, name, t.ID)
	}
	return SealSchema(ctx, pool, name, t.ID)
}

// Destroy implements isolation.Provider: it drops t's schema and everything
// in it, on every server (a move may have left a copy behind). A foreign key
// from a table outside the schema into it would be dropped with it, silently
// changing another schema, so when one exists nothing is dropped there and
// the error names it.
func (p *Schema) Destroy(ctx context.Context, t *tenancy.Tenant) error {
	name, _, err := p.place(t)
	if err != nil {
		return err
	}
	for _, srvName := range sortedNames(p.servers) {
		pool := p.servers[srvName].pool
		if err := refuseKeysInto(ctx, pool, name); err != nil {
			return serverErr(p.servers, srvName, fmt.Errorf("destroy tenant %s: %w", t.Identifier, err))
		}
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			return serverErr(p.servers, srvName, fmt.Errorf("drop schema %s: %w", name, err))
		}
	}
	return nil
}

// Residue implements isolation.ResidueChecker: t's schema, on any server.
func (p *Schema) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	name, _, err := p.place(t)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, srvName := range sortedNames(p.servers) {
		var exists bool
		if err := p.servers[srvName].pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", simple, name).Scan(&exists); err != nil {
			return nil, serverErr(p.servers, srvName, fmt.Errorf("look up schema %s: %w", name, err))
		}
		if exists {
			out = append(out, onServerMsg(p.servers, srvName, "schema "+name))
		}
	}
	return out, nil
}

// Targets implements isolation.Migratable: one schema per tenant, migrated
// with the tenant set and sealed after every change.
func (p *Schema) Targets(tenants []*tenancy.Tenant) ([]isolation.Target, error) {
	out := make([]isolation.Target, 0, len(tenants))
	for _, t := range tenants {
		name, pool, err := p.place(t)
		if err != nil {
			return nil, err
		}
		out = append(out, p.target(pool, "schema/"+placementKey(t)+name, t, targetPlace{schema: name}))
	}
	return out, nil
}

// placementKey prefixes target and pool keys of tenants placed off the
// default server, so that equal names on two servers stay apart.
func placementKey(t *tenancy.Tenant) string {
	if serverName(t.Placement) == "" {
		return ""
	}
	return t.Placement + "/"
}
