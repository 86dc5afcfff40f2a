package move

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Step is how far a move has come; the journal records the last one done.
type Step string

// Steps of a move, in order.
const (
	// StepPlanned: the move is journaled; nothing is copied yet.
	StepPlanned Step = "planned"
	// StepCopied: the tenant's rows are copied to the destination while the
	// source kept serving.
	StepCopied Step = "copied"
	// StepVerified: under the freeze, what changed since is copied again and
	// every table's count and checksum match.
	StepVerified Step = "verified"
	// StepSwitched: the tenant's record names the destination.
	StepSwitched Step = "switched"
	// StepDone: the source is removed.
	StepDone Step = "done"
)

var steps = []Step{StepPlanned, StepCopied, StepVerified, StepSwitched, StepDone}

func (s Step) index() int {
	for i, x := range steps {
		if x == s {
			return i
		}
	}
	return -1
}

// Errors.
var (
	// ErrStopped is returned when Mover.StopAfter stopped a move, as a crash
	// would: run it again to resume.
	ErrStopped = errors.New("move: stopped")
	// ErrOtherMove: the tenant has an unfinished move to another place;
	// finish it (run it again with its target) first.
	ErrOtherMove = errors.New("move: the tenant has an unfinished move to another place")
	// ErrBusy: another process is moving, exporting or importing the tenant.
	ErrBusy = errors.New("move: another move of the tenant is running")
	// ErrVerify: a copy's counts or checksums do not match its source.
	ErrVerify = errors.New("move: copy does not match its source")
)

// Mover moves tenants' data between places: servers (placements) and
// isolation strategies (shared tables under row-level security, or a schema
// of the tenant's own), and exports and imports it.
type Mover struct {
	// Store holds the tenant records. Pass the cached store (store/cache)
	// where the application uses one: its writes invalidate every
	// instance's cache. Required.
	Store tenancy.Store
	// Provider reaches every place a tenant may be moved from or to: an
	// RLS or Schema provider, or a Hybrid over them, built on a DSN that
	// may create schemas and read and write every tenant's rows (the
	// migration DSN). Required.
	Provider isolation.Provider
	// Journal is the control-plane database where moves are journaled
	// (table tenancy.moves), so that a move stopped at any step resumes when
	// run again. Required.
	Journal *pgxpool.Pool
	// Prepare makes the destination ready for the tenant's data: its
	// schema created and migrated to the version of the source. Default:
	// Provider.Initialize, which creates the schema but adds no tables.
	Prepare func(ctx context.Context, t *tenancy.Tenant) error
	// HoldFence is how long the source stays fenced after the switch, so
	// that an instance whose cache still holds the old record cannot write
	// there: set it to at least the cache's L1 TTL where invalidation may
	// be missed. Default 2s.
	HoldFence time.Duration
	// LockTimeout bounds the wait for the tenant's statements in flight to
	// finish when the freeze starts. Default 30s.
	LockTimeout time.Duration
	// StopAfter, when set, stops a move with ErrStopped right after it
	// journaled that step, as a crash would; for tests of resumption.
	StopAfter Step
	// Logger receives progress. Default slog.Default().
	Logger *slog.Logger
}

func (m *Mover) defaults() error {
	if m.Store == nil || m.Provider == nil || m.Journal == nil {
		return errors.New("move: Mover needs a Store, a Provider and a Journal")
	}
	if m.Prepare == nil {
		m.Prepare = m.Provider.Initialize
	}
	if m.HoldFence <= 0 {
		m.HoldFence = 2 * time.Second
	}
	if m.LockTimeout <= 0 {
		m.LockTimeout = 30 * time.Second
	}
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	return nil
}

// To names a move's destination: the record fields to set. Nil fields stay.
type To struct {
	// Isolation overrides the strategy the tier implies.
	Isolation *tenancy.Isolation
	// Tier changes the tenant's tier, and with it, under a Hybrid provider,
	// its strategy.
	Tier *string
	// Placement names the server.
	Placement *string
}

func (to To) apply(f fields) fields {
	if to.Isolation != nil {
		f.Isolation = *to.Isolation
	}
	if to.Tier != nil {
		f.Tier = *to.Tier
	}
	if to.Placement != nil {
		f.Placement = *to.Placement
	}
	return f
}

// Result reports a move.
type Result struct {
	// Tenant is the tenant's record after the move.
	Tenant *tenancy.Tenant
	// From and To are the places the data was copied between; equal when
	// the change of record needed no copy.
	From, To postgres.Place
	// Tables are the destination's counts and checksums, by table name.
	Tables map[string]Sum
	// Freeze is how long the tenant's statements were held.
	Freeze time.Duration
}

// Tenant moves the data of tenant id to the place its record names once to
// is applied, while it serves: it copies the data, then freezes the
// tenant's statements at the source (only that tenant's: each waits, see
// postgres.Config.FreezeTimeout), copies what changed meanwhile, verifies
// every table's row count and checksum, switches the record, keeps the
// source fenced for HoldFence and removes it. A change of record that
// leaves the place as it is (a tier with the same strategy) is only
// written. Each step is journaled and idempotent: after a crash (or
// StopAfter), running Tenant again with the same destination resumes.
func Tenant(ctx context.Context, m Mover, id string, to To) (*Result, error) {
	if err := m.defaults(); err != nil {
		return nil, err
	}
	j := journal{m.Journal}
	if err := j.ensure(ctx); err != nil {
		return nil, err
	}
	unlock, err := exclusive(ctx, m.Journal, id)
	if err != nil {
		return nil, err
	}
	defer unlock()

	cur, err := m.Store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("move: %w", err)
	}
	e, found, err := j.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if found && e.Step != StepDone {
		if to.apply(e.Source) != e.Target {
			return nil, fmt.Errorf("%w (%+v)", ErrOtherMove, e.Target)
		}
		if now := fieldsOf(cur); now != e.Source && now != e.Target {
			return nil, fmt.Errorf("move: tenant %s changed since its move was planned", id)
		}
	} else {
		e = entry{Source: fieldsOf(cur), Target: to.apply(fieldsOf(cur)), Step: StepPlanned}
		if e.Source == e.Target {
			src, err := postgres.PlaceOf(m.Provider, cur)
			if err != nil {
				return nil, fmt.Errorf("move: %w", err)
			}
			return &Result{Tenant: cur, From: src, To: src}, nil
		}
	}
	srcT, dstT := e.Source.apply(cur), e.Target.apply(cur)
	src, err := postgres.PlaceOf(m.Provider, srcT)
	if err != nil {
		return nil, fmt.Errorf("move: source: %w", err)
	}
	dst, err := postgres.PlaceOf(m.Provider, dstT)
	if err != nil {
		return nil, fmt.Errorf("move: destination: %w", err)
	}
	res := &Result{From: src, To: dst}
	if src.Same(dst) {
		// Only the record changes (say a tier with the same strategy).
		if res.Tenant, err = m.Store.Update(ctx, id, e.Target.update()); err != nil {
			return nil, fmt.Errorf("move: switch the record: %w", err)
		}
		return res, nil
	}
	if !found || e.Step == StepDone {
		if err := j.start(ctx, id, e); err != nil {
			return nil, err
		}
		if err := m.stop(StepPlanned); err != nil {
			return nil, err
		}
	}
	log := m.Logger.With("tenant", id, "from", src.String(), "to", dst.String())
	switched := fieldsOf(cur) == e.Target

	if !switched {
		if e.Step.index() < StepCopied.index() {
			log.Info("move: copying")
			if err := m.Prepare(ctx, dstT); err != nil {
				return nil, fmt.Errorf("move: prepare the destination: %w", err)
			}
			if _, err := copyAll(ctx, id, src, dst); err != nil {
				return nil, err
			}
			if err := m.mark(ctx, j, id, StepCopied); err != nil {
				return nil, err
			}
		}
		fence, err := freeze(ctx, src, m.LockTimeout)
		if err != nil {
			return nil, err
		}
		defer fence.release()
		frozen := time.Now()
		sums, err := syncAll(ctx, id, src, dst)
		if err != nil {
			return nil, err
		}
		res.Tables = sums
		if err := m.mark(ctx, j, id, StepVerified); err != nil {
			return nil, err
		}
		if res.Tenant, err = m.Store.Update(ctx, id, e.Target.update()); err != nil {
			return nil, fmt.Errorf("move: switch the record: %w", err)
		}
		res.Freeze = time.Since(frozen)
		log.Info("move: switched", "freeze", res.Freeze)
		if err := m.mark(ctx, j, id, StepSwitched); err != nil {
			return nil, err
		}
		if err := sleep(ctx, m.HoldFence); err != nil {
			return nil, err
		}
	} else {
		res.Tenant = cur
		// Resumed after the switch: fence the source again while it is
		// removed, so that no stale writer lands there meanwhile.
		fence, err := freeze(ctx, src, m.LockTimeout)
		if err != nil {
			return nil, err
		}
		defer fence.release()
		if res.Tables, err = sumAll(ctx, dst); err != nil {
			return nil, err
		}
	}
	if err := remove(ctx, src); err != nil {
		return nil, err
	}
	log.Info("move: source removed")
	if err := m.mark(ctx, j, id, StepDone); err != nil {
		return nil, err
	}
	return res, nil
}

func (f fields) update() tenancy.Update {
	iso, tier, placement := f.Isolation, f.Tier, f.Placement
	return tenancy.Update{Isolation: &iso, Tier: &tier, Placement: &placement}
}

// mark journals step s, then stops there when StopAfter says so.
func (m *Mover) mark(ctx context.Context, j journal, id string, s Step) error {
	if err := j.step(ctx, id, s); err != nil {
		return err
	}
	return m.stop(s)
}

func (m *Mover) stop(s Step) error {
	if m.StopAfter == s {
		return fmt.Errorf("%w after step %s", ErrStopped, s)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// exclusive makes sure one process at a time moves, exports into or
// imports tenant id: a session advisory lock on the journal's database,
// held on a connection of its own until unlock (or until the process
// dies).
func exclusive(ctx context.Context, pool *pgxpool.Pool, id string) (func(), error) {
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("move: connect to the journal: %w", err)
	}
	// A crashed run's session may take a moment to end on the server: wait
	// for its lock a little.
	const lock = "hashtextextended('tenancy-move:' || $1, 0)"
	if _, err := conn.Exec(ctx, "SET lock_timeout = '5s'"); err == nil {
		_, err = conn.Exec(ctx, "SELECT pg_advisory_lock("+lock+")", id)
		if err != nil {
			_ = conn.Close(context.WithoutCancel(ctx))
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "55P03" {
				return nil, fmt.Errorf("%w: %s", ErrBusy, id)
			}
			return nil, fmt.Errorf("move: lock tenant %s: %w", id, err)
		}
	} else {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("move: lock tenant %s: %w", id, err)
	}
	return func() {
		ctx := context.Background()
		_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock("+lock+")", id)
		_ = conn.Close(ctx)
	}, nil
}

// fence is a held freeze of one tenant at one place.
type fence struct {
	conn *pgx.Conn
	key  [2]int32
}

// freeze takes the tenant's fence at pl exclusively, on a session of its
// own: it waits (at most timeout) for the tenant's statements in flight,
// and from then on every new one fails its try and waits on the client.
func freeze(ctx context.Context, pl postgres.Place, timeout time.Duration) (*fence, error) {
	conn, err := pgx.ConnectConfig(ctx, pl.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("move: connect to %s: %w", pl, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_catalog.set_config('lock_timeout', $1, false)", fmt.Sprintf("%dms", timeout.Milliseconds())); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("move: freeze: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_catalog.pg_advisory_lock($1, $2)", pl.Fence[0], pl.Fence[1]); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("move: freeze the tenant at %s: %w", pl, err)
	}
	return &fence{conn: conn, key: pl.Fence}, nil
}

// release ends the freeze. A session that ends releases it too (a crash),
// but only once the server has noticed.
func (f *fence) release() {
	ctx := context.Background()
	_, _ = f.conn.Exec(ctx, "SELECT pg_catalog.pg_advisory_unlock($1, $2)", f.key[0], f.key[1])
	_ = f.conn.Close(ctx)
}

// copyAll replaces the tenant's rows at dst by those at src, read in one
// snapshot, and returns the copied counts.
func copyAll(ctx context.Context, id string, src, dst postgres.Place) (map[string]int64, error) {
	pairs, err := pairTables(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	return copyPairs(ctx, id, src, dst, pairs)
}

func copyPairs(ctx context.Context, id string, src, dst postgres.Place, pairs []pair) (map[string]int64, error) {
	out := map[string]int64{}
	srcTx, err := src.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("move: read %s: %w", src, err)
	}
	defer func() { _ = srcTx.Rollback(context.WithoutCancel(ctx)) }()
	if err := setTenant(ctx, srcTx, id); err != nil {
		return nil, fmt.Errorf("move: read %s: %w", src, err)
	}
	dstTx, err := dst.Pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("move: write %s: %w", dst, err)
	}
	defer func() { _ = dstTx.Rollback(context.WithoutCancel(ctx)) }()
	if err := setTenant(ctx, dstTx, id); err != nil {
		return nil, fmt.Errorf("move: write %s: %w", dst, err)
	}
	tables := make([]postgres.Table, len(pairs))
	for i, p := range pairs {
		tables[i] = p.dst
	}
	if err := clear(ctx, dstTx, dst, tables); err != nil {
		return nil, err
	}
	// Parents first.
	for i := len(pairs) - 1; i >= 0; i-- {
		n, err := copyTable(ctx, srcTx, src, dstTx, pairs[i])
		if err != nil {
			return nil, fmt.Errorf("move: copy %s: %w", pairs[i].dst.Name, err)
		}
		out[pairs[i].dst.Name] = n
	}
	if err := dstTx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("move: write %s: %w", dst, err)
	}
	return out, nil
}

// sums returns each pair's checksum at src and at dst, both sides at once.
func sums(ctx context.Context, src, dst postgres.Place, pairs []pair) (s, d []Sum, err error) {
	side := func(pl postgres.Place, pick func(pair) postgres.Table) ([]Sum, error) {
		out := make([]Sum, len(pairs))
		err := inTenant(ctx, pl, func(tx pgx.Tx) error {
			for i, p := range pairs {
				var err error
				if out[i], err = checksum(ctx, tx, pl, pick(p), p.cols); err != nil {
					return err
				}
			}
			return nil
		})
		return out, err
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		d, err = side(dst, func(p pair) postgres.Table { return p.dst })
		errc <- err
	}()
	s, err = side(src, func(p pair) postgres.Table { return p.src })
	if derr := <-errc; err == nil {
		err = derr
	}
	return s, d, err
}

// syncAll, under the freeze, copies again the tables whose rows changed
// since the copy (with every table that references one of them, whose rows
// clearing it could cascade into), then verifies every table.
func syncAll(ctx context.Context, id string, src, dst postgres.Place) (map[string]Sum, error) {
	pairs, err := pairTables(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	s, d, err := sums(ctx, src, dst, pairs)
	if err != nil {
		return nil, err
	}
	last := -1
	for i := range pairs {
		if s[i] != d[i] {
			last = i
		}
	}
	if last >= 0 {
		// pairs are children first: every table that references table
		// last comes before it.
		if _, err := copyPairs(ctx, id, src, dst, pairs[:last+1]); err != nil {
			return nil, err
		}
		if s, d, err = sums(ctx, src, dst, pairs); err != nil {
			return nil, err
		}
	}
	out := map[string]Sum{}
	for i, p := range pairs {
		if s[i] != d[i] {
			return nil, fmt.Errorf("%w: %s has %d rows (checksum %s) at %s and %d (checksum %s) at %s",
				ErrVerify, p.dst.Name, s[i].Rows, s[i].Checksum, src, d[i].Rows, d[i].Checksum, dst)
		}
		out[p.dst.Name] = d[i]
	}
	return out, nil
}

// sumAll returns the destination's sums, for a move resumed after its
// switch: the source may already be gone.
func sumAll(ctx context.Context, dst postgres.Place) (map[string]Sum, error) {
	tables, err := dst.Tables(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]Sum{}
	err = inTenant(ctx, dst, func(tx pgx.Tx) error {
		for _, t := range tables {
			s, err := checksum(ctx, tx, dst, t, t.Columns)
			if err != nil {
				return err
			}
			out[t.Name] = s
		}
		return nil
	})
	return out, err
}

// remove deletes the tenant's data at pl: its rows of the shared tables, or
// its schema.
func remove(ctx context.Context, pl postgres.Place) error {
	if pl.Schema != "" {
		if _, err := pl.Pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{pl.Schema}.Sanitize()+" CASCADE"); err != nil {
			return fmt.Errorf("move: remove %s: %w", pl, err)
		}
		return nil
	}
	tables, err := pl.Tables(ctx)
	if err != nil {
		return err
	}
	return inTenant(ctx, pl, func(tx pgx.Tx) error { return clear(ctx, tx, pl, tables) })
}

// inTenant runs fn in a transaction at pl with the tenant set, so that
// under FORCE ROW LEVEL SECURITY the policies admit the tenant's rows to a
// connecting role that owns the tables: without it, such a role would see
// no row at all, and every count and checksum would be zero.
func inTenant(ctx context.Context, pl postgres.Place, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pl.Pool, func(tx pgx.Tx) error {
		if err := setTenant(ctx, tx, pl.TenantID()); err != nil {
			return err
		}
		return fn(tx)
	})
}
