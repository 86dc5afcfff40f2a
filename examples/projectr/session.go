package main

import (
	"context"
	"database/sql"
	"errors"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/go-tenancy/tenancy/jobs"
	"github.com/riverqueue/river"
	"gorm.io/gorm"
)

// pgSession runs GORM on the toolkit's database/sql connector
// (postgres.OpenDB over the hybrid provider): each statement runs in the
// scope of the tenant its context carries, in the same round trip, in the
// tenant's schema or under row-level security as its tier says. A
// transaction's jobs are inserted in it by River's database/sql driver.
type pgSession struct {
	db *gorm.DB
	// insert is River's client on riverdatabasesql, which inserts jobs in
	// a *sql.Tx of the connector; it runs no jobs.
	insert *river.Client[*sql.Tx]
}

func (s *pgSession) use(ctx context.Context, t *tenancy.Tenant, fn func(*gorm.DB) error) error {
	return fn(s.db.WithContext(tenancy.WithTenant(ctx, t)))
}

func (s *pgSession) write(ctx context.Context, t *tenancy.Tenant, fn func(*gorm.DB, *sql.Tx, enqueueFunc) error) error {
	ctx = tenancy.WithTenant(ctx, t)
	return s.db.WithContext(ctx).Transaction(func(db *gorm.DB) error {
		tx, ok := sqlTxOf(db)
		if !ok {
			return errors.New("GORM transaction is not a *sql.Tx")
		}
		return fn(db, tx, func(ctx context.Context, args jobs.Args) error {
			_, err := s.insert.InsertTx(ctx, tx, args, nil)
			return err
		})
	})
}

// sqliteSession runs GORM on a tenant's SQLite file. Writes go through the
// jobs Enqueuer's transaction, whose jobs wait in the file's outbox until
// it commits and are then relayed to the queue's own file.
type sqliteSession struct {
	base     *gorm.DB
	provider *sqlite.Provider
	enqueuer *jobs.Enqueuer
}

func (s *sqliteSession) use(ctx context.Context, t *tenancy.Tenant, fn func(*gorm.DB) error) error {
	ctx = tenancy.WithTenant(ctx, t)
	return s.provider.Conn(ctx, t, func(c *sql.Conn) error {
		return fn(gormOn(s.base, ctx, c))
	})
}

func (s *sqliteSession) write(ctx context.Context, t *tenancy.Tenant, fn func(*gorm.DB, *sql.Tx, enqueueFunc) error) error {
	ctx = tenancy.WithTenant(ctx, t)
	return s.enqueuer.SQLTx(ctx, t, func(tx *jobs.SQLTx) error {
		return fn(gormOn(s.base, ctx, tx.Tx), tx.Tx, func(ctx context.Context, args jobs.Args) error {
			return tx.Insert(ctx, args, nil)
		})
	})
}
