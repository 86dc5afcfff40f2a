package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/go-tenancy/tenancy/examples/invoicer/billing"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/go-tenancy/tenancy/store/cache"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// appModes are the modes of the example apps' requests, each serving its
// own routes instead of the notes.
var appModes = map[string]func(ctx context.Context, o options, pool *pgxpool.Pool, logger *slog.Logger, b *backend) (http.Handler, error){
	"invoicer":       openInvoicer,
	"invoicer-base":  openInvoicerBase,
	"projectr":       openProjectr,
	"projectr-base":  openProjectrBase,
	"projectr-nojwt": openProjectrBase,
}

// tenantStore returns the tenants 0..n-1 in an in-memory store behind the
// L1 cache, as every library mode finds them.
func tenantStore(ctx context.Context, n int, logger *slog.Logger, b *backend) (resolve.HostLookup, error) {
	store := memstore.New()
	for i := range n {
		if _, err := store.Create(ctx, fixture.Tenant(i)); err != nil {
			return nil, fmt.Errorf("create tenant %d: %w", i, err)
		}
	}
	cached := cache.New(store, cache.Config{Logger: logger})
	b.closers = append(b.closers, func() { _ = cached.Close() })
	return cached, nil
}

// openInvoicer is Invoicer's read path: the tenant from the subdomain
// (resolve.Host over the cached store, through the middleware), and
// Invoicer's own billing store (sqlc's GetInvoiceWithItems on the schema
// provider's tenant Querier) in the tenant's schema, sealed as Invoicer's
// migrations seal it.
func openInvoicer(ctx context.Context, o options, pool *pgxpool.Pool, logger *slog.Logger, b *backend) (http.Handler, error) {
	lookup, err := tenantStore(ctx, o.tenants, logger, b)
	if err != nil {
		return nil, err
	}
	p, err := postgres.NewSchema(ctx, pool, postgres.SchemaConfig{
		Config: postgres.Config{StatementCacheCapacity: o.stmtCache, Logger: logger},
		Prefix: o.prefix,
	})
	if err != nil {
		return nil, err
	}
	store, err := billing.NewPostgres(p)
	if err != nil {
		return nil, err
	}
	h := newAppHandlers(logger)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /invoices/{id}", func(w http.ResponseWriter, r *http.Request) {
		t, ok := tenancy.FromContext(r.Context())
		if !ok {
			h.fail(w, r, errNoTenant)
			return
		}
		inv, err := store.GetInvoice(r.Context(), t, r.PathValue("id"))
		if errors.Is(err, billing.ErrInvoiceNotFound) {
			err = errNotFound
		}
		h.reply(w, r, inv, err)
	})
	mw := middleware.New(middleware.Config{
		Resolver:    resolve.Host{BaseDomain: fixture.BaseDomain, Lookup: lookup},
		PublicPaths: []string{"GET /healthz"},
		Logger:      logger,
	})
	return mw(mux), nil
}

// openInvoicerBase is the same request without tenancy: the subdomain
// parsed by hand and looked up in a map, the same statement on shared
// tables with the tenant named in it, on raw pgx.
func openInvoicerBase(_ context.Context, o options, pool *pgxpool.Pool, logger *slog.Logger, _ *backend) (http.Handler, error) {
	ids := tenantIDs(o.tenants)
	h := newAppHandlers(logger)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /invoices/{id}", func(w http.ResponseWriter, r *http.Request) {
		tid, err := tenantOfHost(r, ids)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		id := r.PathValue("id")
		if uuid.Validate(id) != nil {
			h.fail(w, r, errNotFound)
			return
		}
		inv, err := plainInvoice(r.Context(), pool, tid, id)
		h.reply(w, r, inv, err)
	})
	return mux, nil
}

// tenantIDs maps the identifiers of tenants 0..n-1 to their IDs.
func tenantIDs(n int) map[string]string {
	ids := make(map[string]string, n)
	for i := range n {
		ids[fixture.Identifier(i)] = fixture.ID(i)
	}
	return ids
}

// tenantOfHost is the subdomain resolution a team writes by hand: the
// label before the base domain, looked up.
func tenantOfHost(r *http.Request, ids map[string]string) (string, error) {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	label, ok := strings.CutSuffix(host, "."+fixture.BaseDomain)
	if !ok || label == "" || strings.Contains(label, ".") {
		return "", errNoTenant
	}
	id, ok := ids[label]
	if !ok {
		return "", errUnknownTenant
	}
	return id, nil
}

func plainInvoice(ctx context.Context, pool *pgxpool.Pool, tenantID, id string) (billing.Invoice, error) {
	rows, err := pool.Query(ctx, fixture.InvoicerPlainGet, tenantID, id)
	if err != nil {
		return billing.Invoice{}, err
	}
	defer rows.Close()
	var (
		inv   billing.Invoice
		found bool
	)
	for rows.Next() {
		var (
			number                      int64
			due                         pgtype.Date
			status                      string
			pos                         *int32
			desc                        *string
			qty, price, amount          *int64
			issued, paid, voided        *time.Time
			created, updated            time.Time
			subtotal, total             int64
			invID, customerID, currency string
		)
		if err := rows.Scan(&invID, &number, &customerID, &status, &currency, &due, &subtotal, &total,
			&created, &updated, &issued, &paid, &voided, &pos, &desc, &qty, &price, &amount); err != nil {
			return billing.Invoice{}, err
		}
		if !found {
			found = true
			inv = billing.Invoice{ID: invID, Number: billing.FormatNumber(number), CustomerID: customerID,
				Status: billing.Status(status), Currency: currency, DueDate: due.Time.Format(time.DateOnly),
				SubtotalCents: subtotal, TotalCents: total, CreatedAt: created.UTC(), UpdatedAt: updated.UTC(),
				IssuedAt: issued, PaidAt: paid, VoidedAt: voided}
		}
		if pos != nil {
			inv.LineItems = append(inv.LineItems, billing.LineItem{Description: *desc, Quantity: *qty, UnitPriceCents: *price, AmountCents: *amount})
		}
	}
	if err := rows.Err(); err != nil {
		return billing.Invoice{}, err
	}
	if !found {
		return billing.Invoice{}, errNotFound
	}
	return inv, nil
}

// appHandlers answers the app modes' requests, mapping errors to statuses
// as the notes' handlers do.
type appHandlers struct {
	handlers
}

func newAppHandlers(logger *slog.Logger) *appHandlers {
	return &appHandlers{handlers: handlers{logger: logger}}
}

func (a *appHandlers) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func healthz(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
