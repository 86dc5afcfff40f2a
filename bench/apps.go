package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/go-tenancy/tenancy/examples/invoicer/billing"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/jwtauth"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// The example apps' scenarios. Each is served by its own modes only, the
// first of them its baseline (the same request without tenancy):
//
//	invoice  GET /invoices/{id} on a tenant's subdomain: the invoice and its line items
//	         invoicer-base   raw pgx on shared tables, tenant_id by hand, the subdomain parsed by hand
//	         invoicer        resolve.Host and the middleware, Invoicer's billing store (sqlc) in the
//	                         tenant's sealed schema
//	project  GET /projects/{id} with a bearer token
//	         projectr-base   plain GORM, tenant_id by hand, the tenant from the same verified token
//	         projectr-nojwt  plain GORM, tenant_id by hand, the tenant from X-Tenant-ID (no token)
//	         projectr        resolve.JWT and the middleware, hybrid isolation (starters RLS,
//	                         enterprise a schema each), GORM through postgres.OpenDB
const (
	scenarioInvoice = "invoice"
	scenarioProject = "project"
)

// appScenarios maps each app scenario to its modes, baseline first.
var appScenarios = map[string][]string{
	scenarioInvoice: {"invoicer-base", "invoicer"},
	scenarioProject: {"projectr-base", "projectr-nojwt", "projectr"},
}

// scenarioOf returns the app scenario mode serves, or "" for a notes mode.
func scenarioOf(mode string) string {
	for sc, modes := range appScenarios {
		if slices.Contains(modes, mode) {
			return sc
		}
	}
	return ""
}

// serves reports whether mode serves scenario: notes modes serve the notes
// scenarios, app modes their own.
func serves(mode, scenario string) bool {
	app := scenarioOf(mode)
	if _, isApp := appScenarios[scenario]; isApp {
		return app == scenario
	}
	return app == ""
}

// baselineOf returns the mode scenario's ratios are taken to.
func baselineOf(scenario string) string {
	if modes, ok := appScenarios[scenario]; ok {
		return modes[0]
	}
	return "baseline"
}

// appNeed is what the app modes read.
type appNeed struct {
	// invoicerPlain and projectsPlain name the schemas of the shared
	// tables without tenancy; projectsRLS that of the shared projects
	// table under RLS. Empty: not needed.
	invoicerPlain, projectsPlain, projectsRLS string
	// invoicerPrefix and projectsPrefix are the tenant-schema prefixes.
	invoicerPrefix, projectsPrefix string
}

func (a appNeed) String() string {
	var parts []string
	if a.invoicerPrefix != "" {
		parts = append(parts, "Invoicer schemas "+a.invoicerPrefix+"*")
	}
	if a.invoicerPlain != "" {
		parts = append(parts, "Invoicer shared tables ("+a.invoicerPlain+")")
	}
	if a.projectsRLS != "" {
		parts = append(parts, "Projectr under RLS ("+a.projectsRLS+") and schemas "+a.projectsPrefix+"*")
	}
	if a.projectsPlain != "" {
		parts = append(parts, "Projectr shared table ("+a.projectsPlain+")")
	}
	return strings.Join(parts, ", ")
}

func appNeeds(cfg Config, modes []string) appNeed {
	var a appNeed
	for _, m := range modes {
		switch m {
		case "invoicer":
			a.invoicerPrefix = schemaPrefix(cfg, m)
		case "invoicer-base":
			a.invoicerPlain = dataSchema(m)
		case "projectr":
			a.projectsRLS, a.projectsPrefix = dataSchema(m), schemaPrefix(cfg, m)
		case "projectr-base", "projectr-nojwt":
			a.projectsPlain = dataSchema(m)
		}
	}
	return a
}

// plainSchemas are the app schemas the application role reads directly.
func (a appNeed) plainSchemas() []string {
	var out []string
	for _, s := range []string{a.invoicerPlain, a.projectsPlain} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// appData is the app scenarios' seed as the driver needs it.
type appData struct {
	// invoices[i] and projects[i] hold tenant i's IDs, the same in every
	// mode's store.
	invoices, projects [][]string
	// tokens[i] is a bearer token naming tenant i; unknownToken names a
	// tenant that does not exist.
	tokens       []string
	unknownToken string
}

// seedApps creates and fills what need names for tenants 0..n-1, with
// per invoices and projects per tenant.
func seedApps(ctx context.Context, pool *pgxpool.Pool, need appNeed, n, per int) (*appData, error) {
	d := &appData{invoices: make([][]string, n), projects: make([][]string, n), tokens: make([]string, n)}
	signer, err := jwtauth.NewSigner(fixture.TokenConfig())
	if err != nil {
		return nil, err
	}
	for i := range n {
		d.invoices[i], d.projects[i] = make([]string, per), make([]string, per)
		for k := range per {
			d.invoices[i][k], d.projects[i][k] = uuid.NewString(), uuid.NewString()
		}
		if d.tokens[i], err = signer.Issue(fixture.Identifier(i), "bench", nil); err != nil {
			return nil, err
		}
	}
	if d.unknownToken, err = signer.Issue("nobody-here", "bench", nil); err != nil {
		return nil, err
	}
	up, err := invoicerUp()
	if err != nil {
		return nil, err
	}
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)

	// invoiceRows returns tenant i's rows of customers, invoices and line
	// items, with tenant_id first when withTenant.
	invoiceRows := func(i int, withTenant bool) (cust, inv, items [][]any) {
		lead := func(r ...any) []any {
			if withTenant {
				return append([]any{fixture.ID(i)}, r...)
			}
			return r
		}
		customer := uuid.New()
		cust = [][]any{lead(customer, "Customer of "+fixture.ID(i), fixture.Identifier(i)+"@example.com")}
		for k, id := range d.invoices[i] {
			var sub int64
			for pos := 1; pos <= fixture.ItemsPerInvoice; pos++ {
				qty, price := int64(pos), int64(1000+k)
				sub += qty * price
				items = append(items, lead(id, pos, fmt.Sprintf("%s%d", fixture.ItemPrefix(i), pos), qty, price, qty*price))
			}
			inv = append(inv, lead(id, int64(k+1), customer, "issued", "USD", created.AddDate(0, 1, 0), sub, sub, created, created))
		}
		return cust, inv, items
	}
	custCols := []string{"id", "name", "email"}
	invCols := []string{"id", "number", "customer_id", "status", "currency", "due_date", "subtotal_cents", "total_cents", "created_at", "updated_at"}
	itemCols := []string{"invoice_id", "position", "description", "quantity", "unit_price_cents", "amount_cents"}
	withTenant := func(cols []string) []string { return append([]string{"tenant_id"}, cols...) }
	copyInvoices := func(ctx context.Context, tx pgx.Tx, schema string, cust, inv, items [][]any, tenant bool) error {
		cc, ic, lc := custCols, invCols, itemCols
		if tenant {
			cc, ic, lc = withTenant(cc), withTenant(ic), withTenant(lc)
		}
		for _, c := range []struct {
			table string
			cols  []string
			rows  [][]any
		}{{"customers", cc, cust}, {"invoices", ic, inv}, {"line_items", lc, items}} {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{schema, c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
				return fmt.Errorf("copy into %s.%s: %w", schema, c.table, err)
			}
		}
		return nil
	}
	projectRows := func(first, count int) [][]any {
		var rows [][]any
		for i := first; i < first+count; i++ {
			for k, id := range d.projects[i] {
				at := created.Add(time.Duration(k) * time.Second)
				rows = append(rows, []any{fixture.ID(i), id, fmt.Sprintf("project %d", k), "a project", at, at})
			}
		}
		return rows
	}
	projectCols := []string{"tenant_id", "id", "name", "description", "created_at", "updated_at"}
	// inSchema creates schema and runs fn in it, in one transaction.
	inSchema := func(ctx context.Context, schema string, fn func(tx pgx.Tx) error) error {
		ident := pgx.Identifier{schema}.Sanitize()
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if err := execAll(ctx, tx, []string{"CREATE SCHEMA " + ident, "SET LOCAL search_path TO " + ident}); err != nil {
				return err
			}
			return fn(tx)
		})
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	if s := need.invoicerPlain; s != "" {
		g.Go(func() error {
			return inSchema(gctx, s, func(tx pgx.Tx) error {
				if err := execAll(gctx, tx, fixture.InvoicerPlainDDL); err != nil {
					return err
				}
				var cust, inv, items [][]any
				for i := range n {
					c, v, l := invoiceRows(i, true)
					cust, inv, items = append(cust, c...), append(inv, v...), append(items, l...)
				}
				return copyInvoices(gctx, tx, s, cust, inv, items, true)
			})
		})
	}
	if p := need.invoicerPrefix; p != "" {
		for i := range n {
			g.Go(func() error {
				schema, err := isolation.Name(p, fixture.Identifier(i))
				if err != nil {
					return err
				}
				// As Invoicer's migration runner: its migrations, then the
				// grants and the seal.
				return inSchema(gctx, schema, func(tx pgx.Tx) error {
					if _, err := tx.Exec(gctx, up); err != nil {
						return fmt.Errorf("invoicer migrations in %s: %w", schema, err)
					}
					c, v, l := invoiceRows(i, false)
					if err := copyInvoices(gctx, tx, schema, c, v, l, false); err != nil {
						return err
					}
					if _, err := tx.Exec(gctx, "UPDATE invoice_counter SET next_number = $1", len(v)+1); err != nil {
						return err
					}
					if err := postgres.GrantSchema(gctx, tx, schema, postgres.DefaultRole); err != nil {
						return err
					}
					return postgres.SealSchema(gctx, tx, schema, fixture.ID(i))
				})
			})
		}
	}
	// fillProjects creates the projects table in schema with the rows of
	// tenants first..first+count-1, under RLS unless plain; sealFor names
	// the tenant of a tenant schema.
	fillProjects := func(ctx context.Context, schema string, plain bool, first, count int, sealFor string) error {
		return inSchema(ctx, schema, func(tx pgx.Tx) error {
			if err := execAll(ctx, tx, fixture.ProjectsDDL); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{schema, "projects"}, projectCols, pgx.CopyFromRows(projectRows(first, count))); err != nil {
				return fmt.Errorf("copy into %s.projects: %w", schema, err)
			}
			if plain {
				return nil
			}
			if err := execAll(ctx, tx, fixture.ProjectsRLS); err != nil {
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
	if s := need.projectsPlain; s != "" {
		g.Go(func() error { return fillProjects(gctx, s, true, 0, n, "") })
	}
	if s := need.projectsRLS; s != "" {
		g.Go(func() error { return fillProjects(gctx, s, false, 0, n, "") })
		for i := range n {
			g.Go(func() error {
				schema, err := isolation.Name(need.projectsPrefix, fixture.Identifier(i))
				if err != nil {
					return err
				}
				return fillProjects(gctx, schema, false, i, 1, fixture.ID(i))
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("seed the app modes: %w", err)
	}
	return d, nil
}

// invoicerUp returns the Up sections of Invoicer's PostgreSQL migrations,
// in order, as one script.
func invoicerUp() (string, error) {
	fsys, err := billing.Migrations(isolation.Postgres)
	if err != nil {
		return "", err
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return "", err
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return "", err
		}
		_, up, ok := strings.Cut(string(src), "-- +goose Up")
		if !ok || strings.Contains(up, "StatementBegin") {
			return "", fmt.Errorf("invoicer migration %s: no plain Up section", name)
		}
		up, _, _ = strings.Cut(up, "-- +goose Down")
		b.WriteString(up)
		b.WriteString("\n")
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("no invoicer migrations found")
	}
	return b.String(), nil
}

// doApp sends one request of an app scenario for tenant i and checks the
// answer: its status, the ID asked for, and whose data it is.
func (d *driver) doApp(ctx context.Context, s *server, scenario string, i int, rng *rand.Rand, buf *bytes.Buffer) error {
	switch scenario {
	case scenarioInvoice:
		ids := d.data.apps.invoices[i]
		id := ids[rng.IntN(len(ids))]
		var inv billing.Invoice
		if err := d.appCall(ctx, s, scenario, "/invoices/"+id, i, http.StatusOK, buf, &inv); err != nil {
			return err
		}
		for _, it := range inv.LineItems {
			if !strings.HasPrefix(it.Description, fixture.ItemPrefix(i)) {
				return fmt.Errorf("read invoice %s for %s, got item %q: %w", id, fixture.ID(i), it.Description, errWrongTenant)
			}
		}
		if inv.ID != id || len(inv.LineItems) != fixture.ItemsPerInvoice {
			return fmt.Errorf("read invoice %s for %s, got invoice %q with %d items", id, fixture.ID(i), inv.ID, len(inv.LineItems))
		}
	case scenarioProject:
		ids := d.data.apps.projects[i]
		id := ids[rng.IntN(len(ids))]
		var p fixture.Project
		if err := d.appCall(ctx, s, scenario, "/projects/"+id, i, http.StatusOK, buf, &p); err != nil {
			return err
		}
		if p.TenantID != fixture.ID(i) {
			return fmt.Errorf("read project %s for %s, got tenant_id %q: %w", id, fixture.ID(i), p.TenantID, errWrongTenant)
		}
		if p.ID != id {
			return fmt.Errorf("read project %s for %s, got project %q", id, fixture.ID(i), p.ID)
		}
	default:
		return fmt.Errorf("unknown scenario %q", scenario)
	}
	return nil
}

// Pseudo-tenants of appCall's probes.
const (
	noTenant      = -1 // the request names no tenant
	unknownTenant = -2 // the request names a tenant that does not exist
)

// appCall sends GET path as tenant i the way scenario's clients name their
// tenant: a subdomain, or a bearer token (and X-Tenant-ID for the mode
// without tokens).
func (d *driver) appCall(ctx context.Context, s *server, scenario, path string, i, want int, buf *bytes.Buffer, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return err
	}
	switch scenario {
	case scenarioInvoice:
		switch i {
		case noTenant:
			req.Host = fixture.BaseDomain
		case unknownTenant:
			req.Host = "nobody-here." + fixture.BaseDomain
		default:
			req.Host = fixture.Host(i)
		}
	case scenarioProject:
		switch i {
		case noTenant:
		case unknownTenant:
			req.Header.Set(fixture.Header, "nobody-here")
			req.Header.Set("Authorization", "Bearer "+d.data.apps.unknownToken)
		default:
			req.Header.Set(fixture.Header, fixture.Identifier(i))
			req.Header.Set("Authorization", "Bearer "+d.data.apps.tokens[i])
		}
	}
	return d.send(req, want, buf, out)
}

// probeApp checks, before anything is timed, that s refuses another
// tenant's invoice or project (404), an unknown tenant (404) and a request
// naming none (400, or 401 without a token).
func (d *driver) probeApp(ctx context.Context, s *server, scenario string) error {
	var buf bytes.Buffer
	path := func(i int) string {
		if scenario == scenarioInvoice {
			return "/invoices/" + d.data.apps.invoices[i][0]
		}
		return "/projects/" + d.data.apps.projects[i][0]
	}
	for i := range min(s.tenants, 5) {
		j := (i + 1) % s.tenants
		if j == i {
			break
		}
		if err := d.appCall(ctx, s, scenario, path(j), i, http.StatusNotFound, &buf, nil); err != nil {
			return fmt.Errorf("another tenant's data: %w", err)
		}
		if err := d.appCall(ctx, s, scenario, path(i), i, http.StatusOK, &buf, nil); err != nil {
			return fmt.Errorf("own data: %w", err)
		}
	}
	if err := d.appCall(ctx, s, scenario, path(0), unknownTenant, http.StatusNotFound, &buf, nil); err != nil {
		return fmt.Errorf("unknown tenant: %w", err)
	}
	want := http.StatusBadRequest
	if scenario == scenarioProject && s.name != "projectr-nojwt" {
		want = http.StatusUnauthorized
	}
	if err := d.appCall(ctx, s, scenario, path(0), noTenant, want, &buf, nil); err != nil {
		return fmt.Errorf("no tenant: %w", err)
	}
	return nil
}
