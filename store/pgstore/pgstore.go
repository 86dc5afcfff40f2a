package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/metadata"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSchema is the control schema used when Config.Schema is empty.
const DefaultSchema = "tenancy"

// ErrNotMigrated is returned by New when the store's tables do not exist in
// the control schema: run Migrate first.
var ErrNotMigrated = errors.New("pgstore: tenant tables are missing (run pgstore.Migrate)")

// Config configures New and Migrate. Pass the same Config to both.
type Config struct {
	// Schema is the control schema that holds the tenant tables, the
	// migration version table (store_migrations) and the migration lock
	// (store_lock). It must be 1 to 63 bytes of a-z, 0-9 and '_', start with
	// a letter or '_', and not start with "pg_". Default DefaultSchema
	// ("tenancy").
	Schema string
	// Logger receives migration progress and lock diagnostics. Default: a
	// logger that discards everything.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if !validSchema(c.Schema) {
		// The name is configuration, not request input, but it is written
		// unquoted into goose's bookkeeping queries: keep it plain.
		return c, errors.New("pgstore: Config.Schema must be 1 to 63 bytes of a-z, 0-9 and '_', start with a letter or '_', and not start with pg_")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func validSchema(s string) bool {
	if len(s) == 0 || len(s) > 63 || strings.HasPrefix(s, "pg_") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Store is a tenancy.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	q    queries
	now  func() time.Time
}

var _ tenancy.Store = (*Store)(nil)

// queries holds the store's statements, built once with the schema quoted
// by pgx.Identifier. Nothing in them comes from a request.
type queries struct {
	getByID, getByIdentifier, getByDomain, lockByID string
	create, update, setStatus, purge                string
	list, listStatus, count, countStatus            string
	takenDomain, probe                              string
}

func buildQueries(schema string) queries {
	tenants := pgx.Identifier{schema, "tenants"}.Sanitize()
	domains := pgx.Identifier{schema, "tenant_domains"}.Sanitize()
	// Domains come back with the row in the same round trip.
	cols := `t.id, t.identifier, t.name, t.status, t.status_reason, t.placement, t.tier, t.isolation,
	t.metadata::text, t.created_at, t.updated_at,
	ARRAY(SELECT d.domain FROM ` + domains + ` d WHERE d.tenant_id = t.id ORDER BY d.domain)`
	sel := `SELECT ` + cols + ` FROM ` + tenants + ` t `
	return queries{
		getByID:         sel + `WHERE t.id = $1`,
		getByIdentifier: sel + `WHERE t.identifier = $1`,
		getByDomain:     sel + `WHERE t.id = (SELECT tenant_id FROM ` + domains + ` WHERE domain = $1)`,
		lockByID:        sel + `WHERE t.id = $1 FOR UPDATE OF t`,
		// One statement, so one transaction: the tenant and its domains
		// are written together or not at all.
		create: `WITH t AS (
	INSERT INTO ` + tenants + ` (id, identifier, name, status, status_reason, placement, tier, isolation, metadata, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $10)
	RETURNING id
)
INSERT INTO ` + domains + ` (domain, tenant_id) SELECT unnest($11::text[]), t.id FROM t`,
		// $8 is the full new domain list, $9 the domains it adds.
		update: `WITH u AS (
	UPDATE ` + tenants + ` SET name = $2, tier = $3, isolation = $4, placement = $5, metadata = $6::jsonb, updated_at = $7
	WHERE id = $1
), gone AS (
	DELETE FROM ` + domains + ` WHERE tenant_id = $1 AND domain <> ALL ($8::text[])
)
INSERT INTO ` + domains + ` (domain, tenant_id) SELECT unnest($9::text[]), $1`,
		setStatus: `UPDATE ` + tenants + ` t SET status = $2, status_reason = $3, updated_at = $4
WHERE t.id = $1 RETURNING ` + cols,
		purge:       `DELETE FROM ` + tenants + ` WHERE id = $1`,
		list:        sel + `WHERE t.identifier > $1 ORDER BY t.identifier LIMIT $2`,
		listStatus:  sel + `WHERE t.status = $1 AND t.identifier > $2 ORDER BY t.identifier LIMIT $3`,
		count:       `SELECT count(*) FROM ` + tenants,
		countStatus: `SELECT count(*) FROM ` + tenants + ` WHERE status = $1`,
		takenDomain: `SELECT min(domain) FROM ` + domains + ` WHERE domain = ANY ($1::text[]) AND tenant_id <> $2`,
		// Touches both tables without reading a row.
		probe: `SELECT FROM ` + tenants + `, ` + domains + ` LIMIT 0`,
	}
}

// New returns a store on the tables that Migrate created in cfg.Schema. It
// does not migrate: run Migrate first, at deploy time or at start with a
// role that may create tables, then New with the application's pool. New
// checks that the tables exist and are readable, and returns an error
// wrapping ErrNotMigrated when they do not exist.
func New(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{
		pool: pool,
		q:    buildQueries(cfg.Schema),
		now:  func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	if _, err := pool.Exec(ctx, s.q.probe); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			switch pgErr.Code {
			case "42P01", "3F000": // undefined_table, invalid_schema_name
				return nil, fmt.Errorf("pgstore: schema %s: %w: %w", cfg.Schema, ErrNotMigrated, err)
			case "42501": // insufficient_privilege
				return nil, fmt.Errorf("pgstore: schema %s: the role may not use the tenant tables "+
					"(grant USAGE on the schema and SELECT, INSERT, UPDATE, DELETE on its tables): %w", cfg.Schema, err)
			}
		}
		return nil, fmt.Errorf("pgstore: check tables in schema %s: %w", cfg.Schema, err)
	}
	return s, nil
}

// Get implements tenancy.Store.
func (s *Store) Get(ctx context.Context, id string) (*tenancy.Tenant, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	return s.getOne(ctx, "get tenant", s.q.getByID, id)
}

// GetByIdentifier implements tenancy.Store.
func (s *Store) GetByIdentifier(ctx context.Context, identifier string) (*tenancy.Tenant, error) {
	if err := tenancy.ValidateIdentifier(identifier); err != nil {
		return nil, err
	}
	return s.getOne(ctx, "get tenant by identifier", s.q.getByIdentifier, identifier)
}

// GetByDomain implements tenancy.Store. The domain is normalized with
// tenancy.NormalizeHost; one that is no host name matches no tenant.
func (s *Store) GetByDomain(ctx context.Context, domain string) (*tenancy.Tenant, error) {
	d, ok := tenancy.NormalizeHost(domain)
	if !ok {
		return nil, fmt.Errorf("pgstore: get tenant by domain: %w", tenancy.ErrTenantNotFound)
	}
	return s.getOne(ctx, "get tenant by domain", s.q.getByDomain, d)
}

func (s *Store) getOne(ctx context.Context, op, query, key string) (*tenancy.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, query, key))
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("pgstore: %s: %w", op, tenancy.ErrTenantNotFound)
		}
		return nil, fmt.Errorf("pgstore: %s: %w", op, err)
	}
	return t, nil
}

// Create implements tenancy.Store. The tenant and its domains are written
// in one statement.
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
	_, err = s.pool.Exec(ctx, s.q.create, c.ID, c.Identifier, c.Name, string(c.Status), c.StatusReason,
		c.Placement, c.Tier, string(c.Isolation), meta, c.CreatedAt, nonNil(c.Domains))
	if err != nil {
		return nil, s.writeError(ctx, "create tenant", err, c, c.Domains)
	}
	return c, nil
}

// Update implements tenancy.Store. It locks the row, applies u with
// tenancy.Update.Apply and writes the row and its domain changes in one
// transaction.
func (s *Store) Update(ctx context.Context, id string, u tenancy.Update) (*tenancy.Tenant, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	var (
		out   *tenancy.Tenant
		added []string
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		old, err := scanTenant(tx.QueryRow(ctx, s.q.lockByID, id))
		if err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
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
		added = []string{}
		for _, d := range c.Domains {
			if !slices.Contains(old.Domains, d) {
				added = append(added, d)
			}
		}
		_, err = tx.Exec(ctx, s.q.update, id, c.Name, c.Tier, string(c.Isolation), c.Placement, meta,
			c.UpdatedAt, nonNil(c.Domains), added)
		if err != nil {
			return err
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, s.writeError(ctx, "update tenant", err, &tenancy.Tenant{ID: id}, added)
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
	t, err := scanTenant(s.pool.QueryRow(ctx, s.q.setStatus, id, string(status), reason, s.now()))
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("pgstore: set tenant status: %w", tenancy.ErrTenantNotFound)
		}
		return nil, fmt.Errorf("pgstore: set tenant status: %w", err)
	}
	return t, nil
}

// Delete implements tenancy.Store.
func (s *Store) Delete(ctx context.Context, id string) (*tenancy.Tenant, error) {
	return s.SetStatus(ctx, id, tenancy.StatusDeleted, "deleted")
}

// Purge implements tenancy.Store. The tenant's domains go with it (ON
// DELETE CASCADE, in the same statement).
func (s *Store) Purge(ctx context.Context, id string) error {
	if err := tenancy.ValidateID(id); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, s.q.purge, id)
	if err != nil {
		return fmt.Errorf("pgstore: purge tenant: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: purge tenant: %w", tenancy.ErrTenantNotFound)
	}
	return nil
}

// List implements tenancy.Store. Identifiers are compared byte by byte (the
// column has the "C" collation), as in every other store.
func (s *Store) List(ctx context.Context, p tenancy.ListParams) ([]*tenancy.Tenant, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if p.Status == "" {
		rows, err = s.pool.Query(ctx, s.q.list, p.After, p.PageLimit())
	} else {
		rows, err = s.pool.Query(ctx, s.q.listStatus, string(p.Status), p.After, p.PageLimit())
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: list tenants: %w", err)
	}
	ts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*tenancy.Tenant, error) { return scanTenant(row) })
	if err != nil {
		return nil, fmt.Errorf("pgstore: list tenants: %w", err)
	}
	return ts, nil
}

// Count implements tenancy.Store.
func (s *Store) Count(ctx context.Context, status tenancy.Status) (int, error) {
	var n int64
	var err error
	if status == "" {
		err = s.pool.QueryRow(ctx, s.q.count).Scan(&n)
	} else {
		err = s.pool.QueryRow(ctx, s.q.countStatus, string(status)).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("pgstore: count tenants: %w", err)
	}
	return int(n), nil
}

// writeError turns err from a write into what the Store contract promises:
// unique violations become *tenancy.DuplicateError, tenancy errors pass
// through, and anything else is wrapped with op. candidates are the domains
// the write added, one of which a domain conflict names.
func (s *Store) writeError(ctx context.Context, op string, err error, c *tenancy.Tenant, candidates []string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		switch pgErr.ConstraintName {
		case "tenants_pkey":
			return &tenancy.DuplicateError{Field: "id", Value: c.ID}
		case "tenants_identifier_key":
			return &tenancy.DuplicateError{Field: "identifier", Value: c.Identifier}
		case "tenant_domains_pkey":
			return &tenancy.DuplicateError{Field: "domain", Value: s.takenDomain(ctx, pgErr, c.ID, candidates)}
		}
	}
	var fe *tenancy.FieldError
	if errors.As(err, &fe) {
		return err
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

// takenDomain names the domain of a unique violation: from the error detail
// when the server sends it in English, else by asking which candidate
// another tenant holds.
func (s *Store) takenDomain(ctx context.Context, pgErr *pgconn.PgError, id string, candidates []string) string {
	if v, ok := strings.CutPrefix(pgErr.Detail, "Key (domain)=("); ok {
		if v, ok := strings.CutSuffix(v, ") already exists."); ok && slices.Contains(candidates, v) {
			return v
		}
	}
	if len(candidates) == 1 {
		return candidates[0]
	}
	var d *string
	err := s.pool.QueryRow(ctx, s.q.takenDomain, candidates, id).Scan(&d)
	if err == nil && d != nil {
		return *d
	}
	if len(candidates) > 0 {
		return candidates[0]
	}
	return ""
}

// scanTenant reads one row in the column order of queries.
func scanTenant(row pgx.Row) (*tenancy.Tenant, error) {
	var (
		t                 tenancy.Tenant
		status, isolation string
		meta              string
		domains           []string
	)
	err := row.Scan(&t.ID, &t.Identifier, &t.Name, &status, &t.StatusReason, &t.Placement, &t.Tier,
		&isolation, &meta, &t.CreatedAt, &t.UpdatedAt, &domains)
	if err != nil {
		return nil, err
	}
	t.Status = tenancy.Status(status)
	t.Isolation = tenancy.Isolation(isolation)
	t.CreatedAt = t.CreatedAt.UTC()
	t.UpdatedAt = t.UpdatedAt.UTC()
	if len(domains) > 0 {
		t.Domains = domains
	}
	if t.Metadata, err = metadata.Decode(meta); err != nil {
		return nil, err
	}
	return &t, nil
}

// nonNil returns d, or an empty slice for nil: a NULL array would make
// "domain <> ALL (NULL)" unknown rather than true.
func nonNil(d []string) []string {
	if d == nil {
		return []string{}
	}
	return d
}
