package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// backend is one mode, ready to serve.
type backend struct {
	handler http.Handler
	closers []func()
}

func (b *backend) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

func open(ctx context.Context, o options, logger *slog.Logger) (*backend, error) {
	b := &backend{}
	var pool *pgxpool.Pool
	if o.mode != "sqlite" {
		var err error
		if pool, err = openPool(ctx, o.dsn, o.pool); err != nil {
			return nil, err
		}
		b.closers = append(b.closers, pool.Close)
	}
	if app := appModes[o.mode]; app != nil {
		h, err := app(ctx, o, pool, logger, b)
		if err != nil {
			b.close()
			return nil, err
		}
		b.handler = h
		return b, nil
	}
	if o.mode == "baseline" {
		ids := make(map[string]string, o.tenants)
		for i := range o.tenants {
			ids[fixture.Identifier(i)] = fixture.ID(i)
		}
		b.handler = routes(&plainNotes{pool: pool, ids: ids}, logger)
		return b, nil
	}

	// Every other mode resolves the tenant through the library: the header
	// resolver over an L1-cached in-memory store, and the middleware.
	pgCfg := postgres.Config{StatementCacheCapacity: o.stmtCache, Logger: logger, Citus: o.citus}
	if o.dsn2 != "" {
		second, err := openPool(ctx, o.dsn2, o.pool)
		if err != nil {
			b.close()
			return nil, fmt.Errorf("second server: %w", err)
		}
		b.closers = append(b.closers, second.Close)
		pgCfg.Placements = map[string]*pgxpool.Pool{secondPlacement: second}
	}
	store := memstore.New()
	for i := range o.tenants {
		t := fixture.Tenant(i)
		if o.dsn2 != "" && i >= o.secondFrom {
			t.Placement = secondPlacement
		}
		if _, err := store.Create(ctx, t); err != nil {
			b.close()
			return nil, fmt.Errorf("create tenant %d: %w", i, err)
		}
	}
	cached := cache.New(store, cache.Config{Logger: logger})
	b.closers = append(b.closers, func() { _ = cached.Close() })
	mw := middleware.New(middleware.Config{
		Resolver:    resolve.Header{Name: fixture.Header, Lookup: cached},
		PublicPaths: []string{"GET /healthz"},
		Logger:      logger,
	})

	var n notes
	switch o.mode {
	case "tx":
		n = &txNotes{pool: pool, role: postgres.DefaultRole}
	case "rls":
		p, err := postgres.NewRLS(ctx, pool, pgCfg)
		if err != nil {
			b.close()
			return nil, err
		}
		n = &libNotes{p: p}
		if o.citus {
			// Statements on a distributed table name the distribution
			// column, so that Citus routes them to one shard.
			n = &libNotes{p: p, getSQL: fixture.CitusGet, listSQL: fixture.CitusList}
		}
	case "schema":
		p, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{Config: pgCfg, Prefix: o.prefix, Partitions: o.partitions})
		if err != nil {
			b.close()
			return nil, err
		}
		n = &libNotes{p: p}
	case "hybrid":
		rls, err := postgres.NewRLS(ctx, pool, pgCfg)
		if err != nil {
			b.close()
			return nil, err
		}
		schema, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{Config: pgCfg, Prefix: o.prefix})
		if err != nil {
			b.close()
			return nil, err
		}
		h, err := isolation.NewHybrid(isolation.HybridConfig{
			Tiers: map[string]tenancy.Isolation{
				fixture.TierStarter:    tenancy.IsolationRLS,
				fixture.TierEnterprise: tenancy.IsolationSchema,
			},
			Default:   tenancy.IsolationRLS,
			Providers: map[tenancy.Isolation]isolation.Provider{tenancy.IsolationRLS: rls, tenancy.IsolationSchema: schema},
		})
		if err != nil {
			b.close()
			return nil, err
		}
		n = &libNotes{p: h}
	case "pgx", "gorm":
		p, err := postgres.NewRLS(ctx, pool, pgCfg)
		if err != nil {
			b.close()
			return nil, err
		}
		if o.mode == "pgx" {
			n = &pgxNotes{p: p}
			break
		}
		if n, err = newGORMNotes(p, o.pool); err != nil {
			b.close()
			return nil, err
		}
	case "gorm-plain", "gorm-tx":
		g, err := newGORMPlainNotes(o.dsn, o.pool)
		if err != nil {
			b.close()
			return nil, err
		}
		n = g
		if o.mode == "gorm-tx" {
			n = &gormTxNotes{db: g.db, prefix: o.prefix}
		}
	case "sqlite":
		if o.sqliteDir == "" {
			return nil, errors.New("-sqlite-dir is required")
		}
		// Every tenant's file stays open: the default (64) would close and
		// reopen files all the time with more tenants than that.
		p, err := sqlite.New(sqlite.Config{Dir: o.sqliteDir, MaxOpen: max(64, o.tenants)})
		if err != nil {
			return nil, err
		}
		b.closers = append(b.closers, p.Close)
		n = &sqliteNotes{p: p}
	default:
		b.close()
		return nil, fmt.Errorf("unknown mode %q", o.mode)
	}
	b.handler = mw(routes(n, logger))
	return b, nil
}

// secondPlacement is the Placement of the tenants on the second server.
const secondPlacement = "second"

func openPool(ctx context.Context, dsn string, size int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DSN: %w", err)
	}
	cfg.MaxConns = int32(size)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return pool, nil
}

// scanner is what a pgx row and an isolation.Row share.
type scanner interface{ Scan(dest ...any) error }

func scanNote(row scanner) (fixture.Note, error) {
	var n fixture.Note
	err := row.Scan(&n.ID, &n.TenantID, &n.Title, &n.Body, &n.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, isolation.ErrNoRows) {
		return n, errNotFound
	}
	return n, err
}

// rows is what pgx.Rows and isolation.Rows share.
type rows interface {
	scanner
	Next() bool
	Err() error
	Close()
}

func scanNotes(rs rows, scan func(scanner) (fixture.Note, error), limit int) ([]fixture.Note, error) {
	defer rs.Close()
	out := make([]fixture.Note, 0, limit)
	for rs.Next() {
		n, err := scan(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rs.Err()
}

// plainNotes is the baseline: what a team writes without a tenancy library.
// The tenant is whatever the header names, looked up in a map, and every
// statement filters on tenant_id by hand.
type plainNotes struct {
	pool *pgxpool.Pool
	ids  map[string]string // identifier -> tenant ID
}

func (p *plainNotes) tenant(r *http.Request) (string, error) {
	v := r.Header.Get(fixture.Header)
	if v == "" {
		return "", errNoTenant
	}
	id, ok := p.ids[v]
	if !ok {
		return "", errUnknownTenant
	}
	return id, nil
}

func (p *plainNotes) get(r *http.Request, id string) (fixture.Note, error) {
	tid, err := p.tenant(r)
	if err != nil {
		return fixture.Note{}, err
	}
	return scanNote(p.pool.QueryRow(r.Context(), fixture.PlainGet, id, tid))
}

func (p *plainNotes) list(r *http.Request, limit int) ([]fixture.Note, error) {
	tid, err := p.tenant(r)
	if err != nil {
		return nil, err
	}
	rs, err := p.pool.Query(r.Context(), fixture.PlainList, tid, limit)
	if err != nil {
		return nil, err
	}
	return scanNotes(rs, scanNote, limit)
}

func (p *plainNotes) create(r *http.Request, n fixture.NewNote) (fixture.Note, error) {
	tid, err := p.tenant(r)
	if err != nil {
		return fixture.Note{}, err
	}
	return scanNote(p.pool.QueryRow(r.Context(), fixture.PlainCreate, tid, n.Title, n.Body))
}

// txNotes is the per-request transaction other libraries use: BEGIN, set
// the tenant, run the statement, COMMIT; four round trips.
type txNotes struct {
	pool *pgxpool.Pool
	role string
}

const txSetTenant = "SELECT set_config('" + postgres.TenantSetting + "', $1, true), set_config('role', $2, true)"

func (x *txNotes) inTx(r *http.Request, fn func(pgx.Tx) error) error {
	t, ok := tenancy.FromContext(r.Context())
	if !ok {
		return errNoTenant
	}
	ctx := r.Context()
	return pgx.BeginFunc(ctx, x.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, txSetTenant, t.ID, x.role); err != nil {
			return err
		}
		return fn(tx)
	})
}

func (x *txNotes) get(r *http.Request, id string) (n fixture.Note, err error) {
	err = x.inTx(r, func(tx pgx.Tx) error {
		n, err = scanNote(tx.QueryRow(r.Context(), fixture.TenantGet, id))
		return err
	})
	return n, err
}

func (x *txNotes) list(r *http.Request, limit int) (out []fixture.Note, err error) {
	err = x.inTx(r, func(tx pgx.Tx) error {
		rs, err := tx.Query(r.Context(), fixture.TenantList, limit)
		if err != nil {
			return err
		}
		out, err = scanNotes(rs, scanNote, limit)
		return err
	})
	return out, err
}

func (x *txNotes) create(r *http.Request, in fixture.NewNote) (n fixture.Note, err error) {
	err = x.inTx(r, func(tx pgx.Tx) error {
		n, err = scanNote(tx.QueryRow(r.Context(), fixture.TenantCreate, in.Title, in.Body))
		return err
	})
	return n, err
}

// libNotes reaches PostgreSQL through an isolation.Provider's one-shot
// calls: RLS, schema or hybrid. getSQL and listSQL replace the read statements
// fixture.TenantGet and TenantList when set; they take the tenant ID as
// their last argument.
type libNotes struct {
	p               isolation.Provider
	getSQL, listSQL string
}

func (l *libNotes) scoped(r *http.Request) (isolation.Scoped, error) {
	s, err := isolation.FromContext(r.Context(), l.p)
	if errors.Is(err, tenancy.ErrNoTenant) {
		return s, errNoTenant
	}
	return s, err
}

func (l *libNotes) get(r *http.Request, id string) (fixture.Note, error) {
	s, err := l.scoped(r)
	if err != nil {
		return fixture.Note{}, err
	}
	if l.getSQL != "" {
		return scanNote(s.QueryRow(r.Context(), l.getSQL, id, s.Tenant.ID))
	}
	return scanNote(s.QueryRow(r.Context(), fixture.TenantGet, id))
}

func (l *libNotes) list(r *http.Request, limit int) ([]fixture.Note, error) {
	s, err := l.scoped(r)
	if err != nil {
		return nil, err
	}
	var rs isolation.Rows
	if l.listSQL != "" {
		rs, err = s.Query(r.Context(), l.listSQL, limit, s.Tenant.ID)
	} else {
		rs, err = s.Query(r.Context(), fixture.TenantList, limit)
	}
	if err != nil {
		return nil, err
	}
	return scanNotes(rs, scanNote, limit)
}

func (l *libNotes) create(r *http.Request, in fixture.NewNote) (fixture.Note, error) {
	s, err := l.scoped(r)
	if err != nil {
		return fixture.Note{}, err
	}
	return scanNote(s.QueryRow(r.Context(), fixture.TenantCreate, in.Title, in.Body))
}

// sqliteNotes reaches the tenant's SQLite file through isolation/sqlite.
type sqliteNotes struct {
	p *sqlite.Provider
}

func scanSQLiteNote(row scanner) (fixture.Note, error) {
	var (
		n       fixture.Note
		created string
	)
	err := row.Scan(&n.ID, &n.TenantID, &n.Title, &n.Body, &created)
	if errors.Is(err, isolation.ErrNoRows) {
		return n, errNotFound
	}
	if err != nil {
		return n, err
	}
	if n.CreatedAt, err = time.Parse(fixture.TimeLayout, created); err != nil {
		return n, fmt.Errorf("note %s: created_at: %w", n.ID, err)
	}
	return n, nil
}

func (s *sqliteNotes) scoped(r *http.Request) (isolation.Scoped, error) {
	sc, err := isolation.FromContext(r.Context(), s.p)
	if errors.Is(err, tenancy.ErrNoTenant) {
		return sc, errNoTenant
	}
	return sc, err
}

func (s *sqliteNotes) get(r *http.Request, id string) (fixture.Note, error) {
	sc, err := s.scoped(r)
	if err != nil {
		return fixture.Note{}, err
	}
	return scanSQLiteNote(sc.QueryRow(r.Context(), fixture.SQLiteGet, id))
}

func (s *sqliteNotes) list(r *http.Request, limit int) ([]fixture.Note, error) {
	sc, err := s.scoped(r)
	if err != nil {
		return nil, err
	}
	rs, err := sc.Query(r.Context(), fixture.SQLiteList, limit)
	if err != nil {
		return nil, err
	}
	return scanNotes(rs, scanSQLiteNote, limit)
}

func (s *sqliteNotes) create(r *http.Request, in fixture.NewNote) (fixture.Note, error) {
	sc, err := s.scoped(r)
	if err != nil {
		return fixture.Note{}, err
	}
	now := time.Now().UTC().Format(fixture.TimeLayout)
	return scanSQLiteNote(sc.QueryRow(r.Context(), fixture.SQLiteCreate, uuid.NewString(), sc.Tenant.ID, in.Title, in.Body, now))
}
