package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// Every mode has data of its own, so that one mode's creates never slow
// another's lists, and every mode starts from the same rows: the modes on
// shared tables each get a schema (their servers' search_path), and the
// schema modes each their own tenant-schema prefix.

// dataSchema returns the schema holding mode's shared table, or "" for a
// mode without one.
func dataSchema(mode string) string {
	switch mode {
	case "baseline", "tx", "rls", "hybrid", "pgx", "gorm":
		return "m_" + mode
	case "rls-2servers":
		return "m_rls2"
	case "gorm-plain":
		return "m_gorm_plain"
	case "invoicer-base":
		return "m_invoicer_plain"
	case "projectr":
		return "m_projectr"
	case "projectr-base", "projectr-nojwt":
		return "m_projectr_plain"
	}
	return ""
}

// schemaPrefix returns the tenant-schema prefix of a schema mode, or "".
func schemaPrefix(cfg Config, mode string) string {
	switch mode {
	case "schema":
		return isolation.DefaultPrefix
	case "hybrid":
		return "hyb_"
	case "gorm-tx":
		return "gtx_"
	case "invoicer":
		return "inv_"
	case "projectr":
		return "prj_"
	case "schema-2servers":
		return "s2_"
	}
	if fm, ok := cfg.fleetMode(mode); ok {
		return fm.prefix()
	}
	return ""
}

// schemaSet is the tenant schemas of one mode.
type schemaSet struct {
	prefix string
	count  int
	// plain tables have no row-level security: the mode confines tenants
	// by the search path alone.
	plain bool
	// fleet sets are seeded in batches of schemas per transaction.
	fleet bool
}

// seedNeed says what the chosen modes read.
type seedNeed struct {
	// tenants is T: tenants 0..T-1 are in the shared tables and files.
	tenants int
	// plain names the schemas of baseline tables, rls those of tables under
	// row-level security, each holding tenants 0..T-1.
	plain, rls []string
	// schemas lists the tenant-schema sets.
	schemas []schemaSet
	// sqlite asks for a file per tenant.
	sqlite bool
	// apps is what the example apps' modes read.
	apps appNeed
}

func (n seedNeed) String() string {
	var parts []string
	if len(n.plain) > 0 {
		parts = append(parts, fmt.Sprintf("%d tenants in a plain table (%s)", n.tenants, strings.Join(n.plain, ", ")))
	}
	if len(n.rls) > 0 {
		parts = append(parts, fmt.Sprintf("%d tenants in a table under RLS (%s)", n.tenants, strings.Join(n.rls, ", ")))
	}
	for _, s := range n.schemas {
		parts = append(parts, fmt.Sprintf("%d tenant schemas %s*", s.count, s.prefix))
	}
	if n.sqlite {
		parts = append(parts, fmt.Sprintf("%d SQLite files", n.tenants))
	}
	if a := n.apps.String(); a != "" {
		parts = append(parts, fmt.Sprintf("%d tenants in %s", n.tenants, a))
	}
	return strings.Join(parts, ", ")
}

// maxTenants is the largest tenant count any store holds.
func (n seedNeed) maxTenants() int {
	m := n.tenants
	for _, s := range n.schemas {
		m = max(m, s.count)
	}
	return m
}

func seedNeeds(cfg Config, modes []string) seedNeed {
	n := seedNeed{tenants: cfg.Tenants, apps: appNeeds(cfg, modes)}
	for _, m := range modes {
		switch m {
		case "baseline", "gorm-plain":
			n.plain = append(n.plain, dataSchema(m))
		case "tx", "rls", "pgx", "gorm":
			n.rls = append(n.rls, dataSchema(m))
		case "gorm-tx":
			n.schemas = append(n.schemas, schemaSet{prefix: schemaPrefix(cfg, m), count: cfg.Tenants, plain: true})
		case "hybrid":
			n.rls = append(n.rls, dataSchema(m))
			n.schemas = append(n.schemas, schemaSet{prefix: schemaPrefix(cfg, m), count: cfg.Tenants})
		case "schema":
			n.schemas = append(n.schemas, schemaSet{prefix: schemaPrefix(cfg, m), count: cfg.Tenants})
		case "sqlite":
			n.sqlite = true
		default:
			// A fleet's Zipf and uniform modes share its schemas.
			if fm, ok := cfg.fleetMode(m); ok && !slices.ContainsFunc(n.schemas, func(s schemaSet) bool { return s.prefix == fm.prefix() }) {
				n.schemas = append(n.schemas, schemaSet{prefix: fm.prefix(), count: fm.tenants, fleet: true})
			}
		}
	}
	return n
}

// fixtureData is what the driver needs to know of the seed.
type fixtureData struct {
	// ids holds the seeded note IDs of tenant i at ids[i]. Every store holds
	// the same IDs for the same tenant.
	ids [][]string
	// notes is N.
	notes     int
	sqliteDir string
	// apps is the example apps' seed.
	apps *appData
}

// noteBody pads every note to a realistic size.
var noteBody = strings.Repeat("Lorem ipsum dolor sit amet. ", 4)

// seed creates the tables, schemas and files need names, and fills them.
// It runs as the DSN's role, before anything is timed.
func seed(ctx context.Context, pool *pgxpool.Pool, sqliteDir string, notes int, need seedNeed) (*fixtureData, error) {
	data := &fixtureData{notes: notes, sqliteDir: sqliteDir}
	total := need.maxTenants()
	data.ids = make([][]string, total)
	uuids := make([][]uuid.UUID, total)
	for i := range total {
		uuids[i] = make([]uuid.UUID, notes)
		data.ids[i] = make([]string, notes)
		for k := range notes {
			uuids[i][k] = uuid.New()
			data.ids[i][k] = uuids[i][k].String()
		}
	}
	// Seeded notes are older than anything created under load.
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	created := func(k int) time.Time { return base.Add(time.Duration(k) * time.Second) }
	cols := []string{"id", "title", "body", "created_at", "tenant_id"}
	rowsOf := func(first, n int) pgx.CopyFromSource {
		rows := make([][]any, 0, n*notes)
		for i := first; i < first+n; i++ {
			for k := range notes {
				rows = append(rows, []any{uuids[i][k], fmt.Sprintf("note %d", k), noteBody, created(k), fixture.ID(i)})
			}
		}
		return pgx.CopyFromRows(rows)
	}

	if err := postgres.EnsureRole(ctx, pool, postgres.DefaultRole); err != nil {
		return nil, err
	}
	// fill creates a schema and a table in it, copies the rows of tenants
	// first..first+n-1 in (before row-level security, so that any owner
	// may), and puts the table under RLS unless it is a plain one; a tenant
	// schema (sealFor names its tenant) is sealed as its migrations would.
	fill := func(ctx context.Context, schema string, plain bool, first, n int, sealFor string) error {
		ident := pgx.Identifier{schema}.Sanitize()
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if err := execAll(ctx, tx, []string{"CREATE SCHEMA " + ident, "SET LOCAL search_path TO " + ident}); err != nil {
				return err
			}
			ddl, table := fixture.NotesDDL, "notes"
			if plain && sealFor == "" {
				ddl, table = fixture.PlainDDL, fixture.PlainTable
			}
			if err := execAll(ctx, tx, ddl); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{schema, table}, cols, rowsOf(first, n)); err != nil {
				return fmt.Errorf("copy into %s.%s: %w", schema, table, err)
			}
			if plain {
				return postgres.GrantSchema(ctx, tx, schema, postgres.DefaultRole)
			}
			if err := execAll(ctx, tx, fixture.NotesRLS); err != nil {
				return err
			}
			if err := postgres.GrantSchema(ctx, tx, schema, postgres.DefaultRole); err != nil {
				return err
			}
			if sealFor == "" {
				return nil
			}
			return postgres.SealSchema(ctx, tx, schema, sealFor)
		})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, s := range need.plain {
		g.Go(func() error { return fill(gctx, s, true, 0, need.tenants, "") })
	}
	for _, s := range need.rls {
		g.Go(func() error { return fill(gctx, s, false, 0, need.tenants, "") })
	}
	for _, set := range need.schemas {
		if set.fleet {
			continue
		}
		for i := range set.count {
			g.Go(func() error {
				name, err := isolation.Name(set.prefix, fixture.Identifier(i))
				if err != nil {
					return err
				}
				return fill(gctx, name, set.plain, i, 1, fixture.ID(i))
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("seed PostgreSQL: %w", err)
	}
	for _, set := range need.schemas {
		if set.fleet {
			if err := seedFleet(ctx, pool, set, cols, rowsOf); err != nil {
				return nil, fmt.Errorf("seed PostgreSQL: %w", err)
			}
		}
	}
	apps, err := seedApps(ctx, pool, need.apps, need.tenants, notes)
	if err != nil {
		return nil, err
	}
	data.apps = apps
	if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}

	if need.sqlite {
		if err := seedSQLite(ctx, sqliteDir, need.tenants, func(i int) [][]any {
			out := make([][]any, notes)
			for k := range notes {
				out[k] = []any{data.ids[i][k], fixture.ID(i), fmt.Sprintf("note %d", k), noteBody, created(k).Format(fixture.TimeLayout)}
			}
			return out
		}); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	}
	return data, nil
}

// fleetBatch is how many tenant schemas seedFleet creates per transaction.
const fleetBatch = 100

// seedFleet creates the schemas of a large set in few round trips: every
// tenant's rows are copied once into an unlogged staging table, then each
// transaction creates fleetBatch schemas with one multi-statement string
// (table, rows from the staging table, row-level security, grants, seal),
// two transactions at a time.
func seedFleet(ctx context.Context, pool *pgxpool.Pool, set schemaSet, cols []string, rowsOf func(first, n int) pgx.CopyFromSource) error {
	staging := pgx.Identifier{"public", "seed_" + strings.TrimSuffix(set.prefix, "_")}
	if _, err := pool.Exec(ctx, "CREATE UNLOGGED TABLE "+staging.Sanitize()+" (id uuid, title text, body text, created_at timestamptz, tenant_id text)"); err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	defer func() { _, _ = pool.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+staging.Sanitize()) }()
	if _, err := pool.CopyFrom(ctx, staging, cols, rowsOf(0, set.count)); err != nil {
		return fmt.Errorf("copy into staging table: %w", err)
	}
	if _, err := pool.Exec(ctx, "CREATE INDEX ON "+staging.Sanitize()+" (tenant_id)"); err != nil {
		return fmt.Errorf("index staging table: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for first := 0; first < set.count; first += fleetBatch {
		g.Go(func() error {
			var b sqlBuffer
			for i := first; i < min(first+fleetBatch, set.count); i++ {
				name, err := isolation.Name(set.prefix, fixture.Identifier(i))
				if err != nil {
					return err
				}
				ident := pgx.Identifier{name}.Sanitize()
				b.add("CREATE SCHEMA "+ident, "SET LOCAL search_path TO "+ident)
				b.add(fixture.NotesDDL...)
				b.add("INSERT INTO notes (" + strings.Join(cols, ", ") + ") SELECT " + strings.Join(cols, ", ") +
					" FROM " + staging.Sanitize() + " WHERE tenant_id = '" + fixture.ID(i) + "'")
				b.add(fixture.NotesRLS...)
				if err := postgres.GrantSchema(gctx, &b, name, postgres.DefaultRole); err != nil {
					return err
				}
				if err := postgres.SealSchema(gctx, &b, name, fixture.ID(i)); err != nil {
					return err
				}
			}
			return pgx.BeginFunc(gctx, pool, func(tx pgx.Tx) error {
				// No arguments: one simple-protocol message, one round trip.
				if _, err := tx.Exec(gctx, b.String()); err != nil {
					return fmt.Errorf("create schemas %s%04d to %d: %w", set.prefix, first, first+fleetBatch-1, err)
				}
				return nil
			})
		})
	}
	return g.Wait()
}

// sqlBuffer collects statements into one multi-statement string; as an
// execer it collects what the library would run.
type sqlBuffer struct{ strings.Builder }

func (b *sqlBuffer) add(stmts ...string) {
	for _, s := range stmts {
		b.WriteString(s)
		b.WriteString(";\n")
	}
}

func (b *sqlBuffer) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if len(args) > 0 {
		return pgconn.CommandTag{}, errors.New("sqlBuffer: statements with arguments cannot be collected")
	}
	b.add(sql)
	return pgconn.CommandTag{}, nil
}

func (b *sqlBuffer) QueryRow(context.Context, string, ...any) pgx.Row {
	return errRow{errors.New("sqlBuffer: queries cannot be collected")}
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// seedSQLite creates a file per tenant with the provider's own settings.
func seedSQLite(ctx context.Context, dir string, tenants int, rows func(i int) [][]any) error {
	p, err := sqlite.New(sqlite.Config{Dir: dir})
	if err != nil {
		return err
	}
	defer p.Close()
	for i := range tenants {
		path, err := p.Path(fixture.Tenant(i))
		if err != nil {
			return err
		}
		db, err := p.Open(path)
		if err != nil {
			return err
		}
		err = func() error {
			defer db.Close()
			for _, s := range fixture.SQLiteDDL {
				if _, err := db.ExecContext(ctx, s); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			for _, r := range rows(i) {
				if _, err := tx.ExecContext(ctx, "INSERT INTO notes (id, tenant_id, title, body, created_at) VALUES (?, ?, ?, ?, ?)", r...); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
			}
			return tx.Commit()
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

func execAll(ctx context.Context, tx pgx.Tx, stmts []string) error {
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// setupAppUser creates the servers' login role unless it exists and gives
// it what an application role has: membership of the tenant role (to switch
// to it) and the baseline's table. Roles are cluster-wide, so concurrent
// runs may race on them: the errors of such races are retried.
func setupAppUser(ctx context.Context, pool *pgxpool.Pool, user string, need seedNeed) error {
	stmts := []string{
		`DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '` + user + `') THEN
    CREATE ROLE ` + user + ` LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$`,
		"GRANT " + postgres.DefaultRole + " TO " + user,
	}
	for _, schema := range need.plain {
		stmts = append(stmts, "GRANT USAGE ON SCHEMA "+schema+" TO "+user, "GRANT SELECT, INSERT ON "+schema+"."+fixture.PlainTable+" TO "+user)
	}
	for _, schema := range need.apps.plainSchemas() {
		stmts = append(stmts, "GRANT USAGE ON SCHEMA "+schema+" TO "+user, "GRANT SELECT ON ALL TABLES IN SCHEMA "+schema+" TO "+user)
	}
	for _, s := range stmts {
		var err error
		for range 20 {
			if _, err = pool.Exec(ctx, s); err == nil || !racing(err) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("set up app user %s: %s: %w", user, firstLine(s), err)
		}
	}
	return nil
}

// racing reports the errors concurrent changes to roles raise: "tuple
// concurrently updated", duplicate role or key, serialization failure.
func racing(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "XX000", "23505", "42710", "40001":
		return true
	}
	return false
}

// validRole accepts role names that need no quoting.
func validRole(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
