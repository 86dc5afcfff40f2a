package postgres

import (
	"context"
	dbsql "database/sql"
	"fmt"
	"log/slog"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is shared by the PostgreSQL strategies.
type Config struct {
	// Role is the role tenant statements run as. It must not be superuser,
	// have BYPASSRLS or own tenant tables. It is created (NOLOGIN) and granted
	// to the connecting user when missing, if that user may; see EnsureRole.
	// Default DefaultRole.
	Role string
	// Placements maps a tenant's Placement to the pool of the server holding
	// it. A tenant with an empty Placement uses the provider's own pool; one
	// whose Placement is not listed is refused with
	// isolation.ErrUnknownPlacement. Default: none.
	Placements map[string]*pgxpool.Pool
	// StatementCacheCapacity bounds how many statements the provider keeps
	// prepared per connection. In schema isolation each schema prepares its
	// own, so size it to schemas times distinct statements where memory
	// allows: each costs the server about 16 KiB per connection (measured on
	// PostgreSQL 15), and a miss parses and plans again. Statements are
	// prepared only as used, so a small service never reaches the bound.
	// Default 1024.
	StatementCacheCapacity int
	// Logger receives setup messages. Default: slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Role == "" {
		c.Role = DefaultRole
	}
	if !validRoleName(c.Role) {
		return fmt.Errorf("tenancy: tenant role name %q must be lowercase letters, digits and '_'", c.Role)
	}
	if c.StatementCacheCapacity <= 0 {
		c.StatementCacheCapacity = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// shared is what RLS and Schema have in common: pools by placement, the
// tenant role and the executor.
type shared struct {
	cfg   Config
	pool  *pgxpool.Pool
	exec  *executor
	execs map[*pgxpool.Pool]*executor
}

func newShared(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*shared, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &shared{cfg: cfg, pool: pool, execs: make(map[*pgxpool.Pool]*executor)}
	pools := []*pgxpool.Pool{pool}
	for _, p := range cfg.Placements {
		pools = append(pools, p)
	}
	for _, p := range pools {
		if err := EnsureRole(ctx, p, cfg.Role); err != nil {
			return nil, err
		}
		s.execs[p] = newExecutor(p, cfg.StatementCacheCapacity)
	}
	s.exec = s.execs[pool]
	return s, nil
}

// poolFor returns the pool holding t's data and its executor.
func (s *shared) poolFor(t *tenancy.Tenant) (*pgxpool.Pool, *executor, error) {
	if t.Placement == "" {
		return s.pool, s.exec, nil
	}
	p, ok := s.cfg.Placements[t.Placement]
	if !ok {
		return nil, nil, fmt.Errorf("tenant %s placement %q: %w", t.ID, t.Placement, isolation.ErrUnknownPlacement)
	}
	return p, s.execs[p], nil
}

// run is the body of every one-shot call: check the tenant, pick its pool,
// build its scope and run sql there.
func (s *shared) query(ctx context.Context, t *tenancy.Tenant, sc func(*tenancy.Tenant) (scope, error), sql string, args []any) (isolation.Rows, error) {
	if err := isolation.CheckTenant(t); err != nil {
		return nil, err
	}
	pool, e, err := s.poolFor(t)
	if err != nil {
		return nil, err
	}
	scp, err := sc(t)
	if err != nil {
		return nil, err
	}
	return e.query(ctx, pool, &scp, sql, args)
}

func (s *shared) tx(ctx context.Context, t *tenancy.Tenant, sc func(*tenancy.Tenant) (scope, error), fn func(isolation.Tx) error) error {
	if err := isolation.CheckTenant(t); err != nil {
		return err
	}
	pool, e, err := s.poolFor(t)
	if err != nil {
		return err
	}
	scp, err := sc(t)
	if err != nil {
		return err
	}
	return runTx(ctx, pool, e, &scp, fn)
}

// beginner is what runTx needs of a pool.
type beginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// runTx opens a transaction that sets the tenant in its first round trip,
// runs fn and commits, or rolls back when fn fails or panics.
func runTx(ctx context.Context, db beginner, e *executor, sc *scope, fn func(isolation.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db, pgx.TxOptions{BeginQuery: sc.beginSQL()}, func(tx pgx.Tx) error {
		return fn(&pgTx{tx: tx, sc: sc, e: e})
	})
}

// pgTx is an isolation.Tx on PostgreSQL.
type pgTx struct {
	tx pgx.Tx
	sc *scope
	e  *executor
}

func (t *pgTx) Pgx() pgx.Tx { return t.tx }

func (t *pgTx) SQL() *dbsql.Tx { return nil }

func (t *pgTx) Query(ctx context.Context, sql string, args ...any) (isolation.Rows, error) {
	if !t.e.named {
		rows, err := t.tx.Query(ctx, sql, args...)
		if err != nil {
			rows.Close()
			return nil, err
		}
		return rows, nil
	}
	rows, err := t.e.pipelineQuery(ctx, t.tx.Conn(), t.sc, sql, args, false, nil)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (t *pgTx) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	if !t.e.named {
		tag, err := t.tx.Exec(ctx, sql, args...)
		return tag.RowsAffected(), err
	}
	rows, err := t.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	return drain(rows)
}

func (t *pgTx) QueryRow(ctx context.Context, sql string, args ...any) isolation.Row {
	return isolation.RowOf(t.Query(ctx, sql, args...))
}
