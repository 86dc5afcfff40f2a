package move

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// fields are what a move changes in a tenant's record: what decides its
// place.
type fields struct {
	Isolation tenancy.Isolation `json:"isolation"`
	Tier      string            `json:"tier"`
	Placement string            `json:"placement"`
}

func fieldsOf(t *tenancy.Tenant) fields {
	return fields{Isolation: t.Isolation, Tier: t.Tier, Placement: t.Placement}
}

func (f fields) apply(t *tenancy.Tenant) *tenancy.Tenant {
	c := t.Clone()
	c.Isolation, c.Tier, c.Placement = f.Isolation, f.Tier, f.Placement
	return c
}

// entry is a tenant's row in the journal.
type entry struct {
	Source fields
	Target fields
	Step   Step
}

// journalDDL creates the journal: one row per tenant, for its latest move.
const journalDDL = `CREATE SCHEMA IF NOT EXISTS tenancy;
CREATE TABLE IF NOT EXISTS tenancy.moves (
    tenant_id  text PRIMARY KEY,
    source     jsonb NOT NULL,
    target     jsonb NOT NULL,
    step       text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
)`

type journal struct{ pool *pgxpool.Pool }

func (j journal) ensure(ctx context.Context) error {
	// Concurrent first runs may race on the catalog; the table exists
	// either way.
	if _, err := j.pool.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('tenancy-moves-journal', 0)); "+journalDDL); err != nil {
		return fmt.Errorf("move: create the journal: %w", err)
	}
	return nil
}

func (j journal) load(ctx context.Context, id string) (entry, bool, error) {
	var e entry
	var src, dst []byte
	var step string
	err := j.pool.QueryRow(ctx, "SELECT source, target, step FROM tenancy.moves WHERE tenant_id = $1", id).Scan(&src, &dst, &step)
	if errors.Is(err, pgx.ErrNoRows) {
		return entry{}, false, nil
	}
	if err != nil {
		return entry{}, false, fmt.Errorf("move: read the journal: %w", err)
	}
	if err := json.Unmarshal(src, &e.Source); err != nil {
		return entry{}, false, fmt.Errorf("move: read the journal: %w", err)
	}
	if err := json.Unmarshal(dst, &e.Target); err != nil {
		return entry{}, false, fmt.Errorf("move: read the journal: %w", err)
	}
	e.Step = Step(step)
	return e, true, nil
}

func (j journal) start(ctx context.Context, id string, e entry) error {
	src, _ := json.Marshal(e.Source)
	dst, _ := json.Marshal(e.Target)
	_, err := j.pool.Exec(ctx, `INSERT INTO tenancy.moves (tenant_id, source, target, step) VALUES ($1, $2, $3, $4)
ON CONFLICT (tenant_id) DO UPDATE SET source = excluded.source, target = excluded.target, step = excluded.step,
    started_at = now(), updated_at = now()`, id, src, dst, string(e.Step))
	if err != nil {
		return fmt.Errorf("move: write the journal: %w", err)
	}
	return nil
}

func (j journal) step(ctx context.Context, id string, s Step) error {
	if _, err := j.pool.Exec(ctx, "UPDATE tenancy.moves SET step = $2, updated_at = now() WHERE tenant_id = $1", id, string(s)); err != nil {
		return fmt.Errorf("move: write the journal: %w", err)
	}
	return nil
}
