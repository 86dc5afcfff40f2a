package postgres

import (
	"context"

	"github.com/go-tenancy/tenancy"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TenantPool gives tests the open pool of t's database, to inspect its
// connections after use. It reports false when the pool cannot be opened.
func TenantPool(p *Database, t *tenancy.Tenant) (*pgxpool.Pool, func(), bool) {
	loc, err := p.locate(context.Background(), t)
	if err != nil {
		return nil, nil, false
	}
	return loc.pool, loc.done, true
}
