package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// OutboxTable is the table, in every tenant's storage whose jobs go through
// the outbox, that holds jobs committed with the tenant's data and not yet
// relayed to the queue. OutboxDDL creates it.
const OutboxTable = "tenancy_job_outbox"

// OutboxDDL returns the statements that create the outbox table in a
// tenant's storage, for the tenant migration set: on PostgreSQL a tenant
// table under the canonical row-level security (so that one migration
// serves every strategy, and the provider's Destroy removes its rows), on
// SQLite a plain table in the tenant's file. Its IDs are never reused, and
// each row carries a random key that dedups its relays.
func OutboxDDL(d isolation.Dialect) []string {
	if d == isolation.SQLite {
		return []string{`CREATE TABLE IF NOT EXISTS ` + OutboxTable + ` (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	key TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL,
	args TEXT NOT NULL,
	opts TEXT,
	created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)`}
	}
	return append([]string{`CREATE TABLE IF NOT EXISTS ` + OutboxTable + ` (
	` + postgres.TenantIDColumn + `,
	id bigserial NOT NULL,
	key text NOT NULL,
	kind text NOT NULL,
	args jsonb NOT NULL,
	opts jsonb,
	created_at timestamptz NOT NULL DEFAULT now(),
	` + postgres.PrimaryKey("id") + `,
	UNIQUE (tenant_id, key)
)`}, postgres.EnableRLS(OutboxTable)...)
}

// Inserter inserts jobs into the queue outside any tenant transaction:
// River's client on the queue's database, *river.Client[pgx.Tx] on
// riverpgxv5 or *river.Client[*sql.Tx] on riversqlite.
type Inserter interface {
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// EnqueuerConfig configures an Enqueuer.
type EnqueuerConfig struct {
	// Provider holds the tenants' data. Required.
	Provider isolation.Provider
	// Client is River's client on the queue's PostgreSQL database, with
	// the Middleware among its middleware. Tenants whose data shares that
	// database get their jobs inserted by its InsertTx in their own
	// transaction. Nil when the queue is not on PostgreSQL: every tenant's
	// jobs then go through its outbox.
	Client *river.Client[pgx.Tx]
	// Relay inserts the outbox's jobs into the queue. Default Client; set
	// it to the riversqlite client for a queue in its own SQLite file.
	Relay Inserter
	// Shared reports whether t's data lives in the queue's database, so
	// that a job can join the data's transaction. Default: Client is set,
	// and t is served by an RLS or Schema provider (directly or through a
	// router such as isolation.Hybrid) and has no Placement. Say false for
	// tenants whose default server is not the queue's.
	Shared func(t *tenancy.Tenant) bool
	// Store lists tenants for Run's sweep of every outbox. Required for Run.
	Store tenancy.Store
	// SweepInterval is how often Run relays every tenant's outbox, which
	// catches rows a crash left behind between a commit and its relay.
	// Default one minute.
	SweepInterval time.Duration
	// BatchSize caps the outbox rows relayed in one transaction. Default 100.
	BatchSize int
	// Logger receives relay failures. Default slog.Default().
	Logger *slog.Logger
}

// Enqueuer inserts a tenant's jobs with its data, so that a job exists if and
// only if the data it was queued with committed:
//
//   - where the queue shares the tenant's database (row-level security,
//     schema per tenant, hybrid, on the queue's server), in the data's own
//     transaction, with River's InsertTx on the tenant's pgx.Tx;
//   - elsewhere (a database per tenant, a tenant placed on another server,
//     an SQLite file), into the outbox table of the tenant's storage, in the
//     data's transaction, and from there to the queue once it committed: at
//     least once, and deduplicated by a unique key per outbox row (or the
//     job's own unique key), so exactly once while River keeps the job.
//
// Rows are relayed right after their commit by Run's loop, and every
// SweepInterval for every tenant, which covers a process that died between
// the two. Run must run wherever outbox rows are written.
type Enqueuer struct {
	cfg  EnqueuerConfig
	kick chan *tenancy.Tenant
}

// NewEnqueuer checks cfg and returns an Enqueuer.
func NewEnqueuer(cfg EnqueuerConfig) (*Enqueuer, error) {
	if cfg.Provider == nil {
		return nil, errors.New("jobs: EnqueuerConfig.Provider is required")
	}
	if cfg.Relay == nil && cfg.Client != nil {
		cfg.Relay = cfg.Client
	}
	if cfg.Relay == nil {
		return nil, errors.New("jobs: EnqueuerConfig needs a Client or a Relay")
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Minute
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Enqueuer{cfg: cfg, kick: make(chan *tenancy.Tenant, 1024)}, nil
}

// Shares reports whether t's jobs join its data's transaction (true) or go
// through its outbox (false).
func (e *Enqueuer) Shares(t *tenancy.Tenant) bool {
	if e.cfg.Shared != nil {
		return e.cfg.Shared(t)
	}
	if e.cfg.Client == nil || t == nil || t.Placement != "" {
		return false
	}
	p, err := isolation.Resolve(e.cfg.Provider, t)
	if err != nil {
		return false
	}
	switch p.(type) {
	case *postgres.RLS, *postgres.Schema:
		return true
	}
	return false
}

// Tx is a transaction in one tenant's scope on PostgreSQL, as a pgx.Tx for
// the data's statements, and with Insert for its jobs. It is valid only
// inside the callback of Enqueuer.Tx.
type Tx struct {
	pgx.Tx
	e        *Enqueuer
	t        *tenancy.Tenant
	shared   bool
	outboxed bool
}

// Tx runs fn in a transaction in t's scope on a PostgreSQL provider, and
// commits when fn returns nil. Jobs fn inserts with Tx.Insert commit or roll
// back with its data.
func (e *Enqueuer) Tx(ctx context.Context, t *tenancy.Tenant, fn func(tx *Tx) error) error {
	ptx, err := postgres.For(e.cfg.Provider, t).Begin(ctx)
	if err != nil {
		return err
	}
	tx := &Tx{Tx: ptx, e: e, t: t, shared: e.Shares(t)}
	if err := runTx(ctx, ptx, func() error { return fn(tx) }); err != nil {
		return err
	}
	if tx.outboxed {
		e.Notify(t)
	}
	return nil
}

func runTx(ctx context.Context, tx pgx.Tx, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
	}()
	if err := fn(); err != nil {
		if rbErr := tx.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			return errors.Join(err, rbErr)
		}
		return err
	}
	return tx.Commit(ctx)
}

// Insert queues a job of the transaction's tenant: with River's InsertTx in
// this transaction where the queue shares the tenant's database, in its
// outbox otherwise. args must name the transaction's tenant.
func (tx *Tx) Insert(ctx context.Context, args Args, opts *river.InsertOpts) error {
	if err := checkArgs(tx.t, args); err != nil {
		return err
	}
	if tx.shared {
		_, err := tx.e.cfg.Client.InsertTx(ctx, tx.Tx, args, opts)
		return err
	}
	row, err := newOutboxRow(args, opts)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+OutboxTable+" (key, kind, args, opts) VALUES ($1, $2, $3, $4)",
		row.key, row.kind, string(row.args), nullJSON(row.opts)); err != nil {
		return fmt.Errorf("jobs: insert %s into the outbox: %w", row.kind, err)
	}
	tx.outboxed = true
	return nil
}

// SQLTx is a transaction on a tenant's SQLite file, as a *sql.Tx for the
// data's statements, and with Insert for its jobs. It is valid only inside
// the callback of Enqueuer.SQLTx.
type SQLTx struct {
	*sql.Tx
	t        *tenancy.Tenant
	outboxed bool
}

// SQLTx runs fn in a transaction on t's SQLite file and commits when fn
// returns nil. Jobs fn inserts with SQLTx.Insert go to the file's outbox and
// reach the queue once the transaction committed.
func (e *Enqueuer) SQLTx(ctx context.Context, t *tenancy.Tenant, fn func(tx *SQLTx) error) error {
	p, err := e.sqliteFor(t)
	if err != nil {
		return err
	}
	var tx *SQLTx
	err = p.BeginFunc(ctx, t, nil, func(stx *sql.Tx) error {
		tx = &SQLTx{Tx: stx, t: t}
		return fn(tx)
	})
	if err == nil && tx != nil && tx.outboxed {
		e.Notify(t)
	}
	return err
}

func (e *Enqueuer) sqliteFor(t *tenancy.Tenant) (*sqlite.Provider, error) {
	p, err := isolation.Resolve(e.cfg.Provider, t)
	if err != nil {
		return nil, err
	}
	sp, ok := p.(*sqlite.Provider)
	if !ok {
		return nil, fmt.Errorf("jobs: tenant %s is not served by an SQLite provider (%T)", t.ID, p)
	}
	return sp, nil
}

// Insert queues a job of the transaction's tenant in its file's outbox.
func (tx *SQLTx) Insert(ctx context.Context, args Args, opts *river.InsertOpts) error {
	if err := checkArgs(tx.t, args); err != nil {
		return err
	}
	row, err := newOutboxRow(args, opts)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+OutboxTable+" (key, kind, args, opts) VALUES (?, ?, ?, ?)",
		row.key, row.kind, string(row.args), nullJSON(row.opts)); err != nil {
		return fmt.Errorf("jobs: insert %s into the outbox: %w", row.kind, err)
	}
	tx.outboxed = true
	return nil
}

func checkArgs(t *tenancy.Tenant, args Args) error {
	if args == nil {
		return errors.New("jobs: nil args")
	}
	switch id := args.JobTenantID(); {
	case id == "":
		return fmt.Errorf("insert %s: %w", args.Kind(), ErrNoArgsTenant)
	case id != t.ID:
		return fmt.Errorf("insert %s for tenant %s in a transaction of tenant %s: %w", args.Kind(), id, t.ID, ErrTenantMismatch)
	}
	return nil
}

func nullJSON(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// outboxRow is one job waiting in a tenant's outbox.
type outboxRow struct {
	id   int64
	key  string
	kind string
	args []byte
	opts []byte // the effective InsertOpts, JSON; nil for none
}

func newOutboxRow(args Args, opts *river.InsertOpts) (outboxRow, error) {
	encoded, err := json.Marshal(args)
	if err != nil {
		return outboxRow{}, fmt.Errorf("jobs: encode %s args: %w", args.Kind(), err)
	}
	var eff *river.InsertOpts
	if withOpts, ok := args.(river.JobArgsWithInsertOpts); ok {
		o := withOpts.InsertOpts()
		eff = &o
	}
	if opts != nil {
		eff = mergeOpts(eff, opts)
	}
	var encOpts []byte
	if eff != nil {
		if encOpts, err = json.Marshal(eff); err != nil {
			return outboxRow{}, fmt.Errorf("jobs: encode %s insert options: %w", args.Kind(), err)
		}
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	return outboxRow{key: hex.EncodeToString(k[:]), kind: args.Kind(), args: encoded, opts: encOpts}, nil
}

// mergeOpts applies River's precedence: what the caller set overrides what
// the args type says.
func mergeOpts(base, over *river.InsertOpts) *river.InsertOpts {
	if base == nil {
		o := *over
		return &o
	}
	o := *base
	if over.MaxAttempts != 0 {
		o.MaxAttempts = over.MaxAttempts
	}
	if over.Metadata != nil {
		o.Metadata = over.Metadata
	}
	if over.Pending {
		o.Pending = true
	}
	if over.Priority != 0 {
		o.Priority = over.Priority
	}
	if over.Queue != "" {
		o.Queue = over.Queue
	}
	if !over.ScheduledAt.IsZero() {
		o.ScheduledAt = over.ScheduledAt
	}
	if over.Tags != nil {
		o.Tags = over.Tags
	}
	if !isZeroUnique(over.UniqueOpts) {
		o.UniqueOpts = over.UniqueOpts
	}
	return &o
}

func isZeroUnique(u river.UniqueOpts) bool {
	return !u.ByArgs && u.ByPeriod == 0 && !u.ByQueue && len(u.ByState) == 0 && !u.ExcludeKind
}

// rawArgs are a relayed job's args: its kind and its encoded args as they
// were committed.
type rawArgs struct {
	kind string
	raw  json.RawMessage
}

func (a rawArgs) Kind() string                 { return a.kind }
func (a rawArgs) MarshalJSON() ([]byte, error) { return a.raw, nil }

// params returns the River insert of a relayed row, with its outbox key in
// its metadata, where the middleware finds it.
func (r outboxRow) params() (river.InsertManyParams, error) {
	opts := &river.InsertOpts{}
	if r.opts != nil {
		if err := json.Unmarshal(r.opts, opts); err != nil {
			return river.InsertManyParams{}, fmt.Errorf("jobs: decode outbox row %d options: %w", r.id, err)
		}
	}
	meta := map[string]any{}
	if len(opts.Metadata) > 0 {
		if err := json.Unmarshal(opts.Metadata, &meta); err != nil {
			return river.InsertManyParams{}, fmt.Errorf("jobs: outbox row %d metadata: %w", r.id, err)
		}
	}
	meta[outboxMetaKey] = r.key
	m, _ := json.Marshal(meta)
	opts.Metadata = m
	return river.InsertManyParams{Args: rawArgs{kind: r.kind, raw: r.args}, InsertOpts: opts}, nil
}

func timeTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }
