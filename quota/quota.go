package quota

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Table is the counter table in each tenant's storage; DDL creates it.
const Table = "tenancy_quota"

// Constraint is the check that refuses a unit beyond the limit. Its
// violation is what Acquire turns into a *tenancy.QuotaError.
const Constraint = "tenancy_quota_within_limit"

// MetadataKey is the key of Tenant.Metadata under which MetadataOverrides
// finds a tenant's own limits: {"quotas": {"projects": 10}}.
const MetadataKey = "quotas"

// Unlimited is the limit of a resource no tier names.
const Unlimited int64 = math.MaxInt64

// DDL returns the statements that create the counter table in a tenant's
// storage, for the tenant migration set. On PostgreSQL it is a tenant table
// under the canonical row-level security (one migration serves every
// strategy, and the provider's Destroy removes its rows); on SQLite a plain
// table in the tenant's file. A row per tenant and resource holds the units
// used and the limit they were last checked against, and a CHECK keeps the
// one within the other.
func DDL(d isolation.Dialect) []string {
	if d == isolation.SQLite {
		return []string{`CREATE TABLE IF NOT EXISTS ` + Table + ` (
	resource TEXT PRIMARY KEY,
	used INTEGER NOT NULL,
	lim INTEGER NOT NULL,
	CONSTRAINT ` + Constraint + ` CHECK (used <= lim),
	CONSTRAINT tenancy_quota_not_negative CHECK (used >= 0)
)`}
	}
	return append([]string{`CREATE TABLE IF NOT EXISTS ` + Table + ` (
	` + postgres.TenantIDColumn + `,
	resource text NOT NULL,
	used bigint NOT NULL,
	lim bigint NOT NULL,
	` + postgres.PrimaryKey("resource") + `,
	CONSTRAINT ` + Constraint + ` CHECK (used <= lim),
	CONSTRAINT tenancy_quota_not_negative CHECK (used >= 0)
)`}, postgres.EnableRLS(Table)...)
}

// Limits maps a resource to how many units of it a tenant may hold.
type Limits map[string]int64

// Config configures a Quota.
type Config struct {
	// Provider holds tenants' data, where their counters live (DDL). It
	// tells the SQL dialect and serves Usage. Required.
	Provider isolation.Provider
	// Tiers maps a tier to its limits, such as
	// {"enterprise": {"projects": 500}, "starter": {"projects": 3}}.
	Tiers map[string]Limits
	// Default holds the limits of tenants whose tier Tiers does not list.
	// A resource that neither names is unlimited (still counted, so that
	// Usage reports it).
	Default Limits
	// Overrides returns a tenant's own limits, which replace its tier's
	// resource by resource. Default MetadataOverrides.
	Overrides func(t *tenancy.Tenant) Limits
}

// Quota enforces per-tier limits on counted resources, in the database, in
// the same transaction as the insert that uses a unit: a counter row per
// tenant and resource, updated with a check. Concurrent creates queue on
// the row's lock, so ten of them against a limit of three leave exactly
// three, on every strategy. A delete gives its unit back with Release in
// the delete's transaction.
type Quota struct {
	cfg Config
}

var resourceName = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)

// New checks cfg and returns a Quota.
func New(cfg Config) (*Quota, error) {
	if cfg.Provider == nil {
		return nil, errors.New("quota: Config.Provider is required")
	}
	for tier, l := range cfg.Tiers {
		if err := l.check(); err != nil {
			return nil, fmt.Errorf("quota: tier %q: %w", tier, err)
		}
	}
	if err := cfg.Default.check(); err != nil {
		return nil, fmt.Errorf("quota: default limits: %w", err)
	}
	if cfg.Overrides == nil {
		cfg.Overrides = MetadataOverrides
	}
	return &Quota{cfg: cfg}, nil
}

func (l Limits) check() error {
	for r, n := range l {
		if !resourceName.MatchString(r) {
			return fmt.Errorf("resource name %q must be lowercase letters, digits, '_', '.' or '-'", r)
		}
		if n < 0 {
			return fmt.Errorf("resource %s: negative limit %d", r, n)
		}
	}
	return nil
}

// MetadataOverrides reads a tenant's own limits from its metadata, under
// MetadataKey: {"quotas": {"projects": 10}}. Values that are not
// non-negative whole numbers are ignored.
func MetadataOverrides(t *tenancy.Tenant) Limits {
	raw, ok := t.Metadata[MetadataKey].(map[string]any)
	if !ok {
		return nil
	}
	out := make(Limits, len(raw))
	for r, v := range raw {
		var n float64
		switch v := v.(type) {
		case float64:
			n = v
		case int:
			n = float64(v)
		case int64:
			n = float64(v)
		default:
			continue
		}
		if n >= 0 && n == math.Trunc(n) && n < math.MaxInt64 {
			out[r] = int64(n)
		}
	}
	return out
}

// Limit returns the limit of resource for t: its own override, else its
// tier's, else the default, else Unlimited.
func (q *Quota) Limit(t *tenancy.Tenant, resource string) int64 {
	if n, ok := q.cfg.Overrides(t)[resource]; ok {
		return n
	}
	if l, ok := q.cfg.Tiers[t.Tier]; ok {
		if n, ok := l[resource]; ok {
			return n
		}
	} else if n, ok := q.cfg.Default[resource]; ok {
		return n
	}
	return Unlimited
}

// Tx is what Acquire and Release need of a tenant's transaction: an
// isolation.Tx satisfies it; Pgx and SQL adapt a pgx.Tx and a *sql.Tx.
type Tx interface {
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
}

// Pgx adapts a pgx.Tx in a tenant's scope, such as one from
// postgres.For(p, t).Begin.
func Pgx(tx pgx.Tx) Tx { return pgxTx{tx} }

type pgxTx struct{ tx pgx.Tx }

func (p pgxTx) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := p.tx.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

// SQL adapts a *sql.Tx in a tenant's scope: a tenant's SQLite file
// (sqlite.Provider.BeginFunc) or the PostgreSQL database/sql connector.
func SQL(tx *sql.Tx) Tx { return sqlTx{tx} }

type sqlTx struct{ tx *sql.Tx }

func (s sqlTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q *Quota) dialect(t *tenancy.Tenant) (isolation.Dialect, error) {
	p, err := isolation.Resolve(q.cfg.Provider, t)
	if err != nil {
		return 0, err
	}
	return p.Dialect(), nil
}

// Statement returns the one statement that takes a unit of resource for t,
// with its arguments: an upsert of t's counter that adds one unit and
// records the current limit, refused by the table's check when the unit is
// beyond it. Send it in the insert's transaction, before the insert; its
// failure aborts the transaction, so the insert is never applied. Error
// turns the failure into a *tenancy.QuotaError.
func (q *Quota) Statement(t *tenancy.Tenant, resource string) (string, []any, error) {
	if t == nil {
		return "", nil, tenancy.ErrNoTenant
	}
	if !resourceName.MatchString(resource) {
		return "", nil, fmt.Errorf("quota: invalid resource name %q", resource)
	}
	d, err := q.dialect(t)
	if err != nil {
		return "", nil, err
	}
	limit := q.Limit(t, resource)
	if d == isolation.SQLite {
		return "INSERT INTO " + Table + " (resource, used, lim) VALUES (?, 1, ?) ON CONFLICT (resource) DO UPDATE SET used = used + 1, lim = excluded.lim", []any{resource, limit}, nil
	}
	return "INSERT INTO " + Table + " AS q (resource, used, lim) VALUES ($1, 1, $2) ON CONFLICT (tenant_id, resource) DO UPDATE SET used = q.used + 1, lim = EXCLUDED.lim", []any{resource, limit}, nil
}

// Acquire takes one unit of resource for t in tx, t's transaction, before
// the insert that uses it: one statement. Beyond the limit it returns a
// *tenancy.QuotaError and, on PostgreSQL, leaves tx aborted: roll it back.
func (q *Quota) Acquire(ctx context.Context, tx Tx, t *tenancy.Tenant, resource string) error {
	stmt, args, err := q.Statement(t, resource)
	if err != nil {
		return err
	}
	if _, err = tx.Exec(ctx, stmt, args...); err == nil || !isLimitViolation(err) {
		return err
	}
	qe := q.quotaError(t, resource, err)
	if reader, ok := tx.(interface {
		QueryRow(ctx context.Context, sql string, args ...any) isolation.Row
	}); ok && !isPG(err) {
		// SQLite: a failed statement leaves the transaction usable.
		_ = reader.QueryRow(ctx, "SELECT used FROM "+Table+" WHERE resource = ?", resource).Scan(&qe.Usage)
	} else if s, ok := tx.(sqlTx); ok && !isPG(err) {
		_ = s.tx.QueryRowContext(ctx, "SELECT used FROM "+Table+" WHERE resource = ?", resource).Scan(&qe.Usage)
	}
	return qe
}

// Queue adds the statement that takes a unit of resource for t to b, for a
// batch sent in t's scope (postgres.For(p, t).SendBatch): queue it before
// the insert, and the check, the insert and the tenant statement travel in
// one round trip, as one implicit transaction that the check aborts. Pass
// the first result's error through Error.
func (q *Quota) Queue(b *pgx.Batch, t *tenancy.Tenant, resource string) error {
	stmt, args, err := q.Statement(t, resource)
	if err != nil {
		return err
	}
	b.Queue(stmt, args...)
	return nil
}

// Error turns the failure of the statement that takes a unit of resource
// for t into a *tenancy.QuotaError. Other errors, and nil, pass through
// unchanged.
func (q *Quota) Error(t *tenancy.Tenant, resource string, err error) error {
	if err == nil || !isLimitViolation(err) {
		return err
	}
	return q.quotaError(t, resource, err)
}

// quotaError describes a refused unit. On PostgreSQL the usage comes from
// the violation's own report of the refused row (tenant_id, resource,
// used, lim), whose used counts the refused unit: nothing more is read, so
// nothing waits for a connection the aborted transaction still holds.
// Elsewhere it defaults to the limit.
func (q *Quota) quotaError(t *tenancy.Tenant, resource string, err error) *tenancy.QuotaError {
	qe := &tenancy.QuotaError{Resource: resource, Limit: q.Limit(t, resource), Tier: t.Tier}
	qe.Usage = qe.Limit
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		detail := strings.TrimSuffix(strings.TrimPrefix(pgErr.Detail, "Failing row contains ("), ").")
		if f := strings.Split(detail, ", "); len(f) == 4 {
			if used, err := strconv.ParseInt(f[2], 10, 64); err == nil && used > 0 {
				qe.Usage = used - 1
			}
		}
	}
	return qe
}

func isPG(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr)
}

func isLimitViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23514" && pgErr.ConstraintName == Constraint
	}
	// SQLite: "CHECK constraint failed: tenancy_quota_within_limit".
	return strings.Contains(err.Error(), "CHECK constraint failed: "+Constraint)
}

// Release gives one unit of resource back for t, in tx, the transaction of
// the delete that freed it. It never takes the count below zero.
func (q *Quota) Release(ctx context.Context, tx Tx, t *tenancy.Tenant, resource string) error {
	if t == nil {
		return tenancy.ErrNoTenant
	}
	d, err := q.dialect(t)
	if err != nil {
		return err
	}
	stmt := "UPDATE " + Table + " SET used = used - 1 WHERE resource = $1 AND used > 0"
	if d == isolation.SQLite {
		stmt = "UPDATE " + Table + " SET used = used - 1 WHERE resource = ? AND used > 0"
	}
	if _, err := tx.Exec(ctx, stmt, resource); err != nil {
		return fmt.Errorf("quota: release %s: %w", resource, err)
	}
	return nil
}

func (q *Quota) counts(ctx context.Context, t *tenancy.Tenant) (map[string]int64, error) {
	rows, err := q.cfg.Provider.Query(ctx, t, "SELECT resource, used FROM "+Table)
	if err != nil {
		return nil, fmt.Errorf("quota: read usage: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var r string
		var n int64
		if err := rows.Scan(&r, &n); err != nil {
			return nil, err
		}
		out[r] = n
	}
	return out, rows.Err()
}

// Usage is one resource's use by a tenant, as a GET /tenant endpoint shows
// it.
type Usage struct {
	Resource string `json:"resource"`
	Used     int64  `json:"used"`
	// Limit is what the tenant may hold; 0 when Unlimited.
	Limit     int64 `json:"limit"`
	Unlimited bool  `json:"unlimited,omitempty"`
}

// Usage returns t's use of every resource its limits name or it has used,
// ordered by resource, in one statement in t's scope.
func (q *Quota) Usage(ctx context.Context, t *tenancy.Tenant) ([]Usage, error) {
	if t == nil {
		return nil, tenancy.ErrNoTenant
	}
	counts, err := q.counts(ctx, t)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for r := range counts {
		names[r] = true
	}
	limits, ok := q.cfg.Tiers[t.Tier]
	if !ok {
		limits = q.cfg.Default
	}
	for r := range limits {
		names[r] = true
	}
	for r := range q.cfg.Overrides(t) {
		names[r] = true
	}
	out := make([]Usage, 0, len(names))
	for r := range names {
		u := Usage{Resource: r, Used: counts[r], Limit: q.Limit(t, r)}
		if u.Limit == Unlimited {
			u.Limit, u.Unlimited = 0, true
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Resource < out[j].Resource })
	return out, nil
}
