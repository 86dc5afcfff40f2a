package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/jwtauth"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	gormpg "gorm.io/driver/postgres"
)

// projectRow is Projectr's project model: no tenant filter in any query
// of the library mode; tenant_id is read back so that the harness can tell
// whose row it got.
type projectRow struct {
	TenantID    string `gorm:"primaryKey"`
	ID          string `gorm:"primaryKey"`
	Name        string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (projectRow) TableName() string { return "projects" }

func (r projectRow) project() fixture.Project {
	return fixture.Project{ID: r.ID, TenantID: r.TenantID, Name: r.Name, Description: r.Description,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// openProjectr is Projectr's read path: the tenant from the bearer token
// (resolve.JWT, HS256, over the cached store, through the middleware),
// hybrid isolation by tier (starters under RLS on shared tables,
// enterprise tenants in a schema each), and GORM through the toolkit's
// database/sql connector with no tenant in the query.
func openProjectr(ctx context.Context, o options, pool *pgxpool.Pool, logger *slog.Logger, b *backend) (http.Handler, error) {
	lookup, err := tenantStore(ctx, o.tenants, logger, b)
	if err != nil {
		return nil, err
	}
	verifier, err := jwtauth.NewVerifier(fixture.TokenConfig())
	if err != nil {
		return nil, err
	}
	pgCfg := postgres.Config{StatementCacheCapacity: o.stmtCache, Logger: logger}
	rls, err := postgres.NewRLS(ctx, pool, pgCfg)
	if err != nil {
		return nil, err
	}
	schema, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{Config: pgCfg, Prefix: o.prefix})
	if err != nil {
		return nil, err
	}
	hybrid, err := isolation.NewHybrid(isolation.HybridConfig{
		Tiers: map[string]tenancy.Isolation{
			fixture.TierStarter:    tenancy.IsolationRLS,
			fixture.TierEnterprise: tenancy.IsolationSchema,
		},
		Default:   tenancy.IsolationRLS,
		Providers: map[tenancy.Isolation]isolation.Provider{tenancy.IsolationRLS: rls, tenancy.IsolationSchema: schema},
	})
	if err != nil {
		return nil, err
	}
	sqlDB, err := postgres.OpenDB(hybrid)
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(o.pool)
	sqlDB.SetMaxIdleConns(o.pool)
	b.closers = append(b.closers, func() { _ = sqlDB.Close() })
	db, err := openGORM(gormpg.New(gormpg.Config{Conn: sqlDB}))
	if err != nil {
		return nil, err
	}
	h := newAppHandlers(logger)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if uuid.Validate(id) != nil {
			h.fail(w, r, errNotFound)
			return
		}
		var row projectRow
		err := db.WithContext(r.Context()).First(&row, "id = ?", id).Error
		h.reply(w, r, row.project(), gormErr(err))
	})
	mw := middleware.New(middleware.Config{
		Resolver:    resolve.JWT{Verifier: verifier, Lookup: lookup},
		PublicPaths: []string{"GET /healthz"},
		Logger:      logger,
	})
	return mw(mux), nil
}

// openProjectrBase is the same request without tenancy: plain GORM on one
// shared table, every query filtering on tenant_id by hand, the tenant
// looked up in a map. In mode projectr-base the identifier comes from the
// same bearer token, verified the same way (so the ratio to it is the
// isolation's cost); in projectr-nojwt from the X-Tenant-ID header (so the
// ratio to it is the whole cost, token verification included).
func openProjectrBase(_ context.Context, o options, _ *pgxpool.Pool, logger *slog.Logger, b *backend) (http.Handler, error) {
	var verifier *jwtauth.Verifier
	if o.mode == "projectr-base" {
		var err error
		if verifier, err = jwtauth.NewVerifier(fixture.TokenConfig()); err != nil {
			return nil, err
		}
	}
	g, err := newGORMPlainNotes(o.dsn, o.pool)
	if err != nil {
		return nil, err
	}
	if sqlDB, err := g.db.DB(); err == nil {
		b.closers = append(b.closers, func() { _ = sqlDB.Close() })
	}
	ids := tenantIDs(o.tenants)
	tenantOf := func(r *http.Request) (string, error) {
		identifier := r.Header.Get(fixture.Header)
		if verifier != nil {
			token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				return "", errUnauthenticated
			}
			var err error
			if identifier, _, err = verifier.VerifyTenant(token); err != nil {
				return "", errUnauthenticated
			}
		}
		if identifier == "" {
			return "", errNoTenant
		}
		id, ok := ids[identifier]
		if !ok {
			return "", errUnknownTenant
		}
		return id, nil
	}
	h := newAppHandlers(logger)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		tid, err := tenantOf(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		id := r.PathValue("id")
		if uuid.Validate(id) != nil {
			h.fail(w, r, errNotFound)
			return
		}
		var row projectRow
		err = g.db.WithContext(r.Context()).First(&row, "tenant_id = ? AND id = ?", tid, id).Error
		h.reply(w, r, row.project(), gormErr(err))
	})
	return mux, nil
}

// errUnauthenticated is a missing or bad bearer token.
var errUnauthenticated = errors.New("missing or bad bearer token")
