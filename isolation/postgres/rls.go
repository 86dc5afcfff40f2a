package postgres

import (
	"context"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RLS keeps every tenant's rows in shared tables guarded by row-level
// security. Each statement runs in a transaction (the implicit one of a
// pipeline, or an explicit one from Tx or Begin) that first sets the tenant,
// the tenant role and the search path (the server's default, ending in
// pg_temp), in one statement and the same round trip.
type RLS struct {
	core
	servers map[string]*server
	scopes  scopeCache
}

var _ isolation.Provider = (*RLS)(nil)

// NewRLS returns an RLS provider on pool. It makes sure the tenant role
// exists, that pool's user may switch to it and that it may not create
// temporary objects (see EnsureRole).
func NewRLS(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*RLS, error) {
	servers, err := openServers(ctx, pool, &cfg)
	if err != nil {
		return nil, err
	}
	p := &RLS{servers: servers}
	p.core = core{cfg: cfg, strat: p}
	return p, nil
}

func (p *RLS) locate(_ context.Context, t *tenancy.Tenant) (location, error) {
	if t == nil {
		return location{}, tenancy.ErrNoTenant
	}
	srv, err := serverFor(p.servers, t)
	if err != nil {
		return location{}, err
	}
	sc, err := p.scopes.get(t, func() (*scope, error) { return newScope(tenancy.IsolationRLS, t, p.cfg.Role, srv.path), nil })
	if err != nil {
		return location{}, err
	}
	return location{pool: srv.pool, exec: srv.exec, scope: sc}, nil
}

// Role returns the tenant role.
func (p *RLS) Role() string { return p.cfg.Role }

// Pool returns the pool of tenants without a Placement.
func (p *RLS) Pool() *pgxpool.Pool { return p.servers[""].pool }

// Initialize implements isolation.Provider. Shared tables need nothing per
// tenant, so it only validates t and its placement.
func (p *RLS) Initialize(ctx context.Context, t *tenancy.Tenant) error {
	_, err := p.locate(ctx, t)
	return err
}

// Destroy implements isolation.Provider: it deletes t's rows from every
// tenant table (a table with the tenant column, in any schema but the
// excluded ones and tenant schemas), children before parents, in one
// transaction per server run in t's scope, confined to t's rows by its
// WHERE clause and by the policies. It does so on every server, not only
// the one t is placed on, so that rows left behind by a move go too. A
// foreign key between tenant tables that leaves out the tenant column could
// tie another tenant's rows to t's, so when one exists nothing is deleted
// there and the error names it.
func (p *RLS) Destroy(ctx context.Context, t *tenancy.Tenant) error {
	if _, err := p.locate(ctx, t); err != nil {
		return err
	}
	for _, name := range sortedNames(p.servers) {
		if err := p.destroyOn(ctx, onServer(t, name), p.servers[name]); err != nil {
			return serverErr(p.servers, name, err)
		}
	}
	return nil
}

func (p *RLS) destroyOn(ctx context.Context, t *tenancy.Tenant, srv *server) error {
	cat := catalog{col: p.cfg.TenantColumn, exclude: p.cfg.ExcludeSchemas}
	if err := cat.refuseLooseKeys(ctx, srv.pool); err != nil {
		return fmt.Errorf("destroy tenant %s: %w", t.Identifier, err)
	}
	tables, err := cat.sharedTables(ctx, srv.pool)
	if err != nil {
		return err
	}
	return p.Tx(ctx, t, func(tx isolation.Tx) error {
		for _, tbl := range tables {
			if _, err := tx.Exec(ctx, "DELETE FROM "+tbl.sanitized()+" WHERE "+p.cfg.TenantColumn+" = $1", t.ID); err != nil {
				return fmt.Errorf("delete tenant rows from %s: %w", tbl, err)
			}
		}
		return nil
	})
}

// Residue implements isolation.ResidueChecker: rows of t left in tenant
// tables of any schema (as Destroy finds them) on any server, counted in
// t's own scope.
func (p *RLS) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	if _, err := p.locate(ctx, t); err != nil {
		return nil, err
	}
	var out []string
	for _, name := range sortedNames(p.servers) {
		tn := onServer(t, name)
		cat := catalog{col: p.cfg.TenantColumn, exclude: p.cfg.ExcludeSchemas}
		tables, err := cat.sharedTables(ctx, p.servers[name].pool)
		if err != nil {
			return nil, serverErr(p.servers, name, err)
		}
		for _, tbl := range tables {
			var n int64
			if err := p.QueryRow(ctx, tn, "SELECT count(*) FROM "+tbl.sanitized()+" WHERE "+p.cfg.TenantColumn+" = $1", t.ID).Scan(&n); err != nil {
				return nil, serverErr(p.servers, name, fmt.Errorf("count rows of %s: %w", tbl, err))
			}
			if n > 0 {
				out = append(out, onServerMsg(p.servers, name, fmt.Sprintf("%d rows in %s", n, tbl)))
			}
		}
	}
	return out, nil
}

// Targets implements isolation.Migratable: the shared tables of every
// server tenants are placed on, the default server's always.
func (p *RLS) Targets(tenants []*tenancy.Tenant) ([]isolation.Target, error) {
	out := []isolation.Target{p.target(p.servers[""].pool, SharedTarget, nil, targetPlace{})}
	seen := map[string]bool{"": true}
	for _, t := range tenants {
		if t == nil {
			return nil, tenancy.ErrNoTenant
		}
		if seen[serverName(t.Placement)] {
			continue
		}
		seen[serverName(t.Placement)] = true
		srv, err := serverFor(p.servers, t)
		if err != nil {
			return nil, err
		}
		out = append(out, p.target(srv.pool, SharedTarget+"/"+t.Placement, nil, targetPlace{}))
	}
	return out, nil
}
