package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/lifecycle"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Queue is River's job table as the toolkit's lifecycle sees it: it forgets
// a purged tenant's jobs, queued, running and finished, and reports any left
// (tenancy.Component); and it wakes a tenant's snoozed jobs once the tenant
// is served again.
//
// It reaches the table directly, as the connecting role, which must see
// every job: River's application role or owner, not a tenant scope.
type Queue struct {
	pg     *pgxpool.Pool
	lite   *sql.DB
	schema string
}

var _ tenancy.Component = (*Queue)(nil)

// NewPostgresQueue returns the Queue of River's tables in schema
// (DefaultSchema when empty) of pool's database.
func NewPostgresQueue(pool *pgxpool.Pool, schema string) (*Queue, error) {
	if pool == nil {
		return nil, errors.New("jobs: NewPostgresQueue needs a pool")
	}
	cfg := PostgresConfig{Schema: schema}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Queue{pg: pool, schema: cfg.Schema}, nil
}

// NewSQLiteQueue returns the Queue of River's tables in db, the queue's own
// SQLite file.
func NewSQLiteQueue(db *sql.DB) (*Queue, error) {
	if db == nil {
		return nil, errors.New("jobs: NewSQLiteQueue needs a database")
	}
	return &Queue{lite: db}, nil
}

func (q *Queue) table() string {
	if q.pg != nil {
		return q.schema + ".river_job"
	}
	return "river_job"
}

func (q *Queue) match() string {
	if q.pg != nil {
		return "(args ->> '" + ArgsKey + "') = $1"
	}
	return "(args ->> '$." + ArgsKey + "') = ?"
}

func (q *Queue) exec(ctx context.Context, sql string, id string) (int64, error) {
	if q.pg != nil {
		tag, err := q.pg.Exec(ctx, sql, id)
		return tag.RowsAffected(), err
	}
	res, err := q.lite.ExecContext(ctx, sql, id)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Forget implements tenancy.Component: it deletes every job whose args name
// t, whatever its state. A job running at that moment loses its row; River
// logs that it could not record its outcome.
func (q *Queue) Forget(ctx context.Context, t *tenancy.Tenant) error {
	if t == nil {
		return tenancy.ErrNoTenant
	}
	if _, err := q.exec(ctx, "DELETE FROM "+q.table()+" WHERE "+q.match(), t.ID); err != nil {
		return fmt.Errorf("jobs: forget tenant %s: %w", t.ID, err)
	}
	return nil
}

// Residue implements tenancy.Component: the jobs left whose args name t,
// counted by state.
func (q *Queue) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	if t == nil {
		return nil, tenancy.ErrNoTenant
	}
	query := "SELECT state, count(*) FROM " + q.table() + " WHERE " + q.match() + " GROUP BY state ORDER BY state"
	var out []string
	add := func(state string, n int64) {
		out = append(out, fmt.Sprintf("%d %s job(s) of tenant %s in %s", n, state, t.ID, q.table()))
	}
	if q.pg != nil {
		rows, err := q.pg.Query(ctx, query, t.ID)
		if err != nil {
			return nil, fmt.Errorf("jobs: residue of tenant %s: %w", t.ID, err)
		}
		defer rows.Close()
		for rows.Next() {
			var state string
			var n int64
			if err := rows.Scan(&state, &n); err != nil {
				return nil, err
			}
			add(state, n)
		}
		return out, rows.Err()
	}
	rows, err := q.lite.QueryContext(ctx, query, t.ID)
	if err != nil {
		return nil, fmt.Errorf("jobs: residue of tenant %s: %w", t.ID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		add(state, n)
	}
	return out, rows.Err()
}

// Wake makes t's snoozed and scheduled jobs due now, and returns how many it
// woke. Call it when a tenant is activated (Hook does), so that its jobs
// held while it was suspended or provisioning run at once rather than at the
// end of their snooze.
func (q *Queue) Wake(ctx context.Context, t *tenancy.Tenant) (int64, error) {
	if t == nil {
		return 0, tenancy.ErrNoTenant
	}
	now := "now()"
	if q.lite != nil {
		now = "datetime('now', 'subsec')"
	}
	n, err := q.exec(ctx, "UPDATE "+q.table()+" SET scheduled_at = "+now+" WHERE state = 'scheduled' AND "+q.match(), t.ID)
	if err != nil {
		return 0, fmt.Errorf("jobs: wake tenant %s: %w", t.ID, err)
	}
	return n, nil
}

// Hook returns a lifecycle hook that wakes a tenant's jobs when it is
// activated or provisioned. A failure to wake is logged by the manager and
// costs only the rest of the snooze.
func (q *Queue) Hook() lifecycle.Hook {
	return func(ctx context.Context, e lifecycle.Event) error {
		if e.Kind != lifecycle.Activated && e.Kind != lifecycle.Provisioned {
			return nil
		}
		_, err := q.Wake(ctx, e.Tenant)
		return err
	}
}
