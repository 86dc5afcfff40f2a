package postgres

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// TenantSetting is the configuration parameter that holds the current
// tenant's ID for the length of one transaction. Policies and the tenant
// column's default read it.
const TenantSetting = "app.tenant_id"

// setTenantSQL is the tenant statement: it sets the tenant, the role and the
// search path for the rest of the transaction (is_local = true), so nothing
// outlives the transaction or the pipeline's implicit transaction, and a
// pooled connection or a transaction pooler never hands it to the next
// borrower. Its functions are qualified, so no function earlier on a search
// path a statement left behind can stand in for them.
//
// On a direct connection it is prepared once per connection, like the
// caller's statements, under a name drawn at random for that connection
// (see connState.prefix), so that no statement of the application's can
// replace it by naming it: a fixed name could be re-prepared by mistake
// (PREPARE, or DEALLOCATE then PREPARE, in a tenant statement) and then set
// another tenant for whoever used the connection next. Sending it unnamed
// every time would close that too, but costs PostgreSQL a parse, analysis
// and plan of it on every request: a quarter of a backend's CPU on a read by
// primary key, measured. Behind a transaction pooler (PoolerTransaction) it
// is sent unnamed, as every statement is there.
//
// It also takes the tenant's fence (see FenceKey) shared, without waiting,
// for the rest of the transaction: while a move holds the fence exclusively,
// the try fails and the division by zero it then makes aborts the implicit
// transaction before the caller's statement runs (the server skips the rest
// of the pipeline), and the provider waits and tries again. A failed try is
// told apart from the caller's own errors by where it arrives: as the tenant
// statement's result.
const setTenantSQL = "SELECT pg_catalog.set_config('" + TenantSetting + "', $1, true), " +
	"pg_catalog.set_config('role', $2, true), pg_catalog.set_config('search_path', $3, true), " +
	"1 / pg_catalog.pg_try_advisory_xact_lock_shared($4, $5)::int4"

var (
	tenantOIDs    = []uint32{25, 25, 25, 23, 23} // text, text, text, int4, int4
	tenantFormats = []int16{pgx.TextFormatCode, pgx.TextFormatCode, pgx.TextFormatCode, pgx.TextFormatCode, pgx.TextFormatCode}
)

// codeFrozen is the SQLSTATE of the tenant statement's failed fence try
// (division_by_zero).
const codeFrozen = "22012"

// errFrozen marks a tenant statement whose fence try failed: nothing of the
// caller's ran.
var errFrozen = errors.New("tenancy: tenant fence held by a move")

// scope is what the tenant statement sets for one tenant: its ID, the role
// statements run as, and the search path, which always ends in an explicit
// pg_temp so that a temporary object can never shadow a tenant table. It is
// derived once per tenant and shared read-only.
type scope struct {
	tenantID string
	role     string
	path     string
	fence    [2]int32
	params   [][]byte
	// name is the tenant's schema or database name, where it has one.
	name string
}

func newScope(kind tenancy.Isolation, t *tenancy.Tenant, role, path string) *scope {
	f := FenceKey(kind, t.Placement, t.ID)
	return &scope{
		tenantID: t.ID, role: role, path: path, fence: f,
		params: [][]byte{
			[]byte(t.ID), []byte(role), []byte(path),
			strconv.AppendInt(nil, int64(f[0]), 10), strconv.AppendInt(nil, int64(f[1]), 10),
		},
	}
}

// beginSQL returns the statements that open a transaction with opts and set
// the tenant, sent as one simple query: one round trip. The values are
// inlined as literals because a simple query takes no parameters; IDs, role
// names and derived schema names are validated to hold no quote or
// backslash, and are quoted anyway.
func (s *scope) beginSQL(opts pgx.TxOptions) (string, error) {
	begin, err := beginClause(opts)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(begin)
	b.WriteString("; SELECT pg_catalog.set_config('" + TenantSetting + "', ")
	b.WriteString(quoteLiteral(s.tenantID))
	b.WriteString(", true), pg_catalog.set_config('role', ")
	b.WriteString(quoteLiteral(s.role))
	b.WriteString(", true), pg_catalog.set_config('search_path', ")
	b.WriteString(quoteLiteral(s.path))
	b.WriteString(", true), 1 / pg_catalog.pg_try_advisory_xact_lock_shared(")
	b.WriteString(strconv.FormatInt(int64(s.fence[0]), 10))
	b.WriteString(", ")
	b.WriteString(strconv.FormatInt(int64(s.fence[1]), 10))
	b.WriteString(")::int4")
	return b.String(), nil
}

// beginClause returns the BEGIN statement for opts, which may name only the
// options PostgreSQL knows (they are written into the SQL).
func beginClause(opts pgx.TxOptions) (string, error) {
	if opts.BeginQuery != "" {
		return "", errors.New("tenancy: TxOptions.BeginQuery is not supported: the provider writes the BEGIN that sets the tenant")
	}
	b := "BEGIN"
	for _, o := range []struct {
		got    string
		prefix string
		valid  []string
	}{
		{string(opts.IsoLevel), " ISOLATION LEVEL ", []string{string(pgx.Serializable), string(pgx.RepeatableRead), string(pgx.ReadCommitted), string(pgx.ReadUncommitted)}},
		{string(opts.AccessMode), " ", []string{string(pgx.ReadWrite), string(pgx.ReadOnly)}},
		{string(opts.DeferrableMode), " ", []string{string(pgx.Deferrable), string(pgx.NotDeferrable)}},
	} {
		if o.got == "" {
			continue
		}
		if !slices.Contains(o.valid, o.got) {
			return "", fmt.Errorf("tenancy: unknown transaction option %q", o.got)
		}
		b += o.prefix + o.got
	}
	return b, nil
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings,
// the default since PostgreSQL 9.1: only ' needs doubling).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// executor runs statements on pgx connections in pipelines of its own: the
// tenant statement (outside a transaction) and the caller's statements in
// one round trip. Statements are prepared per connection and search path
// (pgx's own cache is keyed by SQL alone), so a statement is parsed in the
// tenant's own schema and its plan and row description are never shared with
// another schema. With named false (a transaction pooler) only unnamed
// statements are sent and only their descriptions are cached.
type executor struct {
	named    bool
	capacity int
	// citus sets the tenant of a one-shot statement in an explicit
	// transaction with SET LOCAL (see citusSetup), committed in the same
	// pipeline.
	citus bool
}

// newExecutor returns the executor cfg asks for.
func newExecutor(cfg *Config) *executor {
	return &executor{named: cfg.Pooler.named(), capacity: cfg.StatementCacheCapacity, citus: cfg.Citus}
}

// connStateKey keys the executor's state in pgconn's per-connection
// CustomData map.
const connStateKey = "github.com/go-tenancy/tenancy/isolation/postgres"

// connState is the executor's per-connection state: the statements it has
// prepared (or described) there. A connection is used by one goroutine at a
// time, so it needs no lock.
type connState struct {
	// stmts maps a search path and SQL text to its statement, most recently
	// used at the front of lru.
	stmts map[stmtKey]*list.Element
	lru   list.List
	seq   uint64
	// prefix starts every statement name on this connection: "tenancy_",
	// then random hex drawn when the connection is first used, so that no
	// application statement names one by mistake.
	prefix string
	// tenantStmt names the prepared tenant statement ("" until prepared).
	tenantStmt string
	// dealloc lists evicted statements to close in the next pipeline.
	dealloc []string
	eqb     pgx.ExtendedQueryBuilder
}

type stmtKey struct{ path, sql string }

type cachedStmt struct {
	key stmtKey
	sd  *pgconn.StatementDescription
}

func stateOf(c *pgx.Conn) *connState {
	data := c.PgConn().CustomData()
	if st, ok := data[connStateKey].(*connState); ok {
		return st
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	st := &connState{stmts: make(map[stmtKey]*list.Element), prefix: "tenancy_" + hex.EncodeToString(b[:]) + "_"}
	data[connStateKey] = st
	return st
}

// reset forgets every statement after the server reported one missing (it
// may have run DEALLOCATE ALL or DISCARD ALL, or the caller's own SQL named a
// statement that does not exist). Every name is closed in the next pipeline:
// closing a statement the server does not have is no error, and closing one
// it still has keeps a fresh Parse under the same name from failing.
func (st *connState) reset() {
	for el := st.lru.Front(); el != nil; el = el.Next() {
		if name := el.Value.(*cachedStmt).sd.Name; name != "" {
			st.dealloc = append(st.dealloc, name)
		}
	}
	if st.tenantStmt != "" {
		st.dealloc = append(st.dealloc, st.tenantStmt)
		st.tenantStmt = ""
	}
	clear(st.stmts)
	st.lru.Init()
}

func (st *connState) lookup(k stmtKey) *cachedStmt {
	if el, ok := st.stmts[k]; ok {
		st.lru.MoveToFront(el)
		return el.Value.(*cachedStmt)
	}
	return nil
}

func (st *connState) add(k stmtKey, sd *pgconn.StatementDescription, capacity int) {
	if el, ok := st.stmts[k]; ok {
		st.evict(el.Value.(*cachedStmt))
	}
	st.stmts[k] = st.lru.PushFront(&cachedStmt{key: k, sd: sd})
	for st.lru.Len() > capacity {
		st.evict(st.lru.Back().Value.(*cachedStmt))
	}
}

func (st *connState) evict(s *cachedStmt) {
	if el, ok := st.stmts[s.key]; ok && el.Value.(*cachedStmt) == s {
		st.lru.Remove(el)
		delete(st.stmts, s.key)
		if s.sd.Name != "" {
			st.dealloc = append(st.dealloc, s.sd.Name)
		}
	}
}

func (st *connState) nextName() string {
	st.seq++
	return st.prefix + strconv.FormatUint(st.seq, 10)
}

// query is one statement of a pipeline and, once described, its encoded
// parameters.
type query struct {
	sql           string
	args          []any
	byPosition    pgx.QueryResultFormats
	byOID         pgx.QueryResultFormatsByOID
	key           stmtKey
	hit           *cachedStmt
	sd            *pgconn.StatementDescription
	values        [][]byte
	paramFormats  []int16
	resultFormats []int16
}

// newQuery takes pgx's options from the front of args as pgx does:
// QueryRewriter (pgx.NamedArgs, for one), QueryResultFormats and
// QueryResultFormatsByOID are honoured; QueryExecMode is ignored, since the
// executor chooses the protocol.
func newQuery(ctx context.Context, c *pgx.Conn, path, sql string, args []any) (query, error) {
	q := query{sql: sql}
	var rewriter pgx.QueryRewriter
loop:
	for len(args) > 0 {
		switch a := args[0].(type) {
		case pgx.QueryResultFormats:
			q.byPosition = a
		case pgx.QueryResultFormatsByOID:
			q.byOID = a
		case pgx.QueryExecMode:
		case pgx.QueryRewriter:
			rewriter = a
		default:
			break loop
		}
		args = args[1:]
	}
	if rewriter != nil {
		var err error
		if q.sql, args, err = rewriter.RewriteQuery(ctx, c, q.sql, args); err != nil {
			return query{}, fmt.Errorf("rewrite query: %w", err)
		}
	}
	q.args = args
	q.key = stmtKey{path: path, sql: q.sql}
	return q, nil
}

// encode encodes q's arguments for its description. With own, the encoding
// is copied out of the connection's builder, for pipelines that encode
// several statements before sending any.
func (q *query) encode(c *pgx.Conn, st *connState, own bool) error {
	if len(q.sd.ParamOIDs) != len(q.args) {
		return fmt.Errorf("expected %d arguments, got %d", len(q.sd.ParamOIDs), len(q.args))
	}
	if err := st.eqb.Build(c.TypeMap(), q.sd, q.args); err != nil {
		return err
	}
	q.values, q.paramFormats, q.resultFormats = st.eqb.ParamValues, st.eqb.ParamFormats, st.eqb.ResultFormats
	switch {
	case q.byOID != nil:
		q.resultFormats = make([]int16, len(q.sd.Fields))
		for i, f := range q.sd.Fields {
			q.resultFormats[i] = q.byOID[f.DataTypeOID]
		}
	case q.byPosition != nil:
		q.resultFormats = q.byPosition
	}
	if own {
		values := make([][]byte, len(q.values))
		for i, v := range q.values {
			if v != nil {
				values[i] = append([]byte(nil), v...)
			}
		}
		q.values = values
		q.paramFormats = append([]int16(nil), q.paramFormats...)
		q.resultFormats = append([]int16(nil), q.resultFormats...)
	}
	return nil
}

// send queues q's execution: by name when prepared, else unnamed with the
// parameter types of its description.
func (e *executor) sendQuery(pipe *pgconn.Pipeline, q *query) {
	if q.sd.Name != "" {
		pipe.SendQueryStatement(q.sd, q.values, q.paramFormats, q.resultFormats)
		return
	}
	pipe.SendQueryParams(q.sql, q.values, q.sd.ParamOIDs, q.paramFormats, q.resultFormats)
}

// start sends, in one pipeline: the deallocation of evicted statements, the
// tenant statement (when sc is not nil: outside a transaction), and qs. A
// statement the connection has not seen on this search path is first parsed
// after the tenant statement, in the tenant's scope, and its parameter types
// learned in a second round trip inside the same implicit transaction, so a
// value encodes the same on the first call as on every later one. Every
// warm statement is encoded before anything is queued: an encoding error
// leaves nothing half-sent. The returned results read qs' results in order
// and, when closed, finish the pipeline and call finish with its error; on
// an error, finish has been called.
func (e *executor) start(ctx context.Context, c *pgx.Conn, sc *scope, qs []query, finish func(error)) (*results, error) {
	st := stateOf(c)
	own := len(qs) > 1
	cold := 0
	for i := range qs {
		q := &qs[i]
		if q.hit = st.lookup(q.key); q.hit == nil {
			cold++
			continue
		}
		q.sd = q.hit.sd
		if err := q.encode(c, st, own); err != nil {
			if finish != nil {
				finish(err)
			}
			return nil, err
		}
	}

	pipe := c.PgConn().StartPipeline(ctx)
	r := &results{c: c, pipe: pipe, st: st, qs: qs, finish: finish}
	for _, name := range st.dealloc {
		pipe.SendDeallocate(name)
		r.skip++
	}
	st.dealloc = st.dealloc[:0]
	switch {
	case sc != nil && e.citus:
		// Each statement its own message: one round trip all the same.
		// (No fence: moves do not support Citus.)
		for _, stmt := range sc.citusSetup("BEGIN") {
			pipe.SendQueryParams(stmt, nil, nil, nil, nil)
			r.skip++
		}
		r.explicit = true
	case sc != nil && e.named:
		if st.tenantStmt == "" {
			st.tenantStmt = st.nextName()
			pipe.SendPrepare(st.tenantStmt, setTenantSQL, tenantOIDs)
			r.skip++
		}
		pipe.SendQueryPrepared(st.tenantStmt, sc.params, tenantFormats, nil)
		r.skip++
		r.fenced = true
	case sc != nil:
		pipe.SendQueryParams(setTenantSQL, sc.params, tenantOIDs, tenantFormats, nil)
		r.skip++
		r.fenced = true
	}
	if cold > 0 {
		// A statement new to the connection is prepared once, however often
		// the batch holds it (a copy holds one insert a thousand times).
		first := make(map[stmtKey]int, cold)
		names := make([]string, len(qs))
		for i := range qs {
			if qs[i].hit != nil {
				continue
			}
			if _, dup := first[qs[i].key]; dup {
				continue
			}
			first[qs[i].key] = i
			if e.named {
				names[i] = st.nextName()
			}
			pipe.SendPrepare(names[i], qs[i].sql, nil)
		}
		pipe.SendFlushRequest()
		if err := pipe.Flush(); err != nil {
			return nil, r.abort(err)
		}
		if err := r.skipLeading(); err != nil {
			return nil, r.abort(err)
		}
		for i := range qs {
			q := &qs[i]
			if q.hit != nil {
				continue
			}
			if j := first[q.key]; j != i {
				q.sd = qs[j].sd
			} else {
				res, err := pipe.GetResults()
				if err != nil {
					return nil, r.abort(err)
				}
				q.sd = res.(*pgconn.StatementDescription)
				q.sd.Name, q.sd.SQL = names[i], q.sql
				st.add(q.key, q.sd, e.capacity)
			}
			if err := q.encode(c, st, own); err != nil {
				return nil, r.abort(err)
			}
		}
	}
	for i := range qs {
		e.sendQuery(pipe, &qs[i])
	}
	if r.explicit {
		// Skipped by the server when a statement failed: the transaction
		// then stays open, failed, and close rolls it back.
		pipe.SendQueryParams("COMMIT", nil, nil, nil, nil)
	}
	if err := pipe.Sync(); err != nil {
		return nil, r.abort(err)
	}
	return r, nil
}

// results reads the results of a pipeline's statements in order.
type results struct {
	c      *pgx.Conn
	pipe   *pgconn.Pipeline
	st     *connState
	qs     []query
	skip   int  // leading results (deallocations, tenant statement) not read yet
	fenced bool // the last leading result is the tenant statement's
	next   int
	err    error
	finish func(error)
	closed bool
	// explicit: the pipeline opened a transaction of its own (Citus), which
	// close rolls back if it is still open.
	explicit bool
}

// skipLeading reads the results that precede the statements' own.
func (r *results) skipLeading() error {
	for ; r.skip > 0; r.skip-- {
		res, err := r.pipe.GetResults()
		if err != nil {
			return err
		}
		if rr, ok := res.(*pgconn.ResultReader); ok {
			if _, err := rr.Close(); err != nil {
				if r.skip == 1 && r.fenced && pgCode(err) == codeFrozen {
					return fmt.Errorf("%w: %w", errFrozen, err)
				}
				return err
			}
		}
	}
	return nil
}

// reader returns the result of the next statement.
func (r *results) reader() (*pgconn.ResultReader, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.closed {
		return nil, errors.New("tenancy: results already closed")
	}
	if err := r.skipLeading(); err != nil {
		r.err = err
		r.repair(nil, err)
		return nil, err
	}
	if r.next >= len(r.qs) {
		return nil, errors.New("tenancy: no more results in batch")
	}
	q := &r.qs[r.next]
	r.next++
	res, err := r.pipe.GetResults()
	if err != nil {
		r.err = err
		r.repair(q, err)
		return nil, err
	}
	return res.(*pgconn.ResultReader), nil
}

// repair mends the statement cache after q failed with err: a statement the
// server no longer has means it may have lost them all; a stale plan or
// description is dropped.
func (r *results) repair(q *query, err error) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return
	}
	if pgErr.Code == "26000" {
		r.st.reset()
		return
	}
	if q != nil && q.hit != nil {
		r.st.evict(q.hit)
	}
}

// abort ends a pipeline that failed before its statements ran and returns
// err.
func (r *results) abort(err error) error {
	r.repair(nil, err)
	if !r.closed {
		// Sync ends the pipeline's implicit transaction; nothing of the
		// caller's has been executed yet.
		_ = r.pipe.Sync()
	}
	r.err = err
	_ = r.close()
	return err
}

// close reads what is left through the Sync, which reports errors raised at
// the end of the implicit transaction, and releases the connection.
func (r *results) close() error {
	if r.closed {
		return r.err
	}
	r.closed = true
	if err := r.pipe.Close(); r.err == nil {
		r.err = err
	}
	if r.explicit && r.c.PgConn().TxStatus() != 'I' && !r.c.PgConn().IsClosed() {
		// A failed statement left the transaction open. Roll it back, or
		// close the connection: it must not reach the next borrower.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := r.c.PgConn().Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
			_ = r.c.PgConn().Close(ctx)
		}
		cancel()
	}
	if r.finish != nil {
		r.finish(r.err)
	}
	return r.err
}

// retryable reports errors after which the statement cache was repaired and
// a retry will succeed: a stale cached plan (0A000, "cached plan must not
// change result type"; matched by code, since the message is translated) or
// a statement the server no longer has (26000).
func retryable(err error) bool {
	code := pgCode(err)
	return code == "0A000" || code == "26000"
}

// rows reads the result of a pipeline's only statement; closing it finishes
// the pipeline and releases the connection.
type rows struct {
	pgx.Rows
	res    *results
	err    error
	closed bool
}

func (r *rows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *rows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.Rows.Err()
	if r.res.err == nil {
		r.res.err = r.err
	}
	if err := r.res.close(); r.err == nil {
		r.err = err
	}
}

func (r *rows) Err() error {
	if r.closed {
		return r.err
	}
	return r.Rows.Err()
}

// errRows is a closed pgx.Rows holding an error, for calls that failed
// before a statement was sent.
func errRows(err error) pgx.Rows {
	return &rows{Rows: emptyRows{}, res: &results{closed: true}, err: err, closed: true}
}

// emptyRows is a pgx.Rows without rows.
type emptyRows struct{}

func (emptyRows) Close()                                       {}
func (emptyRows) Err() error                                   { return nil }
func (emptyRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (emptyRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (emptyRows) Next() bool                                   { return false }
func (emptyRows) Scan(...any) error                            { return errors.New("tenancy: no row") }
func (emptyRows) Values() ([]any, error)                       { return nil, errors.New("tenancy: no row") }
func (emptyRows) RawValues() [][]byte                          { return nil }
func (emptyRows) Conn() *pgx.Conn                              { return nil }
func (emptyRows) TypeMap() *pgtype.Map                         { return nil }

// row is a pgx.Row over rows: Scan reads the first row, or reports
// pgx.ErrNoRows (which also matches database/sql's sql.ErrNoRows and so
// isolation.ErrNoRows), and closes the rows.
type row struct{ rows pgx.Rows }

func (r row) Scan(dest ...any) error {
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// run sends one statement and returns its rows, whose Close calls finish
// (it is not called when run returns an error). Outside a transaction (sc
// not nil) a statement that failed because the statement cache went stale is
// retried once, after the cache is repaired: the failed pipeline's implicit
// transaction rolled back, so nothing ran twice.
func (e *executor) run(ctx context.Context, c *pgx.Conn, sc *scope, path, sql string, args []any, finish func(error)) (pgx.Rows, error) {
	q, err := newQuery(ctx, c, path, sql, args)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		qs := []query{q}
		var res *results
		res, err = e.start(ctx, c, sc, qs, nil)
		if err == nil {
			var rr *pgconn.ResultReader
			if rr, err = res.reader(); err == nil {
				res.finish = finish
				return &rows{Rows: pgx.RowsFromResultReader(c.TypeMap(), rr), res: res}, nil
			}
			_ = res.close()
		}
		if attempt > 0 || sc == nil || !retryable(err) {
			return nil, err
		}
	}
}

// exec runs one statement and returns its command tag.
func (e *executor) exec(ctx context.Context, c *pgx.Conn, sc *scope, path, sql string, args []any) (pgconn.CommandTag, error) {
	rs, err := e.run(ctx, c, sc, path, sql, args, nil)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	rs.Close()
	return rs.CommandTag(), rs.Err()
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
