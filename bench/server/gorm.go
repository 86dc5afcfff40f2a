package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	gormpg "gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// gormNote is a note as a GORM model. tenant_id and created_at take the
// database's defaults when zero (the connector's tenant, now()), read back
// with RETURNING.
type gormNote struct {
	ID        string    `gorm:"primaryKey;type:uuid;default:gen_random_uuid()"`
	TenantID  string    `gorm:"default:null"`
	Title     string    `gorm:"not null"`
	Body      string    `gorm:"not null"`
	CreatedAt time.Time `gorm:"default:now();autoCreateTime:false"`
}

func (n gormNote) note() fixture.Note {
	return fixture.Note{ID: n.ID, TenantID: n.TenantID, Title: n.Title, Body: n.Body, CreatedAt: n.CreatedAt}
}

func openGORM(dialector gorm.Dialector) (*gorm.DB, error) {
	return gorm.Open(dialector, &gorm.Config{SkipDefaultTransaction: true, Logger: logger.Discard})
}

// gormNotes is GORM through the toolkit's database/sql connector over an
// RLS provider: the model has no tenant filter; the connector sets the
// request's tenant in each statement's round trip.
type gormNotes struct {
	db *gorm.DB
}

func newGORMNotes(p isolation.Provider, pool int) (*gormNotes, error) {
	sqlDB, err := postgres.OpenDB(p)
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(pool)
	sqlDB.SetMaxIdleConns(pool)
	db, err := openGORM(gormpg.New(gormpg.Config{Conn: sqlDB}))
	if err != nil {
		return nil, err
	}
	return &gormNotes{db: db}, nil
}

func tenantOf(r *http.Request) (*tenancy.Tenant, error) {
	t, ok := tenancy.FromContext(r.Context())
	if !ok {
		return nil, errNoTenant
	}
	return t, nil
}

func gormErr(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return errNotFound
	}
	return err
}

func (g *gormNotes) get(r *http.Request, id string) (fixture.Note, error) {
	var n gormNote
	err := g.db.WithContext(r.Context()).Table("notes").First(&n, "id = ?", id).Error
	return n.note(), gormErr(err)
}

func (g *gormNotes) list(r *http.Request, limit int) ([]fixture.Note, error) {
	var ns []gormNote
	if err := g.db.WithContext(r.Context()).Table("notes").Order("created_at DESC").Limit(limit).Find(&ns).Error; err != nil {
		return nil, err
	}
	return notesOf(ns), nil
}

func (g *gormNotes) create(r *http.Request, in fixture.NewNote) (fixture.Note, error) {
	n := gormNote{Title: in.Title, Body: in.Body}
	err := g.db.WithContext(r.Context()).Table("notes").Create(&n).Error
	return n.note(), err
}

func notesOf(ns []gormNote) []fixture.Note {
	out := make([]fixture.Note, len(ns))
	for i, n := range ns {
		out[i] = n.note()
	}
	return out
}

// gormPlainNotes is GORM as a team writes it without a tenancy library: pgx's
// database/sql driver, and every query filtering on tenant_id by hand.
type gormPlainNotes struct {
	db *gorm.DB
}

func newGORMPlainNotes(dsn string, pool int) (*gormPlainNotes, error) {
	db, err := openGORM(gormpg.Open(dsn))
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(pool)
	sqlDB.SetMaxIdleConns(pool)
	return &gormPlainNotes{db: db}, nil
}

func (g *gormPlainNotes) get(r *http.Request, id string) (fixture.Note, error) {
	t, err := tenantOf(r)
	if err != nil {
		return fixture.Note{}, err
	}
	var n gormNote
	err = g.db.WithContext(r.Context()).Table(fixture.PlainTable).First(&n, "id = ? AND tenant_id = ?", id, t.ID).Error
	return n.note(), gormErr(err)
}

func (g *gormPlainNotes) list(r *http.Request, limit int) ([]fixture.Note, error) {
	t, err := tenantOf(r)
	if err != nil {
		return nil, err
	}
	var ns []gormNote
	if err := g.db.WithContext(r.Context()).Table(fixture.PlainTable).Where("tenant_id = ?", t.ID).Order("created_at DESC").Limit(limit).Find(&ns).Error; err != nil {
		return nil, err
	}
	return notesOf(ns), nil
}

func (g *gormPlainNotes) create(r *http.Request, in fixture.NewNote) (fixture.Note, error) {
	t, err := tenantOf(r)
	if err != nil {
		return fixture.Note{}, err
	}
	n := gormNote{TenantID: t.ID, Title: in.Title, Body: in.Body}
	err = g.db.WithContext(r.Context()).Table(fixture.PlainTable).Create(&n).Error
	return n.note(), err
}

// gormTxNotes is the approach of gorm-multitenancy, the Go peer, for a
// schema per tenant: every request opens a transaction, sets the search
// path to the tenant's schema, and runs its query there.
type gormTxNotes struct {
	db     *gorm.DB
	prefix string
}

func (g *gormTxNotes) inTx(r *http.Request, fn func(tx *gorm.DB) error) error {
	t, err := tenantOf(r)
	if err != nil {
		return err
	}
	schema, err := isolation.Name(g.prefix, t.Identifier)
	if err != nil {
		return err
	}
	return g.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(fmt.Sprintf("SET LOCAL search_path TO %q", schema)).Error; err != nil {
			return err
		}
		return fn(tx)
	})
}

func (g *gormTxNotes) get(r *http.Request, id string) (n fixture.Note, err error) {
	err = g.inTx(r, func(tx *gorm.DB) error {
		var m gormNote
		err := tx.Table("notes").First(&m, "id = ?", id).Error
		n = m.note()
		return gormErr(err)
	})
	return n, err
}

func (g *gormTxNotes) list(r *http.Request, limit int) (out []fixture.Note, err error) {
	err = g.inTx(r, func(tx *gorm.DB) error {
		var ns []gormNote
		err := tx.Table("notes").Order("created_at DESC").Limit(limit).Find(&ns).Error
		out = notesOf(ns)
		return err
	})
	return out, err
}

func (g *gormTxNotes) create(r *http.Request, in fixture.NewNote) (n fixture.Note, err error) {
	t, err := tenantOf(r)
	if err != nil {
		return fixture.Note{}, err
	}
	err = g.inTx(r, func(tx *gorm.DB) error {
		m := gormNote{TenantID: t.ID, Title: in.Title, Body: in.Body}
		err := tx.Table("notes").Create(&m).Error
		n = m.note()
		return err
	})
	return n, err
}

// pgxNotes is the library through its pgx-typed Querier, as sqlc-generated
// code calls it.
type pgxNotes struct {
	p isolation.Provider
}

func (x *pgxNotes) querier(ctx context.Context) (*postgres.Querier, error) {
	q, err := postgres.FromContext(ctx, x.p)
	if errors.Is(err, tenancy.ErrNoTenant) {
		return nil, errNoTenant
	}
	return q, err
}

func (x *pgxNotes) get(r *http.Request, id string) (fixture.Note, error) {
	q, err := x.querier(r.Context())
	if err != nil {
		return fixture.Note{}, err
	}
	return scanNote(q.QueryRow(r.Context(), fixture.TenantGet, id))
}

func (x *pgxNotes) list(r *http.Request, limit int) ([]fixture.Note, error) {
	q, err := x.querier(r.Context())
	if err != nil {
		return nil, err
	}
	rs, err := q.Query(r.Context(), fixture.TenantList, limit)
	if err != nil {
		return nil, err
	}
	return scanNotes(rs, scanNote, limit)
}

func (x *pgxNotes) create(r *http.Request, in fixture.NewNote) (fixture.Note, error) {
	q, err := x.querier(r.Context())
	if err != nil {
		return fixture.Note{}, err
	}
	return scanNote(q.QueryRow(r.Context(), fixture.TenantCreate, in.Title, in.Body))
}
