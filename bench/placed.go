package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Modes over more than one server run only when -modes names them, since
// they need servers of their own:
//
//   - rls-2servers and schema-2servers are rls and schema mode with the
//     tenants from secondFrom on placed (tenancy.Tenant.Placement) on a
//     second PostgreSQL server (Config.DSN2), each server with its own pool
//     of Config.Pool connections (isolation/postgres Config.Placements);
//   - citus-rls is rls mode over a notes table distributed on tenant_id on a
//     Citus coordinator (Config.CitusDSN), and citus-schema schema mode over
//     a distributed schema per tenant (Citus schema-based sharding), both
//     with isolation/postgres Config.Citus.
var placedModes = []string{"rls-2servers", "schema-2servers", "citus-rls", "citus-schema"}

func twoServers(mode string) bool { return mode == "rls-2servers" || mode == "schema-2servers" }

func onCitus(mode string) bool { return mode == "citus-rls" || mode == "citus-schema" }

// secondFrom returns the first tenant placed on the second server: half of
// the tenants are.
func secondFrom(tenants int) int { return tenants / 2 }

// checkPlaced refuses placed modes whose servers are not given.
func (c *Config) checkPlaced(modes []string) error {
	for _, m := range modes {
		var dsn, flag string
		switch {
		case twoServers(m):
			dsn, flag = c.DSN2, "-dsn2 (or DATABASE_URL2)"
		case onCitus(m):
			dsn, flag = c.CitusDSN, "-citus-dsn (or CITUS_URL)"
		default:
			continue
		}
		if dsn == "" {
			return fmt.Errorf("mode %s needs %s: a PostgreSQL URL", m, flag)
		}
		if u, err := url.Parse(dsn); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return fmt.Errorf("mode %s: %s must be a postgres:// URL", m, flag)
		}
		if c.Delay > 0 {
			return fmt.Errorf("mode %s: -delay applies to the first server only; leave it out", m)
		}
	}
	return nil
}

// placed is what the placed modes of a run use besides the first server:
// a scratch database of the same name on the second server, and scratch
// schemas in the Citus coordinator's database (a Citus database needs the
// extension on every node, so the run shares it and names its schemas
// after itself).
type placed struct {
	// second is a superuser pool on the second server's scratch database;
	// secondURL its URL.
	second    *pgxpool.Pool
	secondURL url.URL
	// citus is a superuser pool on the coordinator; citusURL its URL.
	citus    *pgxpool.Pool
	citusURL url.URL
	// citusTable is the schema of citus-rls's distributed table;
	// citusPrefix the tenant-schema prefix of citus-schema.
	citusTable, citusPrefix string
	cleanup                 []func(context.Context) error
}

// close drops what setupPlaced created; the servers must be stopped first.
func (p *placed) close(ctx context.Context) error {
	var errs []error
	for i := len(p.cleanup) - 1; i >= 0; i-- {
		errs = append(errs, p.cleanup[i](ctx))
	}
	return errors.Join(errs...)
}

// String describes the placed modes' seed, for the log.
func (p *placed) String() string {
	var parts []string
	if p.second != nil {
		parts = append(parts, "a second server's scratch database")
	}
	if p.citusTable != "" {
		parts = append(parts, "Citus schemas "+p.citusTable+" and "+p.citusPrefix+"*")
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}

// pools returns the pools the placed servers' PostgreSQL backends are
// found on, for their CPU time.
func (p *placed) pools() []*pgxpool.Pool {
	var out []*pgxpool.Pool
	for _, pool := range []*pgxpool.Pool{p.second, p.citus} {
		if pool != nil {
			out = append(out, pool)
		}
	}
	return out
}

// setupPlaced seeds the placed modes among modes: on first (the first
// server's scratch database) the tenants before secondFrom, on the second
// server's scratch database dbName the others, and on Citus every tenant.
// It returns what was set up, to be closed even on error.
func setupPlaced(ctx context.Context, cfg Config, modes []string, first *pgxpool.Pool, dbName, runID string, data *fixtureData) (*placed, error) {
	p := &placed{}
	split := secondFrom(cfg.Tenants)
	if slices.ContainsFunc(modes, twoServers) {
		base, _ := url.Parse(cfg.DSN2)
		admin, err := pgx.Connect(ctx, cfg.DSN2)
		if err != nil {
			return p, fmt.Errorf("connect to the second server %s: %w", base.Redacted(), err)
		}
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
			admin.Close(ctx)
			return p, fmt.Errorf("create scratch database on the second server: %w", err)
		}
		p.cleanup = append(p.cleanup, func(ctx context.Context) error {
			defer admin.Close(ctx)
			if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)"); err != nil {
				return fmt.Errorf("drop scratch database %s on the second server: %w", dbName, err)
			}
			return nil
		})
		p.secondURL = *base
		p.secondURL.Path = "/" + dbName
		if p.second, err = pgxpool.New(ctx, p.secondURL.String()); err != nil {
			return p, fmt.Errorf("open a pool on the second server: %w", err)
		}
		p.cleanup = append(p.cleanup, func(context.Context) error { p.second.Close(); return nil })
		if err := postgres.EnsureRole(ctx, p.second, postgres.DefaultRole); err != nil {
			return p, fmt.Errorf("second server: %w", err)
		}
		if cfg.AppUser != "" {
			if err := setupAppUser(ctx, p.second, cfg.AppUser, seedNeed{}); err != nil {
				return p, fmt.Errorf("second server: %w", err)
			}
		}
		for _, m := range modes {
			for _, srv := range []struct {
				pool     *pgxpool.Pool
				from, to int
			}{{first, 0, split}, {p.second, split, cfg.Tenants}} {
				var err error
				switch m {
				case "rls-2servers":
					err = seedTable(ctx, srv.pool, dataSchema(m), fixture.NotesDDL, nil, data, srv.from, srv.to)
				case "schema-2servers":
					err = seedSchemas(ctx, srv.pool, schemaPrefix(cfg, m), data, srv.from, srv.to, false)
				}
				if err != nil {
					return p, fmt.Errorf("seed %s: %w", m, err)
				}
			}
		}
		for _, pool := range []*pgxpool.Pool{first, p.second} {
			if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
				return p, fmt.Errorf("analyze: %w", err)
			}
		}
	}
	if slices.ContainsFunc(modes, onCitus) {
		base, _ := url.Parse(cfg.CitusDSN)
		p.citusURL = *base
		var err error
		if p.citus, err = pgxpool.New(ctx, cfg.CitusDSN); err != nil {
			return p, fmt.Errorf("open a pool on the Citus coordinator %s: %w", base.Redacted(), err)
		}
		p.cleanup = append(p.cleanup, func(context.Context) error { p.citus.Close(); return nil })
		// Citus connects to the workers as the tenant role: it must log in.
		if err := postgres.EnsureRole(ctx, p.citus, postgres.DefaultRole); err != nil {
			return p, fmt.Errorf("citus: %w", err)
		}
		if _, err := p.citus.Exec(ctx, "ALTER ROLE "+postgres.DefaultRole+" LOGIN"); err != nil {
			return p, fmt.Errorf("citus: let the tenant role log in: %w", err)
		}
		if cfg.AppUser != "" {
			if err := setupAppUser(ctx, p.citus, cfg.AppUser, seedNeed{}); err != nil {
				return p, fmt.Errorf("citus: %w", err)
			}
		}
		var schemas []string
		p.cleanup = append(p.cleanup, func(ctx context.Context) error {
			if len(schemas) == 0 {
				return nil
			}
			idents := make([]string, len(schemas))
			for i, s := range schemas {
				idents[i] = pgx.Identifier{s}.Sanitize()
			}
			if _, err := p.citus.Exec(ctx, "DROP SCHEMA IF EXISTS "+strings.Join(idents, ", ")+" CASCADE"); err != nil {
				return fmt.Errorf("drop the run's schemas on Citus: %w", err)
			}
			return nil
		})
		// A prefix has at most 7 bytes: the run's last four characters.
		p.citusTable, p.citusPrefix = "bench_"+runID, "cb"+runID[len(runID)-4:]+"_"
		if slices.Contains(modes, "citus-rls") {
			schemas = append(schemas, p.citusTable)
			distribute := []string{postgres.DistributeTable(pgx.Identifier{p.citusTable, "notes"}.Sanitize())}
			if err := seedTable(ctx, p.citus, p.citusTable, fixture.CitusNotesDDL, distribute, data, 0, cfg.Tenants); err != nil {
				return p, fmt.Errorf("seed citus-rls: %w", err)
			}
		}
		if slices.Contains(modes, "citus-schema") {
			for i := range cfg.Tenants {
				name, err := isolation.Name(p.citusPrefix, fixture.Identifier(i))
				if err != nil {
					return p, err
				}
				schemas = append(schemas, name)
			}
			if err := seedSchemas(ctx, p.citus, p.citusPrefix, data, 0, cfg.Tenants, true); err != nil {
				return p, fmt.Errorf("seed citus-schema: %w", err)
			}
		}
		if _, err := p.citus.Exec(ctx, "ANALYZE"); err != nil {
			return p, fmt.Errorf("citus: analyze: %w", err)
		}
	}
	return p, nil
}

// serverDSNs returns the URLs a placed mode's server gets: dsn for its
// first (or only) server, dsn2 for the second; app is the login role.
func (p *placed) serverDSNs(mode, app string) (dsn, dsn2 string) {
	with := func(u url.URL, schema string) string {
		if app != "" {
			u.User = url.User(app)
		}
		q := u.Query()
		q.Set("application_name", "bench-"+mode)
		if schema != "" {
			q.Set("search_path", schema)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	switch mode {
	case "citus-rls":
		return with(p.citusURL, p.citusTable), ""
	case "citus-schema":
		return with(p.citusURL, ""), ""
	}
	return "", with(p.secondURL, dataSchema(mode))
}

// noteRows returns the seeded notes of tenants from..to-1, with the IDs of
// data (every store holds the same IDs for the same tenant).
func noteRows(data *fixtureData, from, to int) (pgx.CopyFromSource, error) {
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	rows := make([][]any, 0, (to-from)*data.notes)
	for i := from; i < to; i++ {
		for k, id := range data.ids[i] {
			u, err := uuid.Parse(id)
			if err != nil {
				return nil, err
			}
			rows = append(rows, []any{u, fmt.Sprintf("note %d", k), noteBody, base.Add(time.Duration(k) * time.Second), fixture.ID(i)})
		}
	}
	return pgx.CopyFromRows(rows), nil
}

var noteColumns = []string{"id", "title", "body", "created_at", "tenant_id"}

// seedTable creates schema holding the notes table (ddl, then row-level
// security, then after, such as distributing it), and copies the notes of
// tenants from..to-1 in as the pool's superuser.
func seedTable(ctx context.Context, pool *pgxpool.Pool, schema string, ddl, after []string, data *fixtureData, from, to int) error {
	ident := pgx.Identifier{schema}.Sanitize()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	stmts := append([]string{"CREATE SCHEMA " + ident, "SET search_path TO " + ident}, ddl...)
	stmts = append(append(stmts, fixture.NotesRLS...), after...)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			_, _ = conn.Exec(ctx, "RESET search_path")
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	if _, err := conn.Exec(ctx, "RESET search_path"); err != nil {
		return err
	}
	rows, err := noteRows(data, from, to)
	if err != nil {
		return err
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "notes"}, noteColumns, rows); err != nil {
		return fmt.Errorf("copy into %s.notes: %w", schema, err)
	}
	return postgres.GrantSchema(ctx, conn, schema, postgres.DefaultRole)
}

// seedSchemas creates the tenant schemas prefix<identifier> of tenants
// from..to-1, each with its notes and sealed for its tenant; on Citus each
// is then distributed (schema-based sharding), one at a time.
func seedSchemas(ctx context.Context, pool *pgxpool.Pool, prefix string, data *fixtureData, from, to int, citus bool) error {
	for i := from; i < to; i++ {
		name, err := isolation.Name(prefix, fixture.Identifier(i))
		if err != nil {
			return err
		}
		ident := pgx.Identifier{name}.Sanitize()
		rows, err := noteRows(data, i, i+1)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if err := execAll(ctx, tx, append([]string{"CREATE SCHEMA " + ident, "SET LOCAL search_path TO " + ident}, fixture.NotesDDL...)); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{name, "notes"}, noteColumns, rows); err != nil {
				return fmt.Errorf("copy into %s.notes: %w", name, err)
			}
			if err := execAll(ctx, tx, fixture.NotesRLS); err != nil {
				return err
			}
			if err := postgres.GrantSchema(ctx, tx, name, postgres.DefaultRole); err != nil {
				return err
			}
			if citus {
				return postgres.SealSchemaCitus(ctx, tx, name, fixture.ID(i))
			}
			return postgres.SealSchema(ctx, tx, name, fixture.ID(i))
		})
		if err != nil {
			return fmt.Errorf("schema %s: %w", name, err)
		}
		if citus {
			if _, err := pool.Exec(ctx, postgres.DistributeSchema(name)); err != nil {
				return fmt.Errorf("distribute schema %s: %w", name, err)
			}
		}
	}
	return nil
}
