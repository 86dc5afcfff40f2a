package postgres

import (
	"container/list"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TenantSetting is the configuration parameter that holds the current
// tenant's ID for the length of one transaction. RLS policies and the
// tenant_id column default read it.
const TenantSetting = "app.tenant_id"

// scope is what one tenant statement sets: the tenant, the role statements
// run as, and for schema isolation the search path.
type scope struct {
	tenantID string
	role     string
	// path is the search_path value (a quoted schema name), or "" to leave the
	// search path alone.
	path string
}

// The tenant statements: one statement sets everything, because on a busy
// server each extra statement costs CPU. Every setting is transaction-local
// (is_local = true), so nothing outlives the transaction or the pipeline's
// implicit transaction: a pooled connection or a transaction pooler never
// hands it to the next borrower.
const (
	setTenantSQL       = "SELECT set_config('" + TenantSetting + "', $1, true), set_config('role', $2, true)"
	setTenantSchemaSQL = "SELECT set_config('" + TenantSetting + "', $1, true), set_config('role', $2, true), set_config('search_path', $3, true)"
)

func (s *scope) setSQL() (kind int, sql string) {
	if s.path == "" {
		return 0, setTenantSQL
	}
	return 1, setTenantSchemaSQL
}

// beginSQL returns the statement that opens a transaction and sets the
// tenant in the same round trip. It inlines the values as literals because
// pgx sends a BeginQuery without parameters; every value is validated (IDs,
// role names and derived schema names hold no quote or backslash) and quoted.
func (s *scope) beginSQL() string {
	var b strings.Builder
	b.WriteString("BEGIN; SELECT set_config('" + TenantSetting + "', ")
	b.WriteString(quoteLiteral(s.tenantID))
	b.WriteString(", true), set_config('role', ")
	b.WriteString(quoteLiteral(s.role))
	b.WriteString(", true)")
	if s.path != "" {
		b.WriteString(", set_config('search_path', ")
		b.WriteString(quoteLiteral(s.path))
		b.WriteString(", true)")
	}
	return b.String()
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings,
// the default since PostgreSQL 9.1: only ' needs doubling).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// executor runs tenant-scoped statements on pgx connections. With pgx's
// default exec mode (cache_statement) it pipelines the tenant statement and
// the caller's statement into one round trip, using statements it prepares
// itself per connection and per search path (see pipelineQuery). With any
// other exec mode (as configured for PgBouncer in transaction mode) it sends
// both as one pgx batch, which pgx runs without named prepared statements.
type executor struct {
	named    bool
	capacity int
}

func newExecutor(pool *pgxpool.Pool, capacity int) *executor {
	mode := pool.Config().ConnConfig.DefaultQueryExecMode
	return &executor{named: mode == pgx.QueryExecModeCacheStatement, capacity: capacity}
}

// describesEarly reports exec modes in which pgx describes a statement in a
// round trip of its own, before the tenant statement has set the search
// path, and (cache_describe) reuses that description across schemas.
// Schema isolation refuses them.
func describesEarly(pool *pgxpool.Pool) bool {
	mode := pool.Config().ConnConfig.DefaultQueryExecMode
	return mode == pgx.QueryExecModeCacheDescribe || mode == pgx.QueryExecModeDescribeExec
}

// query runs sql in sc's scope on a connection from pool. The returned rows
// hold the connection until closed.
func (e *executor) query(ctx context.Context, pool *pgxpool.Pool, sc *scope, sql string, args []any) (isolation.Rows, error) {
	if !e.named {
		return e.batchQuery(ctx, pool, sc, sql, args)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := e.pipelineQuery(ctx, conn.Conn(), sc, sql, args, true, conn.Release)
	if err != nil {
		conn.Release()
		return nil, err
	}
	return rows, nil
}

// drain reads rows to the end and returns the command's affected rows.
func drain(rows isolation.Rows) (int64, error) {
	for rows.Next() {
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if ct, ok := rows.(interface{ CommandTag() pgconn.CommandTag }); ok {
		return ct.CommandTag().RowsAffected(), nil
	}
	return 0, nil
}

// batchQuery sends the tenant statement and sql as one pgx batch, which runs
// as one implicit transaction in one round trip in the exec and
// simple_protocol modes.
func (e *executor) batchQuery(ctx context.Context, pool *pgxpool.Pool, sc *scope, sql string, args []any) (isolation.Rows, error) {
	b := &pgx.Batch{}
	if sc.path == "" {
		b.Queue(setTenantSQL, sc.tenantID, sc.role)
	} else {
		b.Queue(setTenantSchemaSQL, sc.tenantID, sc.role, sc.path)
	}
	b.Queue(sql, args...)
	br := pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	err    error
	closed bool
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.Rows.Err()
	if err := r.br.Close(); r.err == nil {
		r.err = err
	}
}

func (r *batchRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.Rows.Err()
}

// connStateKey keys the executor's state in pgconn's per-connection
// CustomData map.
const connStateKey = "github.com/go-tenancy/tenancy/isolation/postgres"

// connState is the executor's per-connection state: which statements it has
// prepared on that connection. A connection is used by one goroutine at a
// time, so it needs no lock.
type connState struct {
	// set holds the prepared tenant statements, by kind (see scope.setSQL).
	set [2]*pgconn.StatementDescription
	// stmts maps a search path and SQL text to its prepared statement, most
	// recently used at the front of lru.
	stmts map[stmtKey]*list.Element
	lru   list.List
	seq   uint64
	// dealloc lists evicted statements to close in the next pipeline.
	dealloc []string
	// buf holds the encoded tenant statement parameters.
	buf    []byte
	params [3][]byte
	// eqb encodes the caller's parameters.
	eqb pgx.ExtendedQueryBuilder
}

type stmtKey struct{ path, sql string }

type stmt struct {
	key stmtKey
	sd  *pgconn.StatementDescription
}

var (
	textFormats = [3]int16{pgx.TextFormatCode, pgx.TextFormatCode, pgx.TextFormatCode}
	textOIDs    = [3]uint32{25, 25, 25} // text
	setNames    = [2]string{"tenancy_set_tenant", "tenancy_set_tenant_schema"}
)

func stateOf(c *pgx.Conn) *connState {
	data := c.PgConn().CustomData()
	if st, ok := data[connStateKey].(*connState); ok {
		return st
	}
	st := &connState{stmts: make(map[stmtKey]*list.Element)}
	data[connStateKey] = st
	return st
}

// reset forgets every statement after the server reported one missing (it
// may have run DEALLOCATE ALL or DISCARD ALL, or the caller's own SQL named a
// statement that does not exist). Every name is closed in the next pipeline:
// closing a statement the server does not have is no error, and closing one
// it still has keeps a fresh PREPARE under the same name from failing.
func (st *connState) reset() {
	for _, sd := range st.set {
		if sd != nil {
			st.dealloc = append(st.dealloc, sd.Name)
		}
	}
	st.set = [2]*pgconn.StatementDescription{}
	for el := st.lru.Front(); el != nil; el = el.Next() {
		st.dealloc = append(st.dealloc, el.Value.(*stmt).sd.Name)
	}
	clear(st.stmts)
	st.lru.Init()
}

func (st *connState) lookup(k stmtKey) *stmt {
	if el, ok := st.stmts[k]; ok {
		st.lru.MoveToFront(el)
		return el.Value.(*stmt)
	}
	return nil
}

func (st *connState) add(k stmtKey, sd *pgconn.StatementDescription, capacity int) {
	st.stmts[k] = st.lru.PushFront(&stmt{key: k, sd: sd})
	for st.lru.Len() > capacity {
		st.evict(st.lru.Back().Value.(*stmt))
	}
}

func (st *connState) evict(s *stmt) {
	if el, ok := st.stmts[s.key]; ok && el.Value.(*stmt) == s {
		st.lru.Remove(el)
		delete(st.stmts, s.key)
		st.dealloc = append(st.dealloc, s.sd.Name)
	}
}

func (st *connState) nextName() string {
	st.seq++
	return "tenancy_" + strconv.FormatUint(st.seq, 10)
}

// encodeScope encodes the tenant statement's parameters as text.
func (st *connState) encodeScope(sc *scope) [][]byte {
	st.buf = append(st.buf[:0], sc.tenantID...)
	st.buf = append(st.buf, sc.role...)
	st.buf = append(st.buf, sc.path...)
	a, b := len(sc.tenantID), len(sc.tenantID)+len(sc.role)
	st.params[0] = st.buf[:a:a]
	st.params[1] = st.buf[a:b:b]
	if sc.path == "" {
		return st.params[:2]
	}
	st.params[2] = st.buf[b:]
	return st.params[:3]
}

// pipelineQuery sends, in one pipeline: the deallocation of evicted
// statements, the tenant statement (when setTenant), and sql, prepared on
// first use under a name keyed by search path and text, so that it is parsed
// in the tenant's own schema and its plan and row description are never
// shared with another schema. A warm statement costs one round trip; a cold
// one a second, to learn its parameter types (so a value encodes the same on
// the first call as on every later one), inside the same implicit
// transaction. It returns rows that read the result and, when closed, finish
// the pipeline and call release.
//
// A statement whose cached row description went stale (the schema changed
// under it) or that the server no longer has is prepared again and the
// pipeline retried once, when nothing has been committed: outside a
// transaction the pipeline's implicit transaction rolled back on the error.
func (e *executor) pipelineQuery(ctx context.Context, c *pgx.Conn, sc *scope, sql string, args []any, setTenant bool, release func()) (*pipeRows, error) {
	if len(args) > 0 {
		if rw, ok := args[0].(pgx.QueryRewriter); ok {
			var err error
			if sql, args, err = rw.RewriteQuery(ctx, c, sql, args[1:]); err != nil {
				return nil, fmt.Errorf("rewrite query: %w", err)
			}
		}
	}
	for attempt := 0; ; attempt++ {
		rows, err := e.sendPipeline(ctx, c, sc, sql, args, setTenant, release)
		if err == nil || attempt > 0 || !setTenant || !retryable(err) {
			return rows, err
		}
	}
}

// retryable reports errors after which the statement cache was repaired and
// a retry will succeed: a stale cached plan (0A000, "cached plan must not
// change result type"; matched by code, since the message is translated) or
// a statement the server no longer has (26000).
func retryable(err error) bool {
	code := pgCode(err)
	return code == "0A000" || code == "26000"
}

func (e *executor) sendPipeline(ctx context.Context, c *pgx.Conn, sc *scope, sql string, args []any, setTenant bool, release func()) (*pipeRows, error) {
	st := stateOf(c)
	key := stmtKey{path: sc.path, sql: sql}
	hit := st.lookup(key)
	// Encode a warm statement's parameters before anything is queued: an
	// encoding error must not leave a half-written pipeline.
	if hit != nil {
		if err := st.eqb.Build(c.TypeMap(), hit.sd, args); err != nil {
			return nil, err
		}
	}

	pipe := c.PgConn().StartPipeline(ctx)
	synced := false
	fail := func(err error) (*pipeRows, error) {
		if !synced {
			_ = pipe.Sync()
		}
		_ = pipe.Close()
		switch pgCode(err) {
		case "26000":
			st.reset()
		case "0A000":
			if hit != nil {
				st.evict(hit)
			}
		}
		return nil, err
	}

	nDealloc := len(st.dealloc)
	for _, name := range st.dealloc {
		pipe.SendDeallocate(name)
	}
	st.dealloc = st.dealloc[:0]
	kind, prepareSet := -1, false
	if setTenant {
		k, setSQL := sc.setSQL()
		kind = k
		params := st.encodeScope(sc)
		if sd := st.set[kind]; sd != nil {
			pipe.SendQueryStatement(sd, params, textFormats[:len(params)], nil)
		} else {
			prepareSet = true
			pipe.SendPrepare(setNames[kind], setSQL, textOIDs[:len(params)])
			pipe.SendQueryPrepared(setNames[kind], params, textFormats[:len(params)], nil)
		}
	}
	var sd *pgconn.StatementDescription
	var name string
	if hit != nil {
		sd = hit.sd
		pipe.SendQueryStatement(sd, st.eqb.ParamValues, st.eqb.ParamFormats, st.eqb.ResultFormats)
		if err := pipe.Sync(); err != nil {
			return fail(err)
		}
		synced = true
	} else {
		// First use on this connection and search path: parse it after the
		// tenant statement, in the tenant's scope, and flush to learn its
		// parameter types.
		name = st.nextName()
		pipe.SendPrepare(name, sql, nil)
		pipe.SendFlushRequest()
		if err := pipe.Flush(); err != nil {
			return fail(err)
		}
	}

	for range nDealloc {
		if _, err := pipe.GetResults(); err != nil {
			return fail(err)
		}
	}
	if setTenant {
		if prepareSet {
			res, err := pipe.GetResults()
			if err != nil {
				return fail(err)
			}
			psd := res.(*pgconn.StatementDescription)
			psd.Name, psd.SQL = setNames[kind], setSQLFor(kind)
			st.set[kind] = psd
		}
		res, err := pipe.GetResults()
		if err != nil {
			return fail(err)
		}
		if _, err := res.(*pgconn.ResultReader).Close(); err != nil {
			return fail(err)
		}
	}
	if hit == nil {
		res, err := pipe.GetResults()
		if err != nil {
			return fail(err)
		}
		sd = res.(*pgconn.StatementDescription)
		sd.Name, sd.SQL = name, sql
		st.add(key, sd, e.capacity)
		if err := st.eqb.Build(c.TypeMap(), sd, args); err != nil {
			return fail(err)
		}
		pipe.SendQueryStatement(sd, st.eqb.ParamValues, st.eqb.ParamFormats, st.eqb.ResultFormats)
		if err := pipe.Sync(); err != nil {
			return fail(err)
		}
		synced = true
	}
	res, err := pipe.GetResults()
	if err != nil {
		return fail(err)
	}
	rr := res.(*pgconn.ResultReader)
	return &pipeRows{Rows: pgx.RowsFromResultReader(c.TypeMap(), rr), pipe: pipe, release: release}, nil
}

func setSQLFor(kind int) string {
	if kind == 0 {
		return setTenantSQL
	}
	return setTenantSchemaSQL
}

// pipeRows reads a statement's result from a pipeline; Close finishes the
// pipeline (reading the Sync, which reports errors raised at commit of the
// implicit transaction) and releases the connection.
type pipeRows struct {
	pgx.Rows
	pipe    *pgconn.Pipeline
	release func()
	err     error
	closed  bool
}

func (r *pipeRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *pipeRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.Rows.Err()
	if err := r.pipe.Close(); r.err == nil {
		r.err = err
	}
	if r.release != nil {
		r.release()
	}
}

func (r *pipeRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.Rows.Err()
}
