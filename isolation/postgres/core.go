package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// strategy is what each isolation strategy decides: where a tenant's
// statements run and in what scope. Everything else (one-shot statements,
// transactions, batches, copies, the database/sql driver) is written once,
// in core.
type strategy interface {
	// locate validates t and returns the pool holding its data with the
	// executor for that pool, and its scope. release, when not nil, must be
	// called once the pool is no longer used.
	locate(ctx context.Context, t *tenancy.Tenant) (location, error)
}

// location is where one tenant's statements run.
type location struct {
	pool    *pgxpool.Pool
	exec    *executor
	scope   *scope
	release func()
}

func (l location) done() {
	if l.release != nil {
		l.release()
	}
}

// core implements isolation.Provider and native access over a strategy.
type core struct {
	cfg   Config
	strat strategy
}

// Dialect implements isolation.Provider.
func (c *core) Dialect() isolation.Dialect { return isolation.Postgres }

// Exec implements isolation.Provider: it runs one statement in t's scope, in
// one round trip with the tenant statement, and returns the rows affected.
func (c *core) Exec(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) (int64, error) {
	tag, err := c.exec(ctx, t, sql, args)
	return tag.RowsAffected(), err
}

// Query implements isolation.Provider. The rows, a pgx.Rows, hold a
// connection until closed.
func (c *core) Query(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) (isolation.Rows, error) {
	return c.query(ctx, t, sql, args)
}

// QueryRow implements isolation.Provider; the row is a pgx.Row.
func (c *core) QueryRow(ctx context.Context, t *tenancy.Tenant, sql string, args ...any) isolation.Row {
	return row{c.queryOrErr(ctx, t, sql, args)}
}

// Tx implements isolation.Provider: fn runs in a transaction whose BEGIN
// sets the tenant in the same round trip. The transaction refuses every call
// once fn has returned.
func (c *core) Tx(ctx context.Context, t *tenancy.Tenant, fn func(isolation.Tx) error) error {
	tx, err := c.begin(ctx, t, pgx.TxOptions{})
	if err != nil {
		return err
	}
	return tx.run(ctx, func() error { return fn(neutralTx{tx}) })
}

// Close implements isolation.Provider. The pools belong to the caller.
func (c *core) Close() {}

func (c *core) query(ctx context.Context, t *tenancy.Tenant, sql string, args []any) (pgx.Rows, error) {
	var start time.Time
	for attempt := 0; ; attempt++ {
		rs, err := c.queryOnce(ctx, t, sql, args)
		if err == nil || !frozen(err) {
			return rs, err
		}
		if start.IsZero() {
			start = time.Now()
		}
		if t, err = c.waitFence(ctx, t, start, attempt); err != nil {
			return nil, err
		}
	}
}

func (c *core) queryOnce(ctx context.Context, t *tenancy.Tenant, sql string, args []any) (pgx.Rows, error) {
	ctx, traced := c.trace(ctx, t, sql)
	loc, err := c.strat.locate(ctx, t)
	if err != nil {
		traced(err)
		return nil, err
	}
	conn, err := loc.pool.Acquire(ctx)
	if err != nil {
		loc.done()
		traced(err)
		return nil, err
	}
	finish := func(err error) {
		conn.Release()
		loc.done()
		traced(err)
	}
	rs, err := loc.exec.run(ctx, conn.Conn(), loc.scope, loc.scope.path, sql, args, finish)
	if err != nil {
		finish(err)
		return nil, err
	}
	return rs, nil
}

// Tracer observes the statements a provider runs in a tenant's scope, for
// tracing: an OpenTelemetry span per statement, say. Set Config.Tracer.
type Tracer interface {
	// TraceStatement is called before sql is sent for t, and returns the
	// context the statement runs with and a function called once with the
	// statement's outcome (nil, or its error) when its result has been read.
	// A batch is one statement whose SQL is its first; a transaction's
	// BEGIN and COMMIT are not traced, its statements are.
	TraceStatement(ctx context.Context, t *tenancy.Tenant, sql string) (context.Context, func(error))
}

func noTrace(error) {}

func (c *core) trace(ctx context.Context, t *tenancy.Tenant, sql string) (context.Context, func(error)) {
	if c.cfg.Tracer == nil {
		return ctx, noTrace
	}
	return c.cfg.Tracer.TraceStatement(ctx, t, sql)
}

func (c *core) queryOrErr(ctx context.Context, t *tenancy.Tenant, sql string, args []any) pgx.Rows {
	rs, err := c.query(ctx, t, sql, args)
	if err != nil {
		return errRows(err)
	}
	return rs
}

func (c *core) exec(ctx context.Context, t *tenancy.Tenant, sql string, args []any) (pgconn.CommandTag, error) {
	rs, err := c.query(ctx, t, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	rs.Close()
	return rs.CommandTag(), rs.Err()
}

// begin opens a transaction in t's scope on a connection it holds until the
// transaction ends.
func (c *core) begin(ctx context.Context, t *tenancy.Tenant, opts pgx.TxOptions) (*tx, error) {
	var start time.Time
	for attempt := 0; ; attempt++ {
		tx, err := c.beginOnce(ctx, t, opts)
		if err == nil || !frozen(err) {
			return tx, err
		}
		if start.IsZero() {
			start = time.Now()
		}
		if t, err = c.waitFence(ctx, t, start, attempt); err != nil {
			return nil, err
		}
	}
}

func (c *core) beginOnce(ctx context.Context, t *tenancy.Tenant, opts pgx.TxOptions) (*tx, error) {
	loc, err := c.strat.locate(ctx, t)
	if err != nil {
		return nil, err
	}
	beginSQL, err := loc.scope.beginSQL(opts)
	if c.cfg.Citus {
		beginSQL, err = loc.scope.citusBeginSQL(opts)
	}
	if err != nil {
		loc.done()
		return nil, err
	}
	conn, err := loc.pool.Acquire(ctx)
	if err != nil {
		loc.done()
		return nil, err
	}
	inner, err := conn.Conn().BeginTx(ctx, pgx.TxOptions{BeginQuery: beginSQL})
	if err != nil {
		if pgCode(err) == codeFrozen {
			// The BEGIN ran and its tenant statement found the fence held.
			_, rbErr := conn.Conn().Exec(context.WithoutCancel(ctx), "ROLLBACK", simple)
			if rbErr != nil {
				_ = conn.Conn().Close(context.WithoutCancel(ctx))
			}
			err = fmt.Errorf("%w: %w", errFrozen, err)
		}
		conn.Release()
		loc.done()
		return nil, err
	}
	tx := newTx(conn.Conn(), inner, loc.exec, loc.scope, func() {
		conn.Release()
		loc.done()
	})
	tx.root.trace = func(ctx context.Context, sql string) (context.Context, func(error)) { return c.trace(ctx, t, sql) }
	return tx, nil
}

// server is one PostgreSQL server tenants are placed on.
type server struct {
	pool *pgxpool.Pool
	exec *executor
	// path is the search path the server's connections start with, without
	// "$user", and ending in pg_temp: what RLS statements run with.
	path string
}

// openServers makes sure the tenant role is usable on every pool, reads
// each pool's default search path, and probes for a transaction pooler.
func openServers(ctx context.Context, pool *pgxpool.Pool, cfg *Config) (map[string]*server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	byPlacement := map[string]*pgxpool.Pool{"": pool}
	for name, p := range cfg.Placements {
		if name == "" || p == nil {
			return nil, fmt.Errorf("tenancy: placement %q needs a name and a pool", name)
		}
		if serverName(name) == "" {
			if p != pool {
				return nil, fmt.Errorf("tenancy: placement %q is the default server's name; give it the provider's own pool or another name", name)
			}
			continue
		}
		byPlacement[name] = p
	}
	out := make(map[string]*server, len(byPlacement))
	for name, p := range byPlacement {
		if err := EnsureRole(ctx, p, cfg.Role); err != nil {
			return nil, err
		}
		if cfg.Citus {
			if err := ensureLogin(ctx, p, cfg.Role); err != nil {
				return nil, err
			}
		}
		path, err := defaultPath(ctx, p)
		if err != nil {
			return nil, err
		}
		if cfg.Pooler == PoolerNone {
			if pooled, err := behindPooler(ctx, p); err == nil && pooled {
				cfg.Logger.Warn("tenancy: connections share server sessions, as through a transaction pooler; set Pooler to PoolerTransaction (or PoolerTransactionPrepared for PgBouncer 1.21+ with max_prepared_statements), or named statements of other clients may answer to this provider's names",
					"placement", name)
			}
		}
		out[name] = &server{pool: p, exec: newExecutor(cfg), path: path}
	}
	return out, nil
}

// defaultPath returns the search path p's connections start with, with
// "$user" left out (tenant statements run as the tenant role, whose name it
// would expand to) and an explicit pg_temp appended.
func defaultPath(ctx context.Context, p *pgxpool.Pool) (string, error) {
	var raw string
	if err := p.QueryRow(ctx, "SELECT pg_catalog.current_setting('search_path')", simple).Scan(&raw); err != nil {
		return "", fmt.Errorf("tenancy: read the default search path: %w", err)
	}
	var parts []string
	for _, s := range strings.Split(raw, ",") {
		s = strings.TrimSpace(s)
		if s == "" || s == `"$user"` || s == "$user" || s == "pg_temp" {
			continue
		}
		parts = append(parts, s)
	}
	return strings.Join(append(parts, "pg_temp"), ", "), nil
}

// behindPooler reports whether two connections opened at once share a
// server backend, which only a transaction pooler does.
func behindPooler(ctx context.Context, p *pgxpool.Pool) (bool, error) {
	cc := p.Config().ConnConfig.Copy()
	var pids [2]uint32
	for i := range pids {
		c, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return false, err
		}
		defer c.Close(context.WithoutCancel(ctx))
		if err := c.QueryRow(ctx, "SELECT pg_catalog.pg_backend_pid()", pgx.QueryExecModeSimpleProtocol).Scan(&pids[i]); err != nil {
			return false, err
		}
	}
	return pids[0] == pids[1], nil
}

// serverFor returns the server t is placed on.
func serverFor(servers map[string]*server, t *tenancy.Tenant) (*server, error) {
	s, ok := servers[serverName(t.Placement)]
	if !ok {
		return nil, fmt.Errorf("tenant %s placement %q: %w", t.ID, t.Placement, isolation.ErrUnknownPlacement)
	}
	return s, nil
}

// scopeKey identifies a tenant's scope: what it derives from.
type scopeKey struct{ id, identifier, placement string }

// scopeCache keeps each tenant's scope, so that its identifier is validated
// and its names derived once, not on every statement. It holds at most
// maxScopes entries and starts over when full.
type scopeCache struct {
	m sync.Map // scopeKey -> *scope
	n atomic.Int64
}

const maxScopes = 100_000

func (c *scopeCache) get(t *tenancy.Tenant, build func() (*scope, error)) (*scope, error) {
	if t == nil {
		return nil, tenancy.ErrNoTenant
	}
	k := scopeKey{t.ID, t.Identifier, t.Placement}
	if v, ok := c.m.Load(k); ok {
		return v.(*scope), nil
	}
	if err := isolation.CheckTenant(t); err != nil {
		return nil, err
	}
	sc, err := build()
	if err != nil {
		return nil, err
	}
	if c.n.Add(1) > maxScopes {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(k, sc)
	return sc, nil
}
