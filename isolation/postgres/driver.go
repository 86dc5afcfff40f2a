package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"reflect"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// OpenDB returns a *sql.DB on NewConnector(p).
func OpenDB(p isolation.Provider) (*sql.DB, error) {
	c, err := NewConnector(p)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// NewConnector returns a database/sql connector for code that speaks
// database/sql (GORM through gorm.io/driver/postgres, bun, sqlx, ent): each
// statement runs in the scope of the tenant its context carries
// (tenancy.WithTenant, as the middleware sets it), in the same round trip,
// through the provider's own pipeline and statement cache.
//
//   - A statement whose context carries no tenant is an error
//     (tenancy.ErrNoTenant), never an unscoped statement; UnscopedContext is
//     the one way to run without a tenant. Ping needs no tenant.
//   - BeginTx sets the tenant in the BEGIN's round trip; a statement in the
//     transaction whose context names another tenant is an error.
//   - Prepare is lazy: a prepared *sql.Stmt holds only its text, and runs
//     through the provider's cache keyed by search path and SQL, so one
//     *sql.Stmt shared by every tenant (GORM's PrepareStmt) runs in each
//     caller's scope.
//
// p is an RLS or Schema provider, or a router such as isolation.Hybrid over
// providers that share one pool. Database per tenant is not supported: one
// database/sql connection reaches one database, and a tenant's database is
// known only per call. Tenants with a Placement are refused: the connector
// connects to the default server.
func NewConnector(p isolation.Provider) (driver.Connector, error) {
	pool, cores, err := defaultPools(p)
	if err != nil {
		return nil, err
	}
	if len(cores) == 0 {
		return nil, errors.New("tenancy: the database/sql connector needs an RLS or Schema provider")
	}
	return &connector{p: p, pool: pool, logger: cores[0].cfg.Logger, fence: cores[0], exec: newExecutor(&cores[0].cfg)}, nil
}

// defaultPools returns the default server's pool that every RLS or Schema
// provider under p shares, and those providers' cores.
func defaultPools(p isolation.Provider) (*pgxpool.Pool, []*core, error) {
	var pool *pgxpool.Pool
	var cores []*core
	var walk func(isolation.Provider) error
	walk = func(p isolation.Provider) error {
		if h, ok := p.(interface {
			Providers() map[tenancy.Isolation]isolation.Provider
		}); ok {
			for _, sub := range h.Providers() {
				if err := walk(sub); err != nil {
					return err
				}
			}
			return nil
		}
		var sp *pgxpool.Pool
		switch p := p.(type) {
		case *RLS:
			sp = p.Pool()
		case *Schema:
			sp = p.Pool()
		case *Database:
			return errors.New("tenancy: the database/sql connector does not support database per tenant: one connection reaches one database")
		default:
			return fmt.Errorf("tenancy: %T is not a PostgreSQL RLS or Schema provider", p)
		}
		if pool != nil && pool != sp {
			return errors.New("tenancy: the database/sql connector needs every provider on one pool")
		}
		pool = sp
		cores = append(cores, p.(pgProvider).pgCore())
		return nil
	}
	if err := walk(p); err != nil {
		return nil, nil, err
	}
	return pool, cores, nil
}

type unscopedKey struct{}

// UnscopedContext marks ctx for cross-tenant work through the database/sql
// connector (reports, administration): its statements run as the
// connecting role with no tenant set, and each is logged with reason. What
// they see depends on that role: under FORCE ROW LEVEL SECURITY, nothing
// unless it has BYPASSRLS. reason must not be empty. For pgx, see Unscoped.
func UnscopedContext(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, unscopedKey{}, reason)
}

func unscopedReason(ctx context.Context) (string, bool) {
	r, ok := ctx.Value(unscopedKey{}).(string)
	return r, ok && r != ""
}

// Unscoped returns the pool of p's default server for cross-tenant work
// (reports, administration), after logging reason: statements on it run as
// the connecting role with no tenant set. p is an RLS or Schema provider,
// or a router over providers that share one pool. reason must not be empty.
func Unscoped(p isolation.Provider, reason string) (*pgxpool.Pool, error) {
	if reason == "" {
		return nil, errors.New("tenancy: unscoped access needs a reason")
	}
	pool, cores, err := defaultPools(p)
	if err != nil {
		return nil, err
	}
	cores[0].cfg.Logger.Info("tenancy: unscoped database access", "reason", reason)
	return pool, nil
}

type connector struct {
	p      isolation.Provider
	pool   *pgxpool.Pool
	exec   *executor
	logger *slog.Logger
	// fence waits out moves with the first provider's FreezeTimeout and
	// Reload.
	fence *core
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, c.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	return &sqlConn{c: c, conn: conn}, nil
}

func (c *connector) Driver() driver.Driver { return sqlDriver{} }

// sqlDriver is the connector's Driver. Connections come from the connector
// only, so Open is refused.
type sqlDriver struct{}

func (sqlDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("tenancy: open connections through postgres.NewConnector or OpenDB")
}

// sqlConn is one database/sql connection.
type sqlConn struct {
	c    *connector
	conn *pgx.Conn
	// tx is the open transaction's tenant and scope, or nil.
	tx *sqlTxState
}

type sqlTxState struct {
	tenantID string
	scope    *scope // nil when unscoped
}

var (
	_ driver.ConnBeginTx        = (*sqlConn)(nil)
	_ driver.ConnPrepareContext = (*sqlConn)(nil)
	_ driver.ExecerContext      = (*sqlConn)(nil)
	_ driver.QueryerContext     = (*sqlConn)(nil)
	_ driver.Pinger             = (*sqlConn)(nil)
	_ driver.SessionResetter    = (*sqlConn)(nil)
	_ driver.Validator          = (*sqlConn)(nil)
	_ driver.NamedValueChecker  = (*sqlConn)(nil)
)

// scopeFor returns the scope of the tenant ctx carries, or nil with the
// reason when ctx is marked unscoped.
func (s *sqlConn) scopeFor(ctx context.Context) (*scope, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok {
		if reason, ok := unscopedReason(ctx); ok {
			s.c.logger.Info("tenancy: unscoped database access", "reason", reason)
			return nil, nil
		}
		return nil, fmt.Errorf("tenancy: database/sql call without a tenant in its context: %w", tenancy.ErrNoTenant)
	}
	target, err := isolation.Resolve(s.c.p, t)
	if err != nil {
		return nil, err
	}
	pp, ok := target.(pgProvider)
	if !ok {
		return nil, fmt.Errorf("tenancy: %T is not a PostgreSQL provider", target)
	}
	loc, err := pp.pgCore().strat.locate(ctx, t)
	if err != nil {
		return nil, err
	}
	loc.done()
	if loc.pool != s.c.pool {
		return nil, fmt.Errorf("tenancy: tenant %s is placed on %q, which the database/sql connector does not reach", t.Identifier, t.Placement)
	}
	return loc.scope, nil
}

// statementScope returns the scope a statement outside or inside a
// transaction runs in: sc is set outside one (the tenant statement goes
// first), path keys its statement cache either way; both are empty for an
// unscoped statement, which runs as the connecting role.
func (s *sqlConn) statementScope(ctx context.Context) (sc *scope, path string, err error) {
	if s.tx != nil {
		if t, ok := tenancy.FromContext(ctx); ok && t.ID != s.tx.tenantID {
			return nil, "", fmt.Errorf("tenancy: statement for tenant %s inside a transaction of tenant %s", t.ID, s.tx.tenantID)
		}
		if s.tx.scope != nil {
			path = s.tx.scope.path
		}
		return nil, path, nil
	}
	sc, err = s.scopeFor(ctx)
	if err != nil || sc == nil {
		return nil, "", err
	}
	return sc, sc.path, nil
}

// waitFence waits after a statement outside a transaction, or a BEGIN,
// found its tenant's fence held by a move, and returns the context to try
// again with: its tenant is the record as it is now, which a move may have
// switched to another place.
func (s *sqlConn) waitFence(ctx context.Context, start *time.Time, attempt int) (context.Context, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok {
		return nil, tenancy.ErrNoTenant
	}
	if start.IsZero() {
		*start = time.Now()
	}
	nt, err := s.c.fence.waitFence(ctx, t, *start, attempt)
	var moved *isolation.MovedError
	if errors.As(err, &moved) {
		nt, err = moved.Tenant, nil
	}
	if err != nil {
		return nil, err
	}
	return tenancy.WithTenant(ctx, nt), nil
}

func (s *sqlConn) QueryContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Rows, error) {
	var start time.Time
	for attempt := 0; ; attempt++ {
		rs, err := s.queryOnce(ctx, query, named)
		if err == nil || !frozen(err) {
			return rs, err
		}
		if ctx, err = s.waitFence(ctx, &start, attempt); err != nil {
			return nil, err
		}
	}
}

func (s *sqlConn) queryOnce(ctx context.Context, query string, named []driver.NamedValue) (driver.Rows, error) {
	if s.conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	sc, path, err := s.statementScope(ctx)
	if err != nil {
		return nil, err
	}
	args := make([]any, 0, 1+len(named))
	args = append(args, sqlResultFormats)
	args = appendArgs(args, named)
	rs, err := s.c.exec.run(ctx, s.conn, sc, path, query, args, nil)
	if err != nil {
		if pgconn.SafeToRetry(err) {
			return nil, driver.ErrBadConn
		}
		return nil, err
	}
	return &sqlRows{conn: s.conn, rows: rs}, nil
}

func (s *sqlConn) ExecContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Result, error) {
	var start time.Time
	for attempt := 0; ; attempt++ {
		res, err := s.execOnce(ctx, query, named)
		if err == nil || !frozen(err) {
			return res, err
		}
		if ctx, err = s.waitFence(ctx, &start, attempt); err != nil {
			return nil, err
		}
	}
}

func (s *sqlConn) execOnce(ctx context.Context, query string, named []driver.NamedValue) (driver.Result, error) {
	if s.conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	sc, path, err := s.statementScope(ctx)
	if err != nil {
		return nil, err
	}
	args := appendArgs(make([]any, 0, len(named)), named)
	tag, err := s.c.exec.exec(ctx, s.conn, sc, path, query, args)
	if err != nil {
		if pgconn.SafeToRetry(err) {
			return nil, driver.ErrBadConn
		}
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

func appendArgs(args []any, named []driver.NamedValue) []any {
	for _, v := range named {
		args = append(args, v.Value)
	}
	return args
}

// CheckNamedValue accepts every value: pgx encodes Go values, sql.Scanner
// and driver.Valuer itself.
func (s *sqlConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (s *sqlConn) Prepare(query string) (driver.Stmt, error) {
	return s.PrepareContext(context.Background(), query)
}

// PrepareContext is lazy: the statement is prepared, per search path, when
// it first runs on a connection.
func (s *sqlConn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	return &sqlStmt{s: s, query: query}, nil
}

func (s *sqlConn) Begin() (driver.Tx, error) {
	return s.BeginTx(context.Background(), driver.TxOptions{})
}

func (s *sqlConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if s.conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	if s.tx != nil {
		return nil, errors.New("tenancy: a transaction is already open on this connection")
	}
	var txOpts pgx.TxOptions
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault:
	case sql.LevelReadUncommitted:
		txOpts.IsoLevel = pgx.ReadUncommitted
	case sql.LevelReadCommitted:
		txOpts.IsoLevel = pgx.ReadCommitted
	case sql.LevelRepeatableRead, sql.LevelSnapshot:
		txOpts.IsoLevel = pgx.RepeatableRead
	case sql.LevelSerializable:
		txOpts.IsoLevel = pgx.Serializable
	default:
		return nil, fmt.Errorf("tenancy: unsupported isolation level %v", opts.Isolation)
	}
	if opts.ReadOnly {
		txOpts.AccessMode = pgx.ReadOnly
	}
	var start time.Time
	for attempt := 0; ; attempt++ {
		tx, err := s.beginOnce(ctx, txOpts)
		if err == nil || !frozen(err) {
			return tx, err
		}
		if ctx, err = s.waitFence(ctx, &start, attempt); err != nil {
			return nil, err
		}
	}
}

func (s *sqlConn) beginOnce(ctx context.Context, txOpts pgx.TxOptions) (driver.Tx, error) {
	sc, err := s.scopeFor(ctx)
	if err != nil {
		return nil, err
	}
	state := &sqlTxState{scope: sc}
	var begin string
	if sc != nil {
		state.tenantID = sc.tenantID
		begin, err = sc.beginSQL(txOpts)
	} else {
		begin, err = beginClause(txOpts)
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.conn.Exec(ctx, begin); err != nil {
		if pgconn.SafeToRetry(err) {
			return nil, driver.ErrBadConn
		}
		if pgCode(err) == codeFrozen {
			// The BEGIN ran and its tenant statement found the fence held.
			if _, rbErr := s.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK", simple); rbErr != nil {
				return nil, driver.ErrBadConn
			}
			return nil, fmt.Errorf("%w: %w", errFrozen, err)
		}
		return nil, err
	}
	s.tx = state
	return &sqlTx{s: s, ctx: ctx}, nil
}

func (s *sqlConn) Ping(ctx context.Context) error {
	if s.conn.IsClosed() {
		return driver.ErrBadConn
	}
	if err := s.conn.Ping(ctx); err != nil {
		_ = s.Close()
		return driver.ErrBadConn
	}
	return nil
}

// ResetSession discards a connection left in a transaction.
func (s *sqlConn) ResetSession(context.Context) error {
	if s.conn.IsClosed() || s.conn.PgConn().TxStatus() != 'I' {
		return driver.ErrBadConn
	}
	return nil
}

func (s *sqlConn) IsValid() bool { return !s.conn.IsClosed() }

func (s *sqlConn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.conn.Close(ctx)
}

// sqlTx ends a transaction begun by BeginTx.
type sqlTx struct {
	s   *sqlConn
	ctx context.Context
}

func (t *sqlTx) Commit() error   { return t.end("COMMIT") }
func (t *sqlTx) Rollback() error { return t.end("ROLLBACK") }

func (t *sqlTx) end(stmt string) error {
	if t.s.tx == nil {
		return sql.ErrTxDone
	}
	t.s.tx = nil
	tag, err := t.s.conn.Exec(context.WithoutCancel(t.ctx), stmt)
	if err == nil && stmt == "COMMIT" && tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return err
}

// sqlStmt is a lazily prepared statement.
type sqlStmt struct {
	s     *sqlConn
	query string
}

func (st *sqlStmt) Close() error  { return nil }
func (st *sqlStmt) NumInput() int { return -1 }

func (st *sqlStmt) Exec([]driver.Value) (driver.Result, error) {
	return nil, errors.New("tenancy: Stmt.Exec without a context is not supported")
}

func (st *sqlStmt) Query([]driver.Value) (driver.Rows, error) {
	return nil, errors.New("tenancy: Stmt.Query without a context is not supported")
}

func (st *sqlStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return st.s.ExecContext(ctx, st.query, args)
}

func (st *sqlStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return st.s.QueryContext(ctx, st.query, args)
}

// sqlResultFormats asks for binary results of the types database/sql
// receives as Go values of their own, and text for the rest, as pgx's
// stdlib does.
var sqlResultFormats = pgx.QueryResultFormatsByOID{
	pgtype.BoolOID: 1, pgtype.ByteaOID: 1, pgtype.CIDOID: 1, pgtype.DateOID: 1,
	pgtype.Float4OID: 1, pgtype.Float8OID: 1, pgtype.Int2OID: 1, pgtype.Int4OID: 1,
	pgtype.Int8OID: 1, pgtype.OIDOID: 1, pgtype.TimestampOID: 1, pgtype.TimestamptzOID: 1,
	pgtype.XIDOID: 1,
}

// sqlRows converts a pgx result to database/sql values.
type sqlRows struct {
	conn    *pgx.Conn
	rows    pgx.Rows
	convert []func([]byte) (driver.Value, error)
	names   []string
}

func (r *sqlRows) Columns() []string {
	if r.names == nil {
		fields := r.rows.FieldDescriptions()
		r.names = make([]string, len(fields))
		for i, f := range fields {
			r.names[i] = f.Name
		}
	}
	return r.names
}

func (r *sqlRows) Close() error {
	r.rows.Close()
	return r.rows.Err()
}

func (r *sqlRows) Next(dest []driver.Value) error {
	if r.convert == nil {
		r.convert = converters(r.conn.TypeMap(), r.rows.FieldDescriptions())
	}
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	for i, raw := range r.rows.RawValues() {
		if raw == nil {
			dest[i] = nil
			continue
		}
		v, err := r.convert[i](raw)
		if err != nil {
			return fmt.Errorf("convert field %d: %w", i, err)
		}
		dest[i] = v
	}
	return nil
}

// converters returns, per column, a function from its wire value to a
// database/sql value: the Go type for intrinsic types, a string for the
// rest, as pgx's stdlib does.
func converters(m *pgtype.Map, fields []pgconn.FieldDescription) []func([]byte) (driver.Value, error) {
	out := make([]func([]byte) (driver.Value, error), len(fields))
	for i, f := range fields {
		oid, format := f.DataTypeOID, f.Format
		scan := func(dst any, conv func() (driver.Value, error)) func([]byte) (driver.Value, error) {
			plan := m.PlanScan(oid, format, dst)
			return func(src []byte) (driver.Value, error) {
				if err := plan.Scan(src, dst); err != nil {
					return nil, err
				}
				return conv()
			}
		}
		switch oid {
		case pgtype.BoolOID:
			var d bool
			out[i] = scan(&d, func() (driver.Value, error) { return d, nil })
		case pgtype.ByteaOID, pgtype.JSONOID, pgtype.JSONBOID, pgtype.XMLOID:
			var d []byte
			out[i] = scan(&d, func() (driver.Value, error) { return append([]byte(nil), d...), nil })
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
			var d int64
			out[i] = scan(&d, func() (driver.Value, error) { return d, nil })
		case pgtype.Float4OID, pgtype.Float8OID:
			var d float64
			out[i] = scan(&d, func() (driver.Value, error) { return d, nil })
		case pgtype.CIDOID, pgtype.OIDOID, pgtype.XIDOID:
			var d pgtype.Uint32
			out[i] = scan(&d, func() (driver.Value, error) { return d.Value() })
		case pgtype.DateOID:
			var d pgtype.Date
			out[i] = scan(&d, func() (driver.Value, error) { return d.Value() })
		case pgtype.TimestampOID:
			var d pgtype.Timestamp
			out[i] = scan(&d, func() (driver.Value, error) { return d.Value() })
		case pgtype.TimestamptzOID:
			var d pgtype.Timestamptz
			out[i] = scan(&d, func() (driver.Value, error) { return d.Value() })
		default:
			var d string
			out[i] = scan(&d, func() (driver.Value, error) { return d, nil })
		}
	}
	return out
}

// ColumnTypeDatabaseTypeName returns the column's type name in upper case,
// or its OID when the type is unknown.
func (r *sqlRows) ColumnTypeDatabaseTypeName(i int) string {
	oid := r.rows.FieldDescriptions()[i].DataTypeOID
	if t, ok := r.conn.TypeMap().TypeForOID(oid); ok {
		return upper(t.Name)
	}
	return fmt.Sprint(oid)
}

// ColumnTypeLength returns the length of variable-length types.
func (r *sqlRows) ColumnTypeLength(i int) (int64, bool) {
	f := r.rows.FieldDescriptions()[i]
	switch f.DataTypeOID {
	case pgtype.TextOID, pgtype.ByteaOID:
		return math.MaxInt64, true
	case pgtype.VarcharOID, pgtype.BPCharOID:
		return int64(f.TypeModifier - 4), true
	}
	return 0, false
}

// ColumnTypePrecisionScale returns the precision and scale of numeric
// columns.
func (r *sqlRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	f := r.rows.FieldDescriptions()[i]
	if f.DataTypeOID != pgtype.NumericOID {
		return 0, 0, false
	}
	mod := f.TypeModifier - 4
	return int64((mod >> 16) & 0xffff), int64(mod & 0xffff), true
}

// ColumnTypeScanType returns the Go type Next returns for the column.
func (r *sqlRows) ColumnTypeScanType(i int) reflect.Type {
	switch r.rows.FieldDescriptions()[i].DataTypeOID {
	case pgtype.Float8OID, pgtype.Float4OID:
		return reflect.TypeFor[float64]()
	case pgtype.Int8OID, pgtype.Int4OID, pgtype.Int2OID:
		return reflect.TypeFor[int64]()
	case pgtype.BoolOID:
		return reflect.TypeFor[bool]()
	case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		return reflect.TypeFor[time.Time]()
	case pgtype.ByteaOID, pgtype.JSONOID, pgtype.JSONBOID:
		return reflect.TypeFor[[]byte]()
	}
	return reflect.TypeFor[string]()
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
