package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// seedNeed says what the chosen modes read.
type seedNeed struct {
	// tenants is T: tenants 0..T-1 are in the shared tables and files.
	tenants int
	plain   bool // notes_plain (baseline)
	rls     bool // notes under RLS in public (tx, rls, hybrid)
	schemas int  // tenants 0..schemas-1 have a schema (schema, hybrid, schema-<n>)
	sqlite  bool // a file per tenant
}

func (n seedNeed) String() string {
	var parts []string
	if n.plain {
		parts = append(parts, fmt.Sprintf("%d tenants in notes_plain", n.tenants))
	}
	if n.rls {
		parts = append(parts, fmt.Sprintf("%d tenants in notes under RLS", n.tenants))
	}
	if n.schemas > 0 {
		parts = append(parts, fmt.Sprintf("%d tenant schemas", n.schemas))
	}
	if n.sqlite {
		parts = append(parts, fmt.Sprintf("%d SQLite files", n.tenants))
	}
	return strings.Join(parts, ", ")
}

func seedNeeds(cfg Config, modes []string) seedNeed {
	n := seedNeed{tenants: cfg.Tenants}
	for _, m := range modes {
		switch m {
		case "baseline":
			n.plain = true
		case "tx", "rls":
			n.rls = true
		case "schema":
			n.schemas = max(n.schemas, cfg.Tenants)
		case "hybrid":
			n.rls = true
			n.schemas = max(n.schemas, cfg.Tenants)
		case "sqlite":
			n.sqlite = true
		case cfg.schemaMode():
			n.schemas = max(n.schemas, cfg.SchemaTenants)
		}
	}
	return n
}

// fixtureData is what the driver needs to know of the seed.
type fixtureData struct {
	// ids holds the seeded note IDs of tenant i at ids[i]. Every store holds
	// the same IDs for the same tenant.
	ids [][]string
	// notes is N.
	notes     int
	sqliteDir string
}

// noteBody pads every note to a realistic size.
var noteBody = strings.Repeat("Lorem ipsum dolor sit amet. ", 4)

// seed creates the tables, schemas and files need names, and fills them.
// It runs as the DSN's role, before anything is timed.
func seed(ctx context.Context, pool *pgxpool.Pool, sqliteDir string, notes int, need seedNeed) (*fixtureData, error) {
	data := &fixtureData{notes: notes, sqliteDir: sqliteDir}
	total := max(need.tenants, need.schemas)
	data.ids = make([][]string, total)
	uuids := make([][]uuid.UUID, total)
	for i := range total {
		uuids[i] = make([]uuid.UUID, notes)
		data.ids[i] = make([]string, notes)
		for k := range notes {
			uuids[i][k] = uuid.New()
			data.ids[i][k] = uuids[i][k].String()
		}
	}
	// Seeded notes are older than anything created under load.
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	created := func(k int) time.Time { return base.Add(time.Duration(k) * time.Second) }
	rowsOf := func(first, n int, withTenant bool) pgx.CopyFromSource {
		var rows [][]any
		for i := first; i < first+n; i++ {
			for k := range notes {
				row := []any{uuids[i][k], fmt.Sprintf("note %d", k), noteBody, created(k)}
				if withTenant {
					row = append(row, fixture.ID(i))
				}
				rows = append(rows, row)
			}
		}
		return pgx.CopyFromRows(rows)
	}
	cols := []string{"id", "title", "body", "created_at", "tenant_id"}

	if err := postgres.EnsureRole(ctx, pool, postgres.DefaultRole); err != nil {
		return nil, err
	}
	if need.plain || need.rls {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if need.plain {
				if err := execAll(ctx, tx, fixture.PlainDDL); err != nil {
					return err
				}
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{fixture.PlainTable}, cols, rowsOf(0, need.tenants, true)); err != nil {
					return fmt.Errorf("copy into %s: %w", fixture.PlainTable, err)
				}
			}
			if need.rls {
				if err := execAll(ctx, tx, fixture.NotesDDL); err != nil {
					return err
				}
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"notes"}, cols, rowsOf(0, need.tenants, true)); err != nil {
					return fmt.Errorf("copy into notes: %w", err)
				}
				if err := execAll(ctx, tx, fixture.NotesRLS); err != nil {
					return err
				}
			}
			return postgres.GrantSchema(ctx, tx, "public", postgres.DefaultRole)
		})
		if err != nil {
			return nil, fmt.Errorf("shared tables: %w", err)
		}
	}

	// A schema per tenant, a few at a time.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range need.schemas {
		g.Go(func() error {
			name, err := isolation.Name(isolation.DefaultPrefix, fixture.Identifier(i))
			if err != nil {
				return err
			}
			ident := pgx.Identifier{name}.Sanitize()
			return pgx.BeginFunc(gctx, pool, func(tx pgx.Tx) error {
				if err := execAll(gctx, tx, []string{"CREATE SCHEMA " + ident, "SET LOCAL search_path TO " + ident}); err != nil {
					return err
				}
				if err := execAll(gctx, tx, fixture.NotesDDL); err != nil {
					return err
				}
				// Every row of a tenant's schema is the tenant's: the column
				// default is not set while seeding, so name it.
				if _, err := tx.CopyFrom(gctx, pgx.Identifier{name, "notes"}, cols, rowsOf(i, 1, true)); err != nil {
					return fmt.Errorf("copy into %s.notes: %w", name, err)
				}
				if err := execAll(gctx, tx, fixture.NotesRLS); err != nil {
					return err
				}
				return postgres.GrantSchema(gctx, tx, name, postgres.DefaultRole)
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("tenant schemas: %w", err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}

	if need.sqlite {
		if err := seedSQLite(ctx, sqliteDir, need.tenants, func(i int) [][]any {
			out := make([][]any, notes)
			for k := range notes {
				out[k] = []any{data.ids[i][k], fixture.ID(i), fmt.Sprintf("note %d", k), noteBody, created(k).Format(fixture.TimeLayout)}
			}
			return out
		}); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	}
	return data, nil
}

// seedSQLite creates a file per tenant with the provider's own settings.
func seedSQLite(ctx context.Context, dir string, tenants int, rows func(i int) [][]any) error {
	p, err := sqlite.New(sqlite.Config{Dir: dir})
	if err != nil {
		return err
	}
	defer p.Close()
	for i := range tenants {
		path, err := p.Path(fixture.Tenant(i))
		if err != nil {
			return err
		}
		db, err := p.Open(path)
		if err != nil {
			return err
		}
		err = func() error {
			defer db.Close()
			for _, s := range fixture.SQLiteDDL {
				if _, err := db.ExecContext(ctx, s); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			for _, r := range rows(i) {
				if _, err := tx.ExecContext(ctx, "INSERT INTO notes (id, tenant_id, title, body, created_at) VALUES (?, ?, ?, ?, ?)", r...); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
			}
			return tx.Commit()
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

func execAll(ctx context.Context, tx pgx.Tx, stmts []string) error {
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
