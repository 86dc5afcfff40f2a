package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/metadata"
	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// DefaultBusyTimeout is the busy timeout used when Config.BusyTimeout is
// zero.
const DefaultBusyTimeout = 5 * time.Second

// Config configures Open and New.
type Config struct {
	// BusyTimeout is how long a statement waits for another connection's
	// write lock before failing with SQLITE_BUSY. Open puts it in the DSN; New
	// leaves the caller's handle alone. Default DefaultBusyTimeout (5s).
	BusyTimeout time.Duration
	// Logger receives migration progress. Default: a logger that discards
	// everything.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.BusyTimeout <= 0 {
		c.BusyTimeout = DefaultBusyTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// DSN returns the modernc.org/sqlite data source name that Open uses for
// path: WAL journal, the busy timeout, foreign keys on, and write
// transactions that take the write lock when they begin (_txlock=immediate),
// so that two read-modify-write transactions wait for each other instead of
// failing to upgrade their locks. Use it to open a handle for New. A zero
// busyTimeout means DefaultBusyTimeout.
func DSN(path string, busyTimeout time.Duration) string {
	if busyTimeout <= 0 {
		busyTimeout = DefaultBusyTimeout
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	// Without a "file:" prefix the driver cuts the query off at the first
	// '?' and opens the rest as a plain file name (Open refuses paths that
	// contain one).
	return path + "?" + q.Encode()
}

// Store is a tenancy.Store on SQLite (modernc.org/sqlite, pure Go). It is
// safe for concurrent use; writes are serialized by SQLite.
type Store struct {
	db    *sql.DB
	owned bool
	now   func() time.Time
	// write admits one write transaction of this process at a time. SQLite
	// has one writer anyway; queueing here, in order, keeps a burst of
	// writers from starving one of them past the busy timeout, which then
	// only has to cover other processes.
	write chan struct{}
}

var _ tenancy.Store = (*Store)(nil)

// Open opens (creating if needed) the SQLite database at path with DSN,
// brings its tables up to date and returns a store that owns the handle:
// Close closes it. The path ":memory:" gives a private in-memory store,
// limited to one connection because each connection would see its own
// database.
func Open(ctx context.Context, path string, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, errors.New("sqlitestore: open: path must be non-empty and contain no '?'")
	}
	db, err := sql.Open("sqlite", DSN(path, cfg.BusyTimeout))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	if path == ":memory:" {
		db.SetMaxOpenConns(1)
	}
	s, err := New(ctx, db, cfg)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// New returns a store on a handle the caller opened and keeps: it migrates
// the tables like Open, and Close leaves db open. Open db with DSN (or the
// same settings): without _txlock=immediate, concurrent updates may fail
// with SQLITE_BUSY instead of waiting.
func New(ctx context.Context, db *sql.DB, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := migrate(ctx, db, cfg); err != nil {
		return nil, err
	}
	return &Store{
		db:    db,
		now:   func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		write: make(chan struct{}, 1),
	}, nil
}

// Close closes the database handle if Open opened it.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlitestore: close: %w", err)
	}
	return nil
}

// Columns in the order scanTenant reads them; the aliases and domains come
// back as JSON arrays with the row.
const (
	cols = `t.id, t.identifier, t.name, t.status, t.status_reason, t.placement, t.tier, t.isolation,
	t.metadata, t.created_at, t.updated_at,
	(SELECT json_group_array(name) FROM (SELECT n.name FROM tenant_names n WHERE n.tenant_id = t.id AND n.kind = 'alias' ORDER BY n.name)),
	(SELECT json_group_array(domain) FROM (SELECT d.domain FROM tenant_domains d WHERE d.tenant_id = t.id ORDER BY d.domain))`
	sel = `SELECT ` + cols + ` FROM tenants t `

	qGetByID         = sel + `WHERE t.id = ?`
	qGetByIdentifier = sel + `WHERE t.identifier = ?`
	qGetByAlias      = sel + `WHERE t.id = (SELECT tenant_id FROM tenant_names WHERE name = ? AND kind = 'alias')`
	// An unverified domain is not there for resolution.
	qGetByDomain  = sel + `WHERE t.id = (SELECT tenant_id FROM tenant_domains WHERE domain = ? AND verified_at IS NOT NULL)`
	qList         = sel + `WHERE t.identifier > ? ORDER BY t.identifier LIMIT ?`
	qListStatus   = sel + `WHERE t.status = ? AND t.identifier > ? ORDER BY t.identifier LIMIT ?`
	qInsertTenant = `INSERT INTO tenants (id, identifier, name, status, status_reason, placement, tier, isolation, metadata, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qInsertName   = `INSERT INTO tenant_names (name, tenant_id, kind) VALUES (?, ?, ?)`
	qInsertDomain = `INSERT INTO tenant_domains (domain, tenant_id, token, created_at) VALUES (?, ?, ?, ?)`
	qUpdate       = `UPDATE tenants SET name = ?, tier = ?, isolation = ?, placement = ?, metadata = ?, updated_at = ? WHERE id = ?`
	qDropAliases  = `DELETE FROM tenant_names WHERE tenant_id = ? AND kind = 'alias' AND name NOT IN (SELECT value FROM json_each(?))`
	qSetStatus    = `UPDATE tenants SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?`
	qTouch        = `UPDATE tenants SET updated_at = ? WHERE id = ?`
	qPurgeNames   = `DELETE FROM tenant_names WHERE tenant_id = ?`
	qPurgeDomains = `DELETE FROM tenant_domains WHERE tenant_id = ?`
	qPurge        = `DELETE FROM tenants WHERE id = ?`
	qCount        = `SELECT count(*) FROM tenants`
	qCountStatus  = `SELECT count(*) FROM tenants WHERE status = ?`
	qTenantExists = `SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?)`
	qListDomains  = `SELECT d.domain, t.id, coalesce(d.token, ''), d.created_at, d.verified_at
FROM tenants t LEFT JOIN tenant_domains d ON d.tenant_id = t.id WHERE t.id = ? ORDER BY d.domain`
	qGetDomain    = `SELECT domain, tenant_id, token, created_at, verified_at FROM tenant_domains WHERE domain = ?`
	qVerifyDomain = `UPDATE tenant_domains SET verified_at = coalesce(verified_at, ?) WHERE domain = ? AND tenant_id = ?`
	qRemoveDomain = `DELETE FROM tenant_domains WHERE domain = ? AND tenant_id = ?`
)

// timeLayout stores UTC timestamps as fixed-width text with microseconds.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Get implements tenancy.Store.
func (s *Store) Get(ctx context.Context, id string) (*tenancy.Tenant, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	return s.getOne(ctx, s.db, "get tenant", qGetByID, id)
}

// GetByIdentifier implements tenancy.Store.
func (s *Store) GetByIdentifier(ctx context.Context, identifier string) (*tenancy.Tenant, error) {
	if err := tenancy.ValidateIdentifier(identifier); err != nil {
		return nil, err
	}
	return s.getOne(ctx, s.db, "get tenant by identifier", qGetByIdentifier, identifier)
}

// GetByAlias implements tenancy.Store. The alias is normalized with
// tenancy.NormalizeAlias; one that is invalid matches no tenant.
func (s *Store) GetByAlias(ctx context.Context, alias string) (*tenancy.Tenant, error) {
	a, ok := tenancy.NormalizeAlias(alias)
	if !ok {
		return nil, fmt.Errorf("sqlitestore: get tenant by alias: %w", tenancy.ErrTenantNotFound)
	}
	return s.getOne(ctx, s.db, "get tenant by alias", qGetByAlias, a)
}

// GetByDomain implements tenancy.Store: only verified domains match. The
// domain is normalized with tenancy.NormalizeDomain; one that is invalid
// matches no tenant.
func (s *Store) GetByDomain(ctx context.Context, domain string) (*tenancy.Tenant, error) {
	d, ok := tenancy.NormalizeDomain(domain)
	if !ok {
		return nil, fmt.Errorf("sqlitestore: get tenant by domain: %w", tenancy.ErrTenantNotFound)
	}
	return s.getOne(ctx, s.db, "get tenant by domain", qGetByDomain, d)
}

// querier is what reads need: a *sql.DB or a *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) getOne(ctx context.Context, q querier, op, query, key string) (*tenancy.Tenant, error) {
	t, err := scanTenant(q.QueryRowContext(ctx, query, key))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("sqlitestore: %s: %w", op, tenancy.ErrTenantNotFound)
		}
		return nil, fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	return t, nil
}

// inTx runs fn in a write transaction, committed when fn returns nil. With
// the DSN's _txlock=immediate it holds the write lock from the start.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	select {
	case s.write <- struct{}{}:
		defer func() { <-s.write }()
	case <-ctx.Done():
		return ctx.Err()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Create implements tenancy.Store. The tenant, its names (identifier and
// aliases, under one primary key) and its domains (unverified, each with a
// new token) are written in one transaction.
func (s *Store) Create(ctx context.Context, t *tenancy.Tenant) (*tenancy.Tenant, error) {
	c := t.Clone()
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.Status == "" {
		c.Status = tenancy.StatusActive
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	meta, err := metadata.Encode(c.Metadata)
	if err != nil {
		return nil, err
	}
	c.CreatedAt = s.now()
	c.UpdatedAt = c.CreatedAt
	ts := c.CreatedAt.Format(timeLayout)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, qInsertTenant, c.ID, c.Identifier, c.Name, string(c.Status), c.StatusReason,
			c.Placement, c.Tier, string(c.Isolation), meta, ts, ts)
		if err != nil {
			return tenantInsertError(err, c)
		}
		if _, err := tx.ExecContext(ctx, qInsertName, c.Identifier, c.ID, "identifier"); err != nil {
			if isUnique(err) {
				return &tenancy.DuplicateError{Field: "identifier", Value: c.Identifier}
			}
			return err
		}
		if err := insertAliases(ctx, tx, c.ID, c.Aliases); err != nil {
			return err
		}
		for _, d := range c.Domains {
			if _, err := tx.ExecContext(ctx, qInsertDomain, d, c.ID, tenancy.NewDomainToken(), ts); err != nil {
				if isUnique(err) {
					return &tenancy.DuplicateError{Field: "domain", Value: d}
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("create tenant", err)
	}
	return c, nil
}

// insertAliases adds aliases to tenant id one by one, so that a conflict
// names its alias.
func insertAliases(ctx context.Context, tx *sql.Tx, id string, aliases []string) error {
	for _, a := range aliases {
		if _, err := tx.ExecContext(ctx, qInsertName, a, id, "alias"); err != nil {
			if isUnique(err) {
				return &tenancy.DuplicateError{Field: "alias", Value: a}
			}
			return err
		}
	}
	return nil
}

// Update implements tenancy.Store. It applies u with tenancy.Update.Apply
// and writes the row and its alias changes in one transaction.
func (s *Store) Update(ctx context.Context, id string, u tenancy.Update) (*tenancy.Tenant, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	var out *tenancy.Tenant
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		old, err := scanTenant(tx.QueryRowContext(ctx, qGetByID, id))
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return tenancy.ErrTenantNotFound
			}
			return err
		}
		c, err := u.Apply(old)
		if err != nil {
			return err
		}
		meta, err := metadata.Encode(c.Metadata)
		if err != nil {
			return err
		}
		c.UpdatedAt = s.now()
		_, err = tx.ExecContext(ctx, qUpdate, c.Name, c.Tier, string(c.Isolation), c.Placement, meta,
			c.UpdatedAt.Format(timeLayout), id)
		if err != nil {
			return err
		}
		keep, err := json.Marshal(nonNil(c.Aliases))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, qDropAliases, id, string(keep)); err != nil {
			return err
		}
		var added []string
		for _, a := range c.Aliases {
			if !slices.Contains(old.Aliases, a) {
				added = append(added, a)
			}
		}
		if err := insertAliases(ctx, tx, id, added); err != nil {
			return err
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, wrap("update tenant", err)
	}
	return out, nil
}

// SetStatus implements tenancy.Store.
func (s *Store) SetStatus(ctx context.Context, id string, status tenancy.Status, reason string) (*tenancy.Tenant, error) {
	if !status.Valid() {
		return nil, &tenancy.FieldError{Field: "status", Reason: "unknown status"}
	}
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	var out *tenancy.Tenant
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, qSetStatus, string(status), reason, s.now().Format(timeLayout), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return tenancy.ErrTenantNotFound
		}
		out, err = scanTenant(tx.QueryRowContext(ctx, qGetByID, id))
		return err
	})
	if err != nil {
		return nil, wrap("set tenant status", err)
	}
	return out, nil
}

// Delete implements tenancy.Store.
func (s *Store) Delete(ctx context.Context, id string) (*tenancy.Tenant, error) {
	return s.SetStatus(ctx, id, tenancy.StatusDeleted, "deleted")
}

// Purge implements tenancy.Store. Names and domains are deleted explicitly,
// not left to the foreign key, which a caller's handle may not enforce.
func (s *Store) Purge(ctx context.Context, id string) error {
	if err := tenancy.ValidateID(id); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, qPurgeDomains, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, qPurgeNames, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM tenant_secrets WHERE tenant_id = ?`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, qPurge, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return tenancy.ErrTenantNotFound
		}
		return nil
	})
	if err != nil {
		return wrap("purge tenant", err)
	}
	return nil
}

// ListDomains implements tenancy.Store.
func (s *Store) ListDomains(ctx context.Context, id string) ([]tenancy.Domain, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	// One statement: the tenant, and its domains if it has any.
	rows, err := s.db.QueryContext(ctx, qListDomains, id)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list domains: %w", err)
	}
	defer rows.Close()
	out := []tenancy.Domain{}
	found := false
	for rows.Next() {
		found = true
		var name sql.NullString
		var d tenancy.Domain
		var createdAt, verifiedAt sql.NullString
		if err := rows.Scan(&name, &d.TenantID, &d.Token, &createdAt, &verifiedAt); err != nil {
			return nil, fmt.Errorf("sqlitestore: list domains: %w", err)
		}
		if !name.Valid {
			continue // the tenant, without domains
		}
		d.Name = name.String
		if err := parseDomainTimes(&d, createdAt.String, verifiedAt); err != nil {
			return nil, fmt.Errorf("sqlitestore: list domains: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list domains: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("sqlitestore: list domains: %w", tenancy.ErrTenantNotFound)
	}
	return out, nil
}

// AddDomain implements tenancy.Store.
func (s *Store) AddDomain(ctx context.Context, id, domain string) (*tenancy.Domain, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	name, ok := tenancy.NormalizeDomain(domain)
	if !ok {
		return nil, &tenancy.FieldError{Field: "domain", Reason: "a custom domain is a host name of two labels or more, not an IP address"}
	}
	var out *tenancy.Domain
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		d, err := scanDomain(tx.QueryRowContext(ctx, qGetDomain, name))
		switch {
		case err == nil && d.TenantID == id:
			// Held already: returned as it is, nothing written.
			out = d
			return s.checkTenant(ctx, tx, id)
		case err == nil:
			return &tenancy.DuplicateError{Field: "domain", Value: name}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		now := s.now()
		if err := s.touch(ctx, tx, id, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, qInsertDomain, name, id, tenancy.NewDomainToken(), now.Format(timeLayout)); err != nil {
			if isUnique(err) {
				return &tenancy.DuplicateError{Field: "domain", Value: name}
			}
			return err
		}
		out, err = scanDomain(tx.QueryRowContext(ctx, qGetDomain, name))
		return err
	})
	if err != nil {
		return nil, wrap("add domain", err)
	}
	return out, nil
}

// VerifyDomain implements tenancy.Store.
func (s *Store) VerifyDomain(ctx context.Context, id, domain string) (*tenancy.Domain, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	var out *tenancy.Domain
	err := s.changeDomain(ctx, id, domain, func(tx *sql.Tx, name string, now time.Time) error {
		res, err := tx.ExecContext(ctx, qVerifyDomain, now.Format(timeLayout), name, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return tenancy.ErrDomainNotFound
		}
		out, err = scanDomain(tx.QueryRowContext(ctx, qGetDomain, name))
		return err
	})
	if err != nil {
		return nil, wrap("verify domain", err)
	}
	return out, nil
}

// RemoveDomain implements tenancy.Store.
func (s *Store) RemoveDomain(ctx context.Context, id, domain string) error {
	if err := tenancy.ValidateID(id); err != nil {
		return err
	}
	err := s.changeDomain(ctx, id, domain, func(tx *sql.Tx, name string, _ time.Time) error {
		res, err := tx.ExecContext(ctx, qRemoveDomain, name, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return tenancy.ErrDomainNotFound
		}
		return nil
	})
	if err != nil {
		return wrap("remove domain", err)
	}
	return nil
}

// changeDomain runs change on a domain of tenant id in a write transaction
// that sets the tenant's UpdatedAt; an error rolls both back.
func (s *Store) changeDomain(ctx context.Context, id, domain string, change func(tx *sql.Tx, name string, now time.Time) error) error {
	name, ok := tenancy.NormalizeDomain(domain)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		if err := s.touch(ctx, tx, id, now); err != nil {
			return err
		}
		if !ok {
			return tenancy.ErrDomainNotFound
		}
		return change(tx, name, now)
	})
}

// touch sets the UpdatedAt of tenant id, or returns ErrTenantNotFound.
func (s *Store) touch(ctx context.Context, tx *sql.Tx, id string, now time.Time) error {
	res, err := tx.ExecContext(ctx, qTouch, now.Format(timeLayout), id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return tenancy.ErrTenantNotFound
	}
	return nil
}

func (s *Store) checkTenant(ctx context.Context, tx *sql.Tx, id string) error {
	var exists bool
	if err := tx.QueryRowContext(ctx, qTenantExists, id).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return tenancy.ErrTenantNotFound
	}
	return nil
}

func scanDomain(row scanner) (*tenancy.Domain, error) {
	var (
		d          tenancy.Domain
		createdAt  string
		verifiedAt sql.NullString
	)
	if err := row.Scan(&d.Name, &d.TenantID, &d.Token, &createdAt, &verifiedAt); err != nil {
		return nil, err
	}
	if err := parseDomainTimes(&d, createdAt, verifiedAt); err != nil {
		return nil, err
	}
	return &d, nil
}

func parseDomainTimes(d *tenancy.Domain, createdAt string, verifiedAt sql.NullString) error {
	var err error
	if d.CreatedAt, err = parseTime(createdAt); err != nil {
		return err
	}
	if verifiedAt.Valid {
		if d.VerifiedAt, err = parseTime(verifiedAt.String); err != nil {
			return err
		}
	}
	return nil
}

// List implements tenancy.Store. Identifiers compare byte by byte (BINARY
// collation), as in every other store.
func (s *Store) List(ctx context.Context, p tenancy.ListParams) ([]*tenancy.Tenant, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if p.Status == "" {
		rows, err = s.db.QueryContext(ctx, qList, p.After, p.PageLimit())
	} else {
		rows, err = s.db.QueryContext(ctx, qListStatus, string(p.Status), p.After, p.PageLimit())
	}
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list tenants: %w", err)
	}
	defer rows.Close()
	out := []*tenancy.Tenant{}
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: list tenants: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list tenants: %w", err)
	}
	return out, nil
}

// Count implements tenancy.Store.
func (s *Store) Count(ctx context.Context, status tenancy.Status) (int, error) {
	var n int
	var err error
	if status == "" {
		err = s.db.QueryRowContext(ctx, qCount).Scan(&n)
	} else {
		err = s.db.QueryRowContext(ctx, qCountStatus, string(status)).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: count tenants: %w", err)
	}
	return n, nil
}

// wrap returns the errors the Store contract names (duplicate, field) as
// they are and wraps anything else with op.
func wrap(op string, err error) error {
	var (
		dup *tenancy.DuplicateError
		fe  *tenancy.FieldError
	)
	if errors.As(err, &dup) || errors.As(err, &fe) {
		return err
	}
	return fmt.Errorf("sqlitestore: %s: %w", op, err)
}

// tenantInsertError maps a unique violation on tenants to the column it
// names: the primary key is the ID, the other unique index the identifier.
func tenantInsertError(err error, c *tenancy.Tenant) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return &tenancy.DuplicateError{Field: "id", Value: c.ID}
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		// tenants has one UNIQUE column besides its key; check the message
		// anyway so that a future one cannot be misreported.
		if strings.Contains(se.Error(), "tenants.identifier") {
			return &tenancy.DuplicateError{Field: "identifier", Value: c.Identifier}
		}
	}
	return err
}

// isUnique reports whether err is a unique or primary key violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) &&
		(se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanTenant reads one row in the order of cols.
func scanTenant(row scanner) (*tenancy.Tenant, error) {
	var (
		t                                         tenancy.Tenant
		status, isolation, meta, aliases, domains string
		createdAt, updatedAt                      string
	)
	err := row.Scan(&t.ID, &t.Identifier, &t.Name, &status, &t.StatusReason, &t.Placement, &t.Tier,
		&isolation, &meta, &createdAt, &updatedAt, &aliases, &domains)
	if err != nil {
		return nil, err
	}
	t.Status = tenancy.Status(status)
	t.Isolation = tenancy.Isolation(isolation)
	if t.CreatedAt, err = parseTime(createdAt); err != nil {
		return nil, err
	}
	if t.UpdatedAt, err = parseTime(updatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(aliases), &t.Aliases); err != nil {
		return nil, fmt.Errorf("decode aliases: %w", err)
	}
	if err := json.Unmarshal([]byte(domains), &t.Domains); err != nil {
		return nil, fmt.Errorf("decode domains: %w", err)
	}
	if len(t.Aliases) == 0 {
		t.Aliases = nil
	}
	if len(t.Domains) == 0 {
		t.Domains = nil
	}
	// json_group_array keeps the subquery's order; be sure.
	slices.Sort(t.Aliases)
	slices.Sort(t.Domains)
	if t.Metadata, err = metadata.Decode(meta); err != nil {
		return nil, err
	}
	return &t, nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("decode timestamp: %w", err)
	}
	return t.UTC(), nil
}

func nonNil(d []string) []string {
	if d == nil {
		return []string{}
	}
	return d
}
