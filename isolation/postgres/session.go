package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// openSession returns a *sql.DB of at most one connection, borrowed from
// pool, with settings applied for the session (migrations run as a session:
// goose opens transactions of its own). Closing the DB discards everything
// the session changed (DISCARD ALL) before the connection goes back to the
// pool, and destroys the connection instead when that fails, so nothing of
// one target reaches the next borrower. Borrowing saves a new server
// process, its authentication and its cold catalog caches per target.
//
// When the pool has no connection to spare within borrowWait (its
// connections may all be held by the runner's own locks, on the same pool),
// a connection of its own is opened instead, so that a small pool slows a
// run down but never deadlocks it.
func openSession(pool *pgxpool.Pool, settings [][2]string) *sql.DB {
	db := sql.OpenDB(&sessionConnector{inner: stdlib.GetPoolConnector(pool), direct: stdlib.GetConnector(*pool.Config().ConnConfig.Copy()), settings: settings})
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return db
}

// borrowWait is how long a migration session waits for a pooled connection
// before it opens one of its own.
const borrowWait = 200 * time.Millisecond

type sessionConnector struct {
	inner, direct driver.Connector
	settings      [][2]string
}

func (c *sessionConnector) Driver() driver.Driver { return c.inner.Driver() }

func (c *sessionConnector) Connect(ctx context.Context) (driver.Conn, error) {
	bctx, cancel := context.WithTimeout(ctx, borrowWait)
	dc, err := c.inner.Connect(bctx)
	cancel()
	if err != nil && ctx.Err() == nil {
		dc, err = c.direct.Connect(ctx)
	}
	if err != nil {
		return nil, err
	}
	conn := &sessionConn{Conn: dc.(*stdlib.Conn)}
	sql, args := "SELECT 1", []any{}
	if len(c.settings) > 0 {
		sql = "SELECT "
		for i, s := range c.settings {
			if i > 0 {
				sql += ", "
			}
			sql += fmt.Sprintf("pg_catalog.set_config($%d, $%d, false)", 2*i+1, 2*i+2)
			args = append(args, s[0], s[1])
		}
	}
	if _, err := conn.Conn.Conn().Exec(ctx, sql, args...); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("tenancy: set up migration session: %w", err)
	}
	return conn, nil
}

// sessionConn is a pooled connection that is reset before it is returned.
type sessionConn struct {
	*stdlib.Conn
}

func (c *sessionConn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pc := c.Conn.Conn()
	reset := func() error {
		if pc.PgConn().TxStatus() != 'I' {
			return fmt.Errorf("connection left in transaction state %q", pc.PgConn().TxStatus())
		}
		if _, err := pc.Exec(ctx, "DISCARD ALL"); err != nil {
			return err
		}
		// DISCARD ALL dropped the server's prepared statements: forget
		// pgx's copies too.
		return pc.DeallocateAll(ctx)
	}
	if err := reset(); err != nil && !pc.IsClosed() {
		// The pool destroys a closed connection on release.
		_ = pc.Close(ctx)
	}
	return c.Conn.Close()
}
