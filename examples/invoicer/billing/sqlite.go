package billing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/invoicer/billing/internal/litedb"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
	"github.com/google/uuid"
	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLiteStore is a Store on SQLite with a file per tenant. Its statements
// are sqlc's (internal/litedb), run on the tenant file's connection, or in
// a transaction (which holds the file's write lock from its start) where a
// call makes more than one.
type SQLiteStore struct {
	p   *sqlite.Provider
	now func() time.Time
}

var _ Store = (*SQLiteStore)(nil)

// NewSQLite returns a Store on p.
func NewSQLite(p *sqlite.Provider) *SQLiteStore {
	return &SQLiteStore{p: p, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
}

// sqliteTime is how rows store timestamps: fixed-width UTC with
// microseconds, so that text order is time order.
const sqliteTime = "2006-01-02T15:04:05.000000Z"

func (s *SQLiteStore) stamp() string { return s.now().Format(sqliteTime) }

// conn runs fn with sqlc's queries on a connection to t's file.
func (s *SQLiteStore) conn(ctx context.Context, t *tenancy.Tenant, fn func(*litedb.Queries) error) error {
	return s.p.Conn(ctx, t, func(c *sql.Conn) error { return fn(litedb.New(c)) })
}

// tx runs fn with sqlc's queries in a transaction on t's file.
func (s *SQLiteStore) tx(ctx context.Context, t *tenancy.Tenant, fn func(*litedb.Queries) error) error {
	return s.p.BeginFunc(ctx, t, nil, func(tx *sql.Tx) error { return fn(litedb.New(tx)) })
}

func sqliteCode(err error) int {
	var se *sqlitedrv.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func parseTime(v string) (time.Time, error) { return time.Parse(sqliteTime, v) }

func parseTimePtr(v *string) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	t, err := parseTime(*v)
	return &t, err
}

func customerFromLite(c litedb.Customer) (Customer, error) {
	created, err1 := parseTime(c.CreatedAt)
	updated, err2 := parseTime(c.UpdatedAt)
	if err := errors.Join(err1, err2); err != nil {
		return Customer{}, fmt.Errorf("customer %s: %w", c.ID, err)
	}
	return Customer{ID: c.ID, Name: c.Name, Email: c.Email, CreatedAt: created, UpdatedAt: updated}, nil
}

func liteCustomerError(op string, err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrCustomerNotFound
	case sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		// customers_email_key is the only unique index of customers that a
		// request can violate: IDs are fresh UUIDs.
		return ErrEmailTaken
	case err != nil:
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// CreateCustomer implements Store.
func (s *SQLiteStore) CreateCustomer(ctx context.Context, t *tenancy.Tenant, in NewCustomer) (Customer, error) {
	if err := checkCustomer(&in.Name, &in.Email); err != nil {
		return Customer{}, err
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return Customer{}, fmt.Errorf("create customer: %w", err)
	}
	var c litedb.Customer
	err = s.conn(ctx, t, func(q *litedb.Queries) (err error) {
		c, err = q.CreateCustomer(ctx, litedb.CreateCustomerParams{ID: id.String(), Name: in.Name, Email: in.Email, Now: s.stamp()})
		return err
	})
	if err != nil {
		return Customer{}, liteCustomerError("create customer", err)
	}
	return customerFromLite(c)
}

// ListCustomers implements Store.
func (s *SQLiteStore) ListCustomers(ctx context.Context, t *tenancy.Tenant, p Page) ([]Customer, error) {
	limit, offset := p.limits()
	var rows []litedb.Customer
	err := s.conn(ctx, t, func(q *litedb.Queries) (err error) {
		rows, err = q.ListCustomers(ctx, litedb.ListCustomersParams{Limit: int64(limit), Offset: int64(offset)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list customers: %w", err)
	}
	out := make([]Customer, len(rows))
	for i, r := range rows {
		if out[i], err = customerFromLite(r); err != nil {
			return nil, fmt.Errorf("list customers: %w", err)
		}
	}
	return out, nil
}

// GetCustomer implements Store.
func (s *SQLiteStore) GetCustomer(ctx context.Context, t *tenancy.Tenant, id string) (Customer, error) {
	id, ok := canonicalID(id)
	if !ok {
		return Customer{}, ErrCustomerNotFound
	}
	var c litedb.Customer
	err := s.conn(ctx, t, func(q *litedb.Queries) (err error) {
		c, err = q.GetCustomer(ctx, id)
		return err
	})
	if err != nil {
		return Customer{}, liteCustomerError("get customer", err)
	}
	return customerFromLite(c)
}

// UpdateCustomer implements Store.
func (s *SQLiteStore) UpdateCustomer(ctx context.Context, t *tenancy.Tenant, id string, p CustomerPatch) (Customer, error) {
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
	var c litedb.Customer
	err := s.conn(ctx, t, func(q *litedb.Queries) (err error) {
		c, err = q.UpdateCustomer(ctx, litedb.UpdateCustomerParams{ID: id, Name: p.Name, Email: p.Email, Now: s.stamp()})
		return err
	})
	if err != nil {
		return Customer{}, liteCustomerError("update customer", err)
	}
	return customerFromLite(c)
}

// DeleteCustomer implements Store.
func (s *SQLiteStore) DeleteCustomer(ctx context.Context, t *tenancy.Tenant, id string) error {
	id, ok := canonicalID(id)
	if !ok {
		return ErrCustomerNotFound
	}
	var n int64
	err := s.conn(ctx, t, func(q *litedb.Queries) (err error) {
		n, err = q.DeleteCustomer(ctx, id)
		return err
	})
	switch code := sqliteCode(err); {
	case code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, code == sqlite3.SQLITE_CONSTRAINT_TRIGGER:
		// ON DELETE RESTRICT reports itself as a trigger's constraint;
		// invoices are the only rows that refer to customers, and there
		// are no other triggers.
		return ErrCustomerHasInvoices
	case err != nil:
		return fmt.Errorf("delete customer: %w", err)
	case n == 0:
		return ErrCustomerNotFound
	}
	return nil
}

func invoiceFromLite(i litedb.Invoice) (Invoice, error) {
	created, err1 := parseTime(i.CreatedAt)
	updated, err2 := parseTime(i.UpdatedAt)
	issued, err3 := parseTimePtr(i.IssuedAt)
	paid, err4 := parseTimePtr(i.PaidAt)
	voided, err5 := parseTimePtr(i.VoidedAt)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return Invoice{}, fmt.Errorf("invoice %s: %w", i.ID, err)
	}
	return Invoice{
		ID:            i.ID,
		Number:        FormatNumber(i.Number),
		CustomerID:    i.CustomerID,
		Status:        Status(i.Status),
		Currency:      i.Currency,
		DueDate:       i.DueDate,
		SubtotalCents: i.SubtotalCents,
		TotalCents:    i.TotalCents,
		CreatedAt:     created,
		UpdatedAt:     updated,
		IssuedAt:      issued,
		PaidAt:        paid,
		VoidedAt:      voided,
	}, nil
}

func lineItemsFromLite(rows []litedb.LineItem) []LineItem {
	out := make([]LineItem, len(rows))
	for i, r := range rows {
		out[i] = LineItem{Description: r.Description, Quantity: r.Quantity, UnitPriceCents: r.UnitPriceCents, AmountCents: r.AmountCents}
	}
	return out
}

// insertItems stores the line items of invoice id.
func insertItems(ctx context.Context, q *litedb.Queries, id string, items []LineItem) error {
	for i, it := range items {
		if err := q.InsertLineItem(ctx, litedb.InsertLineItemParams{
			InvoiceID: id, Position: int64(i + 1), Description: it.Description,
			Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents, AmountCents: it.AmountCents,
		}); err != nil {
			return err
		}
	}
	return nil
}

// CreateInvoice implements Store, in one transaction that holds the file's
// write lock from its start: the counter, the invoice and its items.
func (s *SQLiteStore) CreateInvoice(ctx context.Context, t *tenancy.Tenant, in NewInvoice) (Invoice, error) {
	c, err := checkInvoice(in)
	if err != nil {
		return Invoice{}, err
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return Invoice{}, fmt.Errorf("create invoice: %w", err)
	}
	var row litedb.Invoice
	err = s.tx(ctx, t, func(q *litedb.Queries) error {
		exists, err := q.CustomerExists(ctx, c.CustomerID)
		if err != nil {
			return err
		}
		if !exists {
			return unknownCustomer()
		}
		number, err := q.NextInvoiceNumber(ctx)
		if err != nil {
			return err
		}
		now := s.stamp()
		row, err = q.CreateInvoice(ctx, litedb.CreateInvoiceParams{
			ID: id.String(), Number: number, CustomerID: c.CustomerID, Currency: c.Currency, DueDate: c.DueDate,
			SubtotalCents: c.subtotal, TotalCents: total(c.subtotal), Now: now,
		})
		if err != nil {
			return err
		}
		return insertItems(ctx, q, row.ID, c.items)
	})
	var fe *FieldError
	if errors.As(err, &fe) {
		return Invoice{}, err
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("create invoice: %w", err)
	}
	inv, err := invoiceFromLite(row)
	inv.LineItems = c.items
	return inv, err
}

// ListInvoices implements Store.
func (s *SQLiteStore) ListInvoices(ctx context.Context, t *tenancy.Tenant, f InvoiceFilter) ([]Invoice, error) {
	var status *string
	if f.Status != "" {
		if !f.Status.Valid() {
			return nil, invalid("status", "must be draft, issued, paid or void")
		}
		status = (*string)(&f.Status)
	}
	limit, offset := f.limits()
	var rows []litedb.Invoice
	err := s.conn(ctx, t, func(q *litedb.Queries) (err error) {
		rows, err = q.ListInvoices(ctx, litedb.ListInvoicesParams{Status: status, Limit: int64(limit), Offset: int64(offset)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list invoices: %w", err)
	}
	out := make([]Invoice, len(rows))
	for i, r := range rows {
		if out[i], err = invoiceFromLite(r); err != nil {
			return nil, fmt.Errorf("list invoices: %w", err)
		}
	}
	return out, nil
}

// getInvoice reads an invoice and its items with q.
func getInvoice(ctx context.Context, q *litedb.Queries, id string) (Invoice, error) {
	row, err := q.GetInvoice(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Invoice{}, ErrInvoiceNotFound
	}
	if err != nil {
		return Invoice{}, err
	}
	items, err := q.ListLineItems(ctx, id)
	if err != nil {
		return Invoice{}, err
	}
	inv, err := invoiceFromLite(row)
	inv.LineItems = lineItemsFromLite(items)
	return inv, err
}

// GetInvoice implements Store. The invoice and its items are read in one
// transaction.
func (s *SQLiteStore) GetInvoice(ctx context.Context, t *tenancy.Tenant, id string) (Invoice, error) {
	id, ok := canonicalID(id)
	if !ok {
		return Invoice{}, ErrInvoiceNotFound
	}
	var inv Invoice
	err := s.tx(ctx, t, func(q *litedb.Queries) (err error) {
		inv, err = getInvoice(ctx, q, id)
		return err
	})
	switch {
	case errors.Is(err, ErrInvoiceNotFound):
		return Invoice{}, err
	case err != nil:
		return Invoice{}, fmt.Errorf("get invoice: %w", err)
	}
	return inv, nil
}

// UpdateDraft implements Store, in one transaction.
func (s *SQLiteStore) UpdateDraft(ctx context.Context, t *tenancy.Tenant, id string, p DraftPatch) (Invoice, error) {
	id, ok := canonicalID(id)
	if !ok {
		return Invoice{}, ErrInvoiceNotFound
	}
	params := litedb.UpdateDraftParams{ID: id, DueDate: p.DueDate}
	if p.DueDate != nil {
		if err := checkDueDate(*p.DueDate); err != nil {
			return Invoice{}, err
		}
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
	var inv Invoice
	err := s.tx(ctx, t, func(q *litedb.Queries) error {
		params.Now = s.stamp()
		_, err := q.UpdateDraft(ctx, params)
		if errors.Is(err, sql.ErrNoRows) {
			return refused(ctx, q.InvoiceStatus, id, "edit")
		}
		if err != nil {
			return fmt.Errorf("update invoice: %w", err)
		}
		if items != nil {
			if err := q.DeleteLineItems(ctx, id); err != nil {
				return fmt.Errorf("update invoice: %w", err)
			}
			if err := insertItems(ctx, q, id, items); err != nil {
				return fmt.Errorf("update invoice: %w", err)
			}
		}
		if inv, err = getInvoice(ctx, q, id); err != nil {
			return fmt.Errorf("update invoice: %w", err)
		}
		return nil
	})
	if err != nil {
		return Invoice{}, err
	}
	return inv, nil
}

// Transition implements Store, in one transaction.
func (s *SQLiteStore) Transition(ctx context.Context, t *tenancy.Tenant, id string, a Action) (Invoice, error) {
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
	var inv Invoice
	err := s.tx(ctx, t, func(q *litedb.Queries) error {
		_, err := q.TransitionInvoice(ctx, litedb.TransitionInvoiceParams{ID: id, NewStatus: string(to), FromStatuses: fromStatuses, Now: s.stamp()})
		if errors.Is(err, sql.ErrNoRows) {
			return refused(ctx, q.InvoiceStatus, id, string(a))
		}
		if err != nil {
			return fmt.Errorf("%s invoice: %w", a, err)
		}
		if inv, err = getInvoice(ctx, q, id); err != nil {
			return fmt.Errorf("%s invoice: %w", a, err)
		}
		return nil
	})
	if err != nil {
		return Invoice{}, err
	}
	return inv, nil
}
