package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// Notify asks Run to relay t's outbox soon. Tx and SQLTx call it after a
// commit that wrote to the outbox. It never blocks: when Run is behind, the
// next sweep relays the rows.
func (e *Enqueuer) Notify(t *tenancy.Tenant) {
	select {
	case e.kick <- t:
	default:
	}
}

// Run relays outboxes until ctx ends: a tenant's as soon as Notify names it,
// and every tenant's each SweepInterval. It returns ctx's error.
func (e *Enqueuer) Run(ctx context.Context) error {
	if e.cfg.Store == nil {
		return errors.New("jobs: EnqueuerConfig.Store is required to run the relay")
	}
	e.sweep(ctx)
	tick := timeTicker(e.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case t := <-e.kick:
			e.relayLogged(ctx, t)
		case <-tick.C:
			e.sweep(ctx)
		}
	}
}

func (e *Enqueuer) relayLogged(ctx context.Context, t *tenancy.Tenant) {
	if _, err := e.Relay(ctx, t); err != nil && ctx.Err() == nil {
		e.cfg.Logger.ErrorContext(ctx, "jobs: relay outbox", "tenant_id", t.ID, "tenant", t.Identifier, "error", err)
	}
}

// sweep relays the outbox of every tenant that has storage and whose jobs
// do not join its transactions.
func (e *Enqueuer) sweep(ctx context.Context) {
	after := ""
	for ctx.Err() == nil {
		page, err := e.cfg.Store.List(ctx, tenancy.ListParams{After: after, Limit: tenancy.MaxListLimit})
		if err != nil {
			e.cfg.Logger.ErrorContext(ctx, "jobs: sweep outboxes: list tenants", "error", err)
			return
		}
		for _, t := range page {
			if (t.Status == tenancy.StatusActive || t.Status == tenancy.StatusSuspended) && !e.Shares(t) {
				e.relayLogged(ctx, t)
			}
		}
		if len(page) < tenancy.MaxListLimit {
			return
		}
		after = page[len(page)-1].Identifier
	}
}

// Relay moves every job in t's outbox to the queue and returns how many it
// moved. Each batch is read and deleted in one transaction of the tenant,
// which holds the rows (FOR UPDATE SKIP LOCKED on PostgreSQL, the file's
// write lock on SQLite) while their jobs are inserted: a concurrent relay
// skips them, and a relay that fails after inserting leaves them for the
// next, whose inserts the jobs' unique keys turn into no-ops.
func (e *Enqueuer) Relay(ctx context.Context, t *tenancy.Tenant) (int, error) {
	if t == nil {
		return 0, tenancy.ErrNoTenant
	}
	total := 0
	for {
		n, err := e.relayBatch(ctx, t)
		total += n
		if err != nil || n < e.cfg.BatchSize {
			return total, err
		}
	}
}

func (e *Enqueuer) relayBatch(ctx context.Context, t *tenancy.Tenant) (int, error) {
	p, err := isolation.Resolve(e.cfg.Provider, t)
	if err != nil {
		return 0, err
	}
	if p.Dialect() == isolation.SQLite {
		sp, err := e.sqliteFor(t)
		if err != nil {
			return 0, err
		}
		var n int
		err = sp.BeginFunc(ctx, t, nil, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, "SELECT id, key, kind, args, opts FROM "+OutboxTable+" ORDER BY id LIMIT ?", e.cfg.BatchSize)
			if err != nil {
				return err
			}
			batch, err := scanOutbox(rows)
			if err != nil || len(batch) == 0 {
				return err
			}
			if err := e.insert(ctx, batch); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+OutboxTable+" WHERE id <= ?", batch[len(batch)-1].id); err != nil {
				return err
			}
			n = len(batch)
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("jobs: relay outbox of tenant %s: %w", t.ID, err)
		}
		return n, nil
	}
	tx, err := postgres.For(e.cfg.Provider, t).Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("jobs: relay outbox of tenant %s: %w", t.ID, err)
	}
	var n int
	err = runTx(ctx, tx, func() error {
		rows, err := tx.Query(ctx, "SELECT id, key, kind, args::text, opts::text FROM "+OutboxTable+" ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED", e.cfg.BatchSize)
		if err != nil {
			return err
		}
		batch, err := scanOutbox(pgRows{rows})
		if err != nil || len(batch) == 0 {
			return err
		}
		if err := e.insert(ctx, batch); err != nil {
			return err
		}
		ids := make([]int64, len(batch))
		for i, r := range batch {
			ids[i] = r.id
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+OutboxTable+" WHERE id = ANY($1)", ids); err != nil {
			return err
		}
		n = len(batch)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("jobs: relay outbox of tenant %s: %w", t.ID, err)
	}
	return n, nil
}

func (e *Enqueuer) insert(ctx context.Context, batch []outboxRow) error {
	params := make([]river.InsertManyParams, len(batch))
	for i, r := range batch {
		p, err := r.params()
		if err != nil {
			return err
		}
		params[i] = p
	}
	if _, err := e.cfg.Relay.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("insert into the queue: %w", err)
	}
	return nil
}

type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error { r.Rows.Close(); return nil }

func scanOutbox(rows rowScanner) ([]outboxRow, error) {
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		var args string
		var opts *string
		if err := rows.Scan(&r.id, &r.key, &r.kind, &args, &opts); err != nil {
			return nil, err
		}
		r.args = []byte(args)
		if opts != nil {
			r.opts = []byte(*opts)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
