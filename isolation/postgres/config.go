package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-tenancy/tenancy"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Pooler says what sits between the provider's pools and PostgreSQL.
type Pooler int

const (
	// PoolerNone: connections reach PostgreSQL directly, so a statement
	// prepared on a connection stays there. Statements are prepared once per
	// connection and search path, under names of the provider's own.
	PoolerNone Pooler = iota
	// PoolerTransaction: a transaction-pooling proxy, such as PgBouncer with
	// pool_mode = transaction. Consecutive transactions of one client
	// connection may run on different server connections, where a named
	// statement of another client could answer to the same name (PgBouncer
	// before 1.21 passes names through unchanged), so only unnamed
	// statements are sent. Their descriptions are still cached, so a warm
	// statement costs one round trip; the server parses it each time.
	PoolerTransaction
	// PoolerTransactionPrepared: PgBouncer 1.21 or later in transaction mode
	// with max_prepared_statements above zero, which tracks named statements
	// per client itself. Statements are prepared by name as with PoolerNone;
	// the value exists so that the start-up probe does not warn.
	PoolerTransactionPrepared
)

func (p Pooler) String() string {
	switch p {
	case PoolerNone:
		return "none"
	case PoolerTransaction:
		return "transaction"
	case PoolerTransactionPrepared:
		return "transaction-prepared"
	}
	return fmt.Sprintf("Pooler(%d)", int(p))
}

// named reports whether statements may be prepared under names.
func (p Pooler) named() bool { return p != PoolerTransaction }

// DefaultTenantColumn is the column that holds a row's tenant ID unless
// Config.TenantColumn says otherwise.
const DefaultTenantColumn = "tenant_id"

// Config is shared by the PostgreSQL strategies.
type Config struct {
	// Role is the role tenant statements run as. It must not be superuser,
	// have BYPASSRLS, own tenant tables or hold the TEMPORARY privilege on
	// the database. It is created (NOLOGIN) and granted to the connecting
	// user when missing, if that user may; see EnsureRole. Default
	// DefaultRole.
	Role string
	// Placements maps a tenant's Placement to the pool of the server holding
	// it. A tenant with an empty Placement uses the provider's own pool; one
	// whose Placement is not listed is refused with
	// isolation.ErrUnknownPlacement. Default: none.
	Placements map[string]*pgxpool.Pool
	// Citus says the servers are Citus coordinators (RLS over tables
	// distributed on the tenant column, or a schema per tenant under
	// schema-based sharding). The tenant is then set with SET LOCAL inside
	// an explicit transaction, with citus.propagate_set_commands = 'local'
	// for that transaction, since Citus forwards SET commands to the
	// workers and never set_config: a one-shot statement is sent as BEGIN,
	// the settings, the statement and COMMIT in one pipeline, still one
	// round trip. The tenant role must be able to log in (Citus connects to
	// the workers as it): it is created or altered so when the connecting
	// user may. Not for Database. Default false.
	Citus bool
	// Pooler says whether a transaction-pooling proxy sits in front of the
	// servers. At start the provider probes for one (two connections that
	// share a backend) and logs a warning when it finds one while Pooler is
	// PoolerNone. Default PoolerNone.
	Pooler Pooler
	// StatementCacheCapacity bounds how many statements the provider keeps
	// prepared (or, with PoolerTransaction, described) per connection. In
	// schema isolation each schema prepares its own, so size it to schemas
	// times distinct statements where memory allows: each costs the server
	// about 16 KiB per connection (measured on PostgreSQL 15), and a miss
	// parses and plans again. Statements are prepared only as used, so a
	// small service never reaches the bound. Default 1024.
	StatementCacheCapacity int
	// TenantColumn is the column of tenant tables that holds the tenant ID,
	// for Destroy, Residue and the checks that go with them. Default
	// DefaultTenantColumn ("tenant_id"); "org_id" is common.
	TenantColumn string
	// ExcludeSchemas are schemas whose tables are not tenant tables even
	// with a tenant column, such as the tenant store's control schema:
	// Destroy and Residue leave them alone. Default ["tenancy"].
	ExcludeSchemas []string
	// Logger receives setup messages and the reasons given for unscoped
	// access. Default: slog.Default().
	Logger *slog.Logger
	// Tracer, when set, observes every statement run in a tenant's scope.
	// Default: none.
	Tracer Tracer
	// FreezeTimeout bounds how long a tenant statement waits while a move
	// of the tenant's data (package move) holds its fence; past it the
	// statement fails with *isolation.FrozenError (tenancy.ErrTenantMoving,
	// 503 with Retry-After). Default DefaultFreezeTimeout (5s).
	FreezeTimeout time.Duration
	// Reload reads a tenant's record from the store, bypassing every cache
	// (pass the backing store's Get, not the cache's). A statement held by
	// a move calls it while it waits, so that once the move has switched
	// the record the statement goes to the tenant's new place instead of
	// waiting out FreezeTimeout. Default: none (statements wait, then fail).
	Reload func(ctx context.Context, id string) (*tenancy.Tenant, error)
}

func (c *Config) setDefaults() error {
	if c.Role == "" {
		c.Role = DefaultRole
	}
	if !validRoleName(c.Role) {
		return fmt.Errorf("tenancy: tenant role name %q must be lowercase letters, digits and '_'", c.Role)
	}
	if c.TenantColumn == "" {
		c.TenantColumn = DefaultTenantColumn
	}
	if !validRoleName(c.TenantColumn) {
		return fmt.Errorf("tenancy: tenant column name %q must be lowercase letters, digits and '_'", c.TenantColumn)
	}
	if c.ExcludeSchemas == nil {
		c.ExcludeSchemas = []string{"tenancy"}
	}
	if c.StatementCacheCapacity <= 0 {
		c.StatementCacheCapacity = 1024
	}
	if c.Pooler < PoolerNone || c.Pooler > PoolerTransactionPrepared {
		return fmt.Errorf("tenancy: unknown pooler %d", int(c.Pooler))
	}
	if c.FreezeTimeout <= 0 {
		c.FreezeTimeout = DefaultFreezeTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
