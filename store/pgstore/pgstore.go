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
	getByID, getByIdentifier, getByAlias, getByDomain, lockByID string
	create, update, setStatus, purge                            string
	list, listStatus, count, countStatus                        string
	takenNames, takenDomains, probe                             string
	touch, exists, listDomains, addDomain, getDomain            string
	verifyDomain, removeDomain                                  string
	secrets                                                     string // the table, quoted
}

func buildQueries(schema string) queries {
	tenants := pgx.Identifier{schema, "tenants"}.Sanitize()
	names := pgx.Identifier{schema, "tenant_names"}.Sanitize()
	domains := pgx.Identifier{schema, "tenant_domains"}.Sanitize()
	// Aliases and domains come back with the row in the same round trip,
	// sorted by bytes as Tenant.Validate sorts them.
	cols := `t.id, t.identifier, t.name, t.status, t.status_reason, t.placement, t.tier, t.isolation,
	t.metadata::text, t.created_at, t.updated_at,
	ARRAY(SELECT n.name FROM ` + names + ` n WHERE n.tenant_id = t.id AND n.kind = 'alias' ORDER BY n.name),
	ARRAY(SELECT d.domain FROM ` + domains + ` d WHERE d.tenant_id = t.id ORDER BY d.domain COLLATE "C")`
	sel := `SELECT ` + cols + ` FROM ` + tenants + ` t `
	domainCols := `domain, tenant_id, token, created_at, verified_at`
	return queries{
		getByID:         sel + `WHERE t.id = $1`,
		getByIdentifier: sel + `WHERE t.identifier = $1`,
		getByAlias:      sel + `WHERE t.id = (SELECT tenant_id FROM ` + names + ` WHERE name = $1 AND kind = 'alias')`,
		// An unverified domain is not there for resolution.
		getByDomain: sel + `WHERE t.id = (SELECT tenant_id FROM ` + domains + ` WHERE domain = $1 AND verified_at IS NOT NULL)`,
		lockByID:    sel + `WHERE t.id = $1 FOR UPDATE OF t`,
		// One statement, so one transaction: the tenant, its names (the
		// identifier and the aliases, one namespace under one primary key)
		// and its domains are written together or not at all.
		create: `WITH t AS (
	INSERT INTO ` + tenants + ` (id, identifier, name, status, status_reason, placement, tier, isolation, metadata, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $10)
	RETURNING id
), n AS (
	INSERT INTO ` + names + ` (name, tenant_id, kind)
	SELECT $2, t.id, 'identifier' FROM t
	UNION ALL
	SELECT a, t.id, 'alias' FROM t, unnest($11::text[]) a
)
INSERT INTO ` + domains + ` (domain, tenant_id, token, created_at)
SELECT d.domain, t.id, d.token, $10 FROM t, unnest($12::text[], $13::text[]) d(domain, token)`,
		// $8 is the full new alias list, $9 the aliases it adds.
		update: `WITH u AS (
	UPDATE ` + tenants + ` SET name = $2, tier = $3, isolation = $4, placement = $5, metadata = $6::jsonb, updated_at = $7
	WHERE id = $1
), gone AS (
	DELETE FROM ` + names + ` WHERE tenant_id = $1 AND kind = 'alias' AND name <> ALL ($8::text[])
)
INSERT INTO ` + names + ` (name, tenant_id, kind) SELECT unnest($9::text[]), $1, 'alias'`,
		setStatus: `UPDATE ` + tenants + ` t SET status = $2, status_reason = $3, updated_at = $4
WHERE t.id = $1 RETURNING ` + cols,
		purge:        `DELETE FROM ` + tenants + ` WHERE id = $1`,
		list:         sel + `WHERE t.identifier > $1 ORDER BY t.identifier LIMIT $2`,
		listStatus:   sel + `WHERE t.status = $1 AND t.identifier > $2 ORDER BY t.identifier LIMIT $3`,
		count:        `SELECT count(*) FROM ` + tenants,
		countStatus:  `SELECT count(*) FROM ` + tenants + ` WHERE status = $1`,
		takenNames:   `SELECT name FROM ` + names + ` WHERE name = ANY ($1::text[]) AND tenant_id <> $2 ORDER BY name`,
		takenDomains: `SELECT domain FROM ` + domains + ` WHERE domain = ANY ($1::text[]) AND tenant_id <> $2 ORDER BY domain`,
		// Domain writes lock the tenant row first, as every other write
		// does, so that two writes never wait for each other's locks in
		// opposite order; the lock also proves the tenant exists.
		touch:       `UPDATE ` + tenants + ` SET updated_at = $2 WHERE id = $1`,
		exists:      `SELECT EXISTS (SELECT FROM ` + tenants + ` WHERE id = $1)`,
		listDomains: `SELECT d.domain, d.tenant_id, d.token, d.created_at, d.verified_at FROM ` + tenants + ` t LEFT JOIN ` + domains + ` d ON d.tenant_id = t.id WHERE t.id = $1 ORDER BY d.domain COLLATE "C"`,
		addDomain: `INSERT INTO ` + domains + ` (domain, tenant_id, token, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (domain) DO NOTHING RETURNING ` + domainCols,
		getDomain:    `SELECT ` + domainCols + ` FROM ` + domains + ` WHERE domain = $1`,
		verifyDomain: `UPDATE ` + domains + ` SET verified_at = coalesce(verified_at, $3) WHERE domain = $1 AND tenant_id = $2 RETURNING ` + domainCols,
		removeDomain: `DELETE FROM ` + domains + ` WHERE domain = $1 AND tenant_id = $2`,
		// Touches every table without reading a row.
		probe:   `SELECT FROM ` + tenants + `, ` + names + `, ` + domains + ` LIMIT 0`,
		secrets: pgx.Identifier{schema, "tenant_secrets"}.Sanitize(),
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
					"(grant USAGE on the schema and SELECT, INSERT, UPDATE, DELETE on its tables tenants, tenant_names and tenant_domains): %w", cfg.Schema, err)
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

// GetByAlias implements tenancy.Store. The alias is normalized with
// tenancy.NormalizeAlias; one that is invalid matches no tenant.
func (s *Store) GetByAlias(ctx context.Context, alias string) (*tenancy.Tenant, error) {
	a, ok := tenancy.NormalizeAlias(alias)
	if !ok {
		return nil, fmt.Errorf("pgstore: get tenant by alias: %w", tenancy.ErrTenantNotFound)
	}
	return s.getOne(ctx, "get tenant by alias", s.q.getByAlias, a)
}

// GetByDomain implements tenancy.Store: only verified domains match. The
// domain is normalized with tenancy.NormalizeDomain; one that is invalid
// matches no tenant.
func (s *Store) GetByDomain(ctx context.Context, domain string) (*tenancy.Tenant, error) {
	d, ok := tenancy.NormalizeDomain(domain)
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

// Create implements tenancy.Store. The tenant, its aliases and its domains
// (unverified, each with a new token) are written in one statement.
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
	tokens := make([]string, len(c.Domains))
	for i := range tokens {
		tokens[i] = tenancy.NewDomainToken()
	}
	_, err = s.pool.Exec(ctx, s.q.create, c.ID, c.Identifier, c.Name, string(c.Status), c.StatusReason,
		c.Placement, c.Tier, string(c.Isolation), meta, c.CreatedAt, nonNil(c.Aliases), nonNil(c.Domains), tokens)
	if err != nil {
		return nil, s.writeError(ctx, "create tenant", err, c, c.Aliases, c.Domains)
	}
	return c, nil
}

// Update implements tenancy.Store. It locks the row, applies u with
// tenancy.Update.Apply and writes the row and its alias changes in one
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
		for _, a := range c.Aliases {
			if !slices.Contains(old.Aliases, a) {
				added = append(added, a)
			}
		}
		_, err = tx.Exec(ctx, s.q.update, id, c.Name, c.Tier, string(c.Isolation), c.Placement, meta,
			c.UpdatedAt, nonNil(c.Aliases), added)
		if err != nil {
			return err
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, s.writeError(ctx, "update tenant", err, &tenancy.Tenant{ID: id}, added, nil)
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

// Purge implements tenancy.Store. The tenant's names and domains go with it
// (ON DELETE CASCADE, in the same statement).
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

// ListDomains implements tenancy.Store.
func (s *Store) ListDomains(ctx context.Context, id string) ([]tenancy.Domain, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, s.q.listDomains, id)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list domains: %w", err)
	}
	out := []tenancy.Domain{}
	found := false
	for rows.Next() {
		found = true
		var (
			name, tenantID, token *string
			createdAt, verifiedAt *time.Time
		)
		if err := rows.Scan(&name, &tenantID, &token, &createdAt, &verifiedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pgstore: list domains: %w", err)
		}
		if name == nil {
			continue // the tenant, without domains
		}
		out = append(out, domainOf(*name, *tenantID, *token, *createdAt, verifiedAt))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list domains: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("pgstore: list domains: %w", tenancy.ErrTenantNotFound)
	}
	return out, nil
}

// errUnchanged ends a transaction that found nothing to write.
var errUnchanged = errors.New("pgstore: unchanged")

// AddDomain implements tenancy.Store. The domain's primary key keeps it to
// one tenant, however many add it at once.
func (s *Store) AddDomain(ctx context.Context, id, domain string) (*tenancy.Domain, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	name, ok := tenancy.NormalizeDomain(domain)
	if !ok {
		return nil, &tenancy.FieldError{Field: "domain", Reason: "a custom domain is a host name of two labels or more, not an IP address"}
	}
	var out *tenancy.Domain
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now()
		if err := s.touch(ctx, tx, id, now); err != nil {
			return err
		}
		d, err := scanDomain(tx.QueryRow(ctx, s.q.addDomain, name, id, tenancy.NewDomainToken(), now))
		if err == nil {
			out = d
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// Taken: by this tenant (then it is returned as it is) or another.
		if d, err = scanDomain(tx.QueryRow(ctx, s.q.getDomain, name)); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				// Removed since the insert saw it: a lost race, reported as such.
				return &tenancy.DuplicateError{Field: "domain", Value: name}
			}
			return err
		}
		if d.TenantID != id {
			return &tenancy.DuplicateError{Field: "domain", Value: name}
		}
		out = d
		return errUnchanged
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return nil, domainError("add domain", err)
	}
	return out, nil
}

// VerifyDomain implements tenancy.Store.
func (s *Store) VerifyDomain(ctx context.Context, id, domain string) (*tenancy.Domain, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	var out *tenancy.Domain
	err := s.changeDomain(ctx, id, domain, func(tx pgx.Tx, name string, now time.Time) error {
		d, err := scanDomain(tx.QueryRow(ctx, s.q.verifyDomain, name, id, now))
		if errors.Is(err, pgx.ErrNoRows) {
			return tenancy.ErrDomainNotFound
		}
		out = d
		return err
	})
	if err != nil {
		return nil, domainError("verify domain", err)
	}
	return out, nil
}

// RemoveDomain implements tenancy.Store.
func (s *Store) RemoveDomain(ctx context.Context, id, domain string) error {
	if err := tenancy.ValidateID(id); err != nil {
		return err
	}
	err := s.changeDomain(ctx, id, domain, func(tx pgx.Tx, name string, _ time.Time) error {
		tag, err := tx.Exec(ctx, s.q.removeDomain, name, id)
		if err == nil && tag.RowsAffected() == 0 {
			return tenancy.ErrDomainNotFound
		}
		return err
	})
	if err != nil {
		return domainError("remove domain", err)
	}
	return nil
}

// changeDomain runs change on a domain of tenant id in a transaction that
// first locks the tenant and sets its UpdatedAt.
func (s *Store) changeDomain(ctx context.Context, id, domain string, change func(tx pgx.Tx, name string, now time.Time) error) error {
	name, ok := tenancy.NormalizeDomain(domain)
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
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

// touch locks tenant id and sets its UpdatedAt, or returns
// ErrTenantNotFound.
func (s *Store) touch(ctx context.Context, tx pgx.Tx, id string, now time.Time) error {
	tag, err := tx.Exec(ctx, s.q.touch, id, now)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return tenancy.ErrTenantNotFound
	}
	return nil
}

// domainError passes the errors the Store contract names through as they
// are and wraps anything else, sentinels included, with op.
func domainError(op string, err error) error {
	var dup *tenancy.DuplicateError
	if errors.As(err, &dup) {
		return err
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

func scanDomain(row pgx.Row) (*tenancy.Domain, error) {
	var (
		name, tenantID, token string
		createdAt             time.Time
		verifiedAt            *time.Time
	)
	if err := row.Scan(&name, &tenantID, &token, &createdAt, &verifiedAt); err != nil {
		return nil, err
	}
	d := domainOf(name, tenantID, token, createdAt, verifiedAt)
	return &d, nil
}

func domainOf(name, tenantID, token string, createdAt time.Time, verifiedAt *time.Time) tenancy.Domain {
	d := tenancy.Domain{Name: name, TenantID: tenantID, Token: token, CreatedAt: createdAt.UTC()}
	if verifiedAt != nil {
		d.VerifiedAt = verifiedAt.UTC()
	}
	return d
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
// through, and anything else is wrapped with op. aliases and domains are
// the ones the write added, one of which a conflict names.
func (s *Store) writeError(ctx context.Context, op string, err error, c *tenancy.Tenant, aliases, domains []string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		switch pgErr.ConstraintName {
		case "tenants_pkey":
			return &tenancy.DuplicateError{Field: "id", Value: c.ID}
		case "tenants_identifier_key":
			return &tenancy.DuplicateError{Field: "identifier", Value: c.Identifier}
		case "tenant_names_pkey":
			names := aliases
			if c.Identifier != "" {
				names = append([]string{c.Identifier}, aliases...)
			}
			name := s.taken(ctx, pgErr, "name", s.q.takenNames, c.ID, names)
			if name == c.Identifier {
				return &tenancy.DuplicateError{Field: "identifier", Value: name}
			}
			return &tenancy.DuplicateError{Field: "alias", Value: name}
		case "tenant_domains_pkey":
			return &tenancy.DuplicateError{Field: "domain", Value: s.taken(ctx, pgErr, "domain", s.q.takenDomains, c.ID, domains)}
		}
	}
	var fe *tenancy.FieldError
	if errors.As(err, &fe) {
		return err
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

// taken names the value of a unique violation on column: from the error
// detail when the server sends it in English, else by asking which
// candidate another tenant holds (the first one, which is the identifier
// when it is among them).
func (s *Store) taken(ctx context.Context, pgErr *pgconn.PgError, column, query, id string, candidates []string) string {
	if v, ok := strings.CutPrefix(pgErr.Detail, "Key ("+column+")=("); ok {
		if v, ok := strings.CutSuffix(v, ") already exists."); ok && slices.Contains(candidates, v) {
			return v
		}
	}
	if len(candidates) == 1 {
		return candidates[0]
	}
	if rows, err := s.pool.Query(ctx, query, candidates, id); err == nil {
		if held, err := pgx.CollectRows(rows, pgx.RowTo[string]); err == nil && len(held) > 0 {
			for _, c := range candidates {
				if slices.Contains(held, c) {
					return c
				}
			}
		}
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
		aliases, domains  []string
	)
	err := row.Scan(&t.ID, &t.Identifier, &t.Name, &status, &t.StatusReason, &t.Placement, &t.Tier,
		&isolation, &meta, &t.CreatedAt, &t.UpdatedAt, &aliases, &domains)
	if err != nil {
		return nil, err
	}
	t.Status = tenancy.Status(status)
	t.Isolation = tenancy.Isolation(isolation)
	t.CreatedAt = t.CreatedAt.UTC()
	t.UpdatedAt = t.UpdatedAt.UTC()
	if len(aliases) > 0 {
		t.Aliases = aliases
	}
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
