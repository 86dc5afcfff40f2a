package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/invoicer/billing/internal/pgdb"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// PostgresStore is a Store on PostgreSQL with a schema per tenant. Its
// statements are sqlc's (internal/pgdb), run on postgres.For's tenant
// Querier: each one-shot statement is one round trip with the tenant
// statement, and multi-statement changes run in the Querier's pgx.Tx.
type PostgresStore struct {
	p isolation.Provider
}

var _ Store = (*PostgresStore)(nil)

// NewPostgres returns a Store on p, a postgres.Schema provider (or a
// postgres.Database one: the tables need nothing but a place of their own)
// connected as the application role. Row-level security over shared tables
// is refused: these tables have no tenant column.
func NewPostgres(p isolation.Provider) (*PostgresStore, error) {
	if p.Dialect() != isolation.Postgres {
		return nil, fmt.Errorf("billing: NewPostgres needs a PostgreSQL provider, not %s", p.Dialect())
	}
	if _, ok := p.(*postgres.RLS); ok {
		return nil, errors.New("billing: the tables have no tenant column; use a schema (or database) per tenant, not row-level security")
	}
	return &PostgresStore{p: p}, nil
}

// q returns sqlc's queries in t's scope.
func (s *PostgresStore) q(t *tenancy.Tenant) (*postgres.Querier, *pgdb.Queries) {
	db := postgres.For(s.p, t)
	return db, pgdb.New(db)
}

// pgCode returns the SQLSTATE and constraint of a PostgreSQL error.
func pgCode(err error) (code, constraint string) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code, pgErr.ConstraintName
	}
	return "", ""
}

const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

func customerError(op string, err error) error {
	switch code, constraint := pgCode(err); {
	case errors.Is(err, pgx.ErrNoRows):
		return ErrCustomerNotFound
	case code == uniqueViolation && constraint == "customers_email_key":
		return ErrEmailTaken
	case err != nil:
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func customerFromPG(c pgdb.Customer) Customer {
	return Customer{ID: c.ID, Name: c.Name, Email: c.Email, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
}

// CreateCustomer implements Store.
func (s *PostgresStore) CreateCustomer(ctx context.Context, t *tenancy.Tenant, in NewCustomer) (Customer, error) {
	if err := checkCustomer(&in.Name, &in.Email); err != nil {
		return Customer{}, err
	}
	_, q := s.q(t)
	c, err := q.CreateCustomer(ctx, pgdb.CreateCustomerParams{Name: in.Name, Email: in.Email})
	if err != nil {
		return Customer{}, customerError("create customer", err)
	}
	return customerFromPG(c), nil
}

// ListCustomers implements Store.
func (s *PostgresStore) ListCustomers(ctx context.Context, t *tenancy.Tenant, p Page) ([]Customer, error) {
	limit, offset := p.limits()
	_, q := s.q(t)
	rows, err := q.ListCustomers(ctx, pgdb.ListCustomersParams{Limit: limit, Offset: offset})
	if err != nil {
		return nil, fmt.Errorf("list customers: %w", err)
	}
	out := make([]Customer, len(rows))
	for i, c := range rows {
		out[i] = customerFromPG(c)
	}
	return out, nil
}

// GetCustomer implements Store.
func (s *PostgresStore) GetCustomer(ctx context.Context, t *tenancy.Tenant, id string) (Customer, error) {
	id, ok := canonicalID(id)
	if !ok {
		return Customer{}, ErrCustomerNotFound
	}
	_, q := s.q(t)
	c, err := q.GetCustomer(ctx, id)
	if err != nil {
		return Customer{}, customerError("get customer", err)
	}
	return customerFromPG(c), nil
}

// UpdateCustomer implements Store.
func (s *PostgresStore) UpdateCustomer(ctx context.Context, t *tenancy.Tenant, id string, p CustomerPatch) (Customer, error) {
	if p.Name == nil && p.Email == nil {
		return s.GetCustomer(ctx, t, id)
	}
	id, ok := canonicalID(id)
	if !ok {
		return Customer{}, ErrCustomerNotFound
	}
	if err := checkCustomer(p.Name, p.Email); err != nil {
		return Customer{}, err
	}
	_, q := s.q(t)
	c, err := q.UpdateCustomer(ctx, pgdb.UpdateCustomerParams{ID: id, Name: p.Name, Email: p.Email})
	if err != nil {
		return Customer{}, customerError("update customer", err)
	}
	return customerFromPG(c), nil
}

// DeleteCustomer implements Store.
func (s *PostgresStore) DeleteCustomer(ctx context.Context, t *tenancy.Tenant, id string) error {
	id, ok := canonicalID(id)
	if !ok {
		return ErrCustomerNotFound
	}
	_, q := s.q(t)
	n, err := q.DeleteCustomer(ctx, id)
	if code, _ := pgCode(err); code == foreignKeyViolation {
		return ErrCustomerHasInvoices
	}
	if err != nil {
		return fmt.Errorf("delete customer: %w", err)
	}
	if n == 0 {
		return ErrCustomerNotFound
	}
	return nil
}

func pgDate(d string) (pgtype.Date, error) {
	t, err := time.Parse(time.DateOnly, d)
	return pgtype.Date{Time: t, Valid: true}, err
}

func invoiceFromPG(i pgdb.Invoice) Invoice {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	return Invoice{
		ID:            i.ID,
		Number:        FormatNumber(i.Number),
		CustomerID:    i.CustomerID,
		Status:        Status(i.Status),
		Currency:      i.Currency,
		DueDate:       i.DueDate.Time.Format(time.DateOnly),
		SubtotalCents: i.SubtotalCents,
		TotalCents:    i.TotalCents,
		CreatedAt:     i.CreatedAt.UTC(),
		UpdatedAt:     i.UpdatedAt.UTC(),
		IssuedAt:      utc(i.IssuedAt),
		PaidAt:        utc(i.PaidAt),
		VoidedAt:      utc(i.VoidedAt),
	}
}

// CreateInvoice implements Store. The number, the invoice and its line
// items are one statement, so one round trip: the counter's row is locked
// only while it runs.
func (s *PostgresStore) CreateInvoice(ctx context.Context, t *tenancy.Tenant, in NewInvoice) (Invoice, error) {
	c, err := checkInvoice(in)
	if err != nil {
		return Invoice{}, err
	}
	due, err := pgDate(c.DueDate)
	if err != nil {
		return Invoice{}, invalid("due_date", "must be a date as YYYY-MM-DD")
	}
	desc, qty, price, amount := itemColumns(c.items)
	_, q := s.q(t)
	row, err := q.CreateInvoice(ctx, pgdb.CreateInvoiceParams{
		CustomerID:      c.CustomerID,
		Currency:        c.Currency,
		DueDate:         due,
		SubtotalCents:   c.subtotal,
		TotalCents:      total(c.subtotal),
		Descriptions:    desc,
		Quantities:      qty,
		UnitPricesCents: price,
		AmountsCents:    amount,
	})
	if code, constraint := pgCode(err); code == foreignKeyViolation && constraint == "invoices_customer_id_fkey" {
		return Invoice{}, unknownCustomer()
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("create invoice: %w", err)
	}
	inv := invoiceFromPG(pgdb.Invoice(row))
	inv.LineItems = c.items
	return inv, nil
}

// ListInvoices implements Store.
func (s *PostgresStore) ListInvoices(ctx context.Context, t *tenancy.Tenant, f InvoiceFilter) ([]Invoice, error) {
	var status *string
	if f.Status != "" {
		if !f.Status.Valid() {
			return nil, invalid("status", "must be draft, issued, paid or void")
		}
		status = (*string)(&f.Status)
	}
	limit, offset := f.limits()
	_, q := s.q(t)
	rows, err := q.ListInvoices(ctx, pgdb.ListInvoicesParams{Limit: limit, Offset: offset, Status: status})
	if err != nil {
		return nil, fmt.Errorf("list invoices: %w", err)
	}
	out := make([]Invoice, len(rows))
	for i, r := range rows {
		out[i] = invoiceFromPG(r)
	}
	return out, nil
}

// GetInvoice implements Store: one statement reads the invoice and its
// items.
func (s *PostgresStore) GetInvoice(ctx context.Context, t *tenancy.Tenant, id string) (Invoice, error) {
	id, ok := canonicalID(id)
	if !ok {
		return Invoice{}, ErrInvoiceNotFound
	}
	_, q := s.q(t)
	rows, err := q.GetInvoiceWithItems(ctx, id)
	if err != nil {
		return Invoice{}, fmt.Errorf("get invoice: %w", err)
	}
	if len(rows) == 0 {
		return Invoice{}, ErrInvoiceNotFound
	}
	inv := invoiceFromPG(rows[0].Invoice)
	for _, r := range rows {
		if r.Position == nil {
			continue // LEFT JOIN: an invoice without items
		}
		inv.LineItems = append(inv.LineItems, LineItem{
			Description:    *r.Description,
			Quantity:       *r.Quantity,
			UnitPriceCents: *r.UnitPriceCents,
			AmountCents:    *r.AmountCents,
		})
	}
	return inv, nil
}

// UpdateDraft implements Store, in one transaction: the update, guarded by
// the draft status, and the replacement of the items.
func (s *PostgresStore) UpdateDraft(ctx context.Context, t *tenancy.Tenant, id string, p DraftPatch) (Invoice, error) {
	id, ok := canonicalID(id)
	if !ok {
		return Invoice{}, ErrInvoiceNotFound
	}
	params := pgdb.UpdateDraftParams{ID: id}
	if p.DueDate != nil {
		if err := checkDueDate(*p.DueDate); err != nil {
			return Invoice{}, err
		}
		due, err := pgDate(*p.DueDate)
		if err != nil {
			return Invoice{}, invalid("due_date", "must be a date as YYYY-MM-DD")
		}
		params.DueDate = due
	}
	var items []LineItem
	if p.LineItems != nil {
		var (
			subtotal int64
			err      error
		)
		if items, subtotal, err = lineItems(p.LineItems); err != nil {
			return Invoice{}, err
		}
		tot := total(subtotal)
		params.SubtotalCents, params.TotalCents = &subtotal, &tot
	}
	db, _ := s.q(t)
	var inv Invoice
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		q := pgdb.New(tx)
		row, err := q.UpdateDraft(ctx, params)
		if errors.Is(err, pgx.ErrNoRows) {
			return refused(ctx, q.InvoiceStatus, id, "edit")
		}
		if err != nil {
			return fmt.Errorf("update invoice: %w", err)
		}
		inv = invoiceFromPG(row)
		if items == nil {
			stored, err := q.ListLineItems(ctx, id)
			if err != nil {
				return fmt.Errorf("update invoice: %w", err)
			}
			for _, it := range stored {
				items = append(items, LineItem{Description: it.Description, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents, AmountCents: it.AmountCents})
			}
		} else {
			if err := q.DeleteLineItems(ctx, id); err != nil {
				return fmt.Errorf("update invoice: %w", err)
			}
			desc, qty, price, amount := itemColumns(items)
			if err := q.InsertLineItems(ctx, pgdb.InsertLineItemsParams{InvoiceID: id, Descriptions: desc, Quantities: qty, UnitPricesCents: price, AmountsCents: amount}); err != nil {
				return fmt.Errorf("update invoice: %w", err)
			}
		}
		inv.LineItems = items
		return nil
	})
	if err != nil {
		return Invoice{}, err
	}
	return inv, nil
}

// Transition implements Store. The update is guarded by the statuses the
// action may start from; the items are read after it, which is safe since
// no transition leads back to draft, the only status whose items change.
func (s *PostgresStore) Transition(ctx context.Context, t *tenancy.Tenant, id string, a Action) (Invoice, error) {
	to, from, ok := a.transition()
	if !ok {
		return Invoice{}, invalid("action", "must be issue, pay or void")
	}
	id, ok = canonicalID(id)
	if !ok {
		return Invoice{}, ErrInvoiceNotFound
	}
	fromStatuses := make([]string, len(from))
	for i, f := range from {
		fromStatuses[i] = string(f)
	}
	_, q := s.q(t)
	_, err := q.TransitionInvoice(ctx, pgdb.TransitionInvoiceParams{ID: id, NewStatus: string(to), FromStatuses: fromStatuses})
	if errors.Is(err, pgx.ErrNoRows) {
		return Invoice{}, refused(ctx, q.InvoiceStatus, id, string(a))
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("%s invoice: %w", a, err)
	}
	return s.GetInvoice(ctx, t, id)
}
