package billing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"regexp"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Customer is one customer of one tenant.
type Customer struct {
	ID        string    `json:"id" format:"uuid" doc:"The customer's ID, a UUID."`
	Name      string    `json:"name" doc:"The customer's name, 1 to 200 characters."`
	Email     string    `json:"email" format:"email" doc:"The customer's email address, unique within the tenant (ignoring case)."`
	CreatedAt time.Time `json:"created_at" doc:"When the customer was created (UTC)."`
	UpdatedAt time.Time `json:"updated_at" doc:"When the customer was last changed (UTC)."`
}

// NewCustomer holds the fields of a customer to create.
type NewCustomer struct {
	Name  string
	Email string
}

// CustomerPatch names the fields of a customer to change; nil fields stay
// as they are.
type CustomerPatch struct {
	Name  *string
	Email *string
}

// Status is the state of an invoice: draft, then issued, then paid; a draft
// or issued invoice may be voided instead.
type Status string

// Invoice statuses.
const (
	StatusDraft  Status = "draft"
	StatusIssued Status = "issued"
	StatusPaid   Status = "paid"
	StatusVoid   Status = "void"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusDraft, StatusIssued, StatusPaid, StatusVoid:
		return true
	}
	return false
}

// Action moves an invoice from one status to another.
type Action string

// Invoice actions.
const (
	// ActionIssue moves a draft to issued.
	ActionIssue Action = "issue"
	// ActionPay moves an issued invoice to paid.
	ActionPay Action = "pay"
	// ActionVoid moves a draft or issued invoice to void.
	ActionVoid Action = "void"
)

// transition returns the status a moves an invoice to and the statuses it
// may start from; ok is false for an unknown action.
func (a Action) transition() (to Status, from []Status, ok bool) {
	switch a {
	case ActionIssue:
		return StatusIssued, []Status{StatusDraft}, true
	case ActionPay:
		return StatusPaid, []Status{StatusIssued}, true
	case ActionVoid:
		return StatusVoid, []Status{StatusDraft, StatusIssued}, true
	}
	return "", nil, false
}

// Invoice is one invoice of one tenant.
type Invoice struct {
	ID            string     `json:"id" format:"uuid" doc:"The invoice's ID, a UUID."`
	Number        string     `json:"number" doc:"The tenant's sequential invoice number, INV-0001 onwards, without gaps." example:"INV-0001"`
	CustomerID    string     `json:"customer_id" format:"uuid" doc:"The ID of the customer billed."`
	Status        Status     `json:"status" enum:"draft,issued,paid,void" doc:"draft, issued, paid or void."`
	Currency      string     `json:"currency" doc:"ISO 4217 currency code." example:"USD"`
	DueDate       string     `json:"due_date" format:"date" doc:"When payment is due, YYYY-MM-DD."`
	SubtotalCents int64      `json:"subtotal_cents" doc:"The sum of the line items' amounts, in cents."`
	TotalCents    int64      `json:"total_cents" doc:"The amount due, in cents: the subtotal (no tax)."`
	LineItems     []LineItem `json:"line_items,omitempty" doc:"The line items, in order. Listings leave them out."`
	CreatedAt     time.Time  `json:"created_at" doc:"When the invoice was created (UTC)."`
	UpdatedAt     time.Time  `json:"updated_at" doc:"When the invoice was last changed (UTC)."`
	IssuedAt      *time.Time `json:"issued_at,omitempty" doc:"When the invoice was issued (UTC)."`
	PaidAt        *time.Time `json:"paid_at,omitempty" doc:"When the invoice was paid (UTC)."`
	VoidedAt      *time.Time `json:"voided_at,omitempty" doc:"When the invoice was voided (UTC)."`
}

// LineItem is one line of an invoice.
type LineItem struct {
	Description    string `json:"description" doc:"What is billed, 1 to 500 characters."`
	Quantity       int64  `json:"quantity" doc:"How many, at least 1."`
	UnitPriceCents int64  `json:"unit_price_cents" doc:"The price of one, in cents, at least 0."`
	AmountCents    int64  `json:"amount_cents" doc:"quantity × unit_price_cents, in cents."`
}

// NewLineItem holds the fields of a line item to create.
type NewLineItem struct {
	Description    string
	Quantity       int64
	UnitPriceCents int64
}

// NewInvoice holds the fields of an invoice to create. It starts as a
// draft.
type NewInvoice struct {
	// CustomerID is the ID of one of the tenant's customers.
	CustomerID string
	// Currency is an ISO 4217 code, three upper-case letters. Default
	// DefaultCurrency.
	Currency string
	// DueDate is YYYY-MM-DD.
	DueDate string
	// LineItems holds 1 to MaxLineItems items.
	LineItems []NewLineItem
}

// DraftPatch changes a draft invoice: a non-nil DueDate replaces the due
// date, a non-nil LineItems replaces every line item (and so the totals).
// Issued, paid and void invoices cannot be changed.
type DraftPatch struct {
	DueDate   *string
	LineItems []NewLineItem
}

// Page selects a page of a listing.
type Page struct {
	// Limit is the most items returned: 1 to MaxLimit. Zero means
	// DefaultLimit; more than MaxLimit means MaxLimit.
	Limit int
	// Offset is how many items to skip.
	Offset int
}

// InvoiceFilter selects a page of invoices, newest (highest number) first.
type InvoiceFilter struct {
	// Status, when set, lists only invoices in that status.
	Status Status
	Page
}

// Limits and defaults.
const (
	DefaultCurrency = "USD"
	DefaultLimit    = 50
	MaxLimit        = 100
	MaxLineItems    = 100
	maxNameLen      = 200
	maxEmailLen     = 254
	maxDescLen      = 500
)

// Errors. The Err*NotFound errors are what an ID of another tenant looks
// like, too. Conflicts (ErrEmailTaken, ErrCustomerHasInvoices and
// *StateError) all match ErrConflict.
var (
	ErrCustomerNotFound    = errors.New("customer not found")
	ErrInvoiceNotFound     = errors.New("invoice not found")
	ErrConflict            = errors.New("conflict")
	ErrEmailTaken          = fmt.Errorf("%w: another customer has this email", ErrConflict)
	ErrCustomerHasInvoices = fmt.Errorf("%w: the customer has invoices", ErrConflict)
	ErrInvalid             = errors.New("invalid")
)

// FieldError reports a field of the input that the store refused: an
// invalid value (Err is ErrInvalid) or a reference to nothing (Err is
// ErrCustomerNotFound for a customer_id that names no customer of the
// tenant). Field is the field's JSON path, such as "customer_id" or
// "line_items[2].quantity".
type FieldError struct {
	Field   string
	Message string
	Err     error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...), Err: ErrInvalid}
}

// unknownCustomer is the error for a customer_id that names no customer of
// the tenant, whether it names one of another tenant or none at all.
func unknownCustomer() *FieldError {
	return &FieldError{Field: "customer_id", Message: "no such customer", Err: ErrCustomerNotFound}
}

// StateError reports an action the invoice's status does not allow: a
// transition other than issue, pay and void from their statuses, or a
// change to an invoice that is no longer a draft. It matches ErrConflict.
type StateError struct {
	// Status is the invoice's status.
	Status Status
	// Action is what was refused: "issue", "pay", "void" or "edit".
	Action string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("invoice is %s: cannot %s it", e.Status, e.Action)
}

// Unwrap returns ErrConflict.
func (e *StateError) Unwrap() error { return ErrConflict }

// Store keeps customers and invoices. Every method names the tenant
// explicitly, and none can reach another tenant's rows: a customer or an
// invoice of another tenant is not found, and changing it changes nothing.
type Store interface {
	// CreateCustomer stores a new customer of t. An email another of t's
	// customers has (ignoring case) is ErrEmailTaken.
	CreateCustomer(ctx context.Context, t *tenancy.Tenant, c NewCustomer) (Customer, error)
	// ListCustomers returns a page of t's customers by name.
	ListCustomers(ctx context.Context, t *tenancy.Tenant, p Page) ([]Customer, error)
	// GetCustomer returns t's customer with the given ID, or
	// ErrCustomerNotFound.
	GetCustomer(ctx context.Context, t *tenancy.Tenant, id string) (Customer, error)
	// UpdateCustomer changes the fields p sets; an empty patch returns the
	// customer unchanged.
	UpdateCustomer(ctx context.Context, t *tenancy.Tenant, id string, p CustomerPatch) (Customer, error)
	// DeleteCustomer removes a customer. One with invoices is
	// ErrCustomerHasInvoices.
	DeleteCustomer(ctx context.Context, t *tenancy.Tenant, id string) error

	// CreateInvoice stores a draft invoice with the tenant's next number and
	// its totals computed from the line items. A CustomerID that names no
	// customer of t is a *FieldError for "customer_id" matching
	// ErrCustomerNotFound.
	CreateInvoice(ctx context.Context, t *tenancy.Tenant, in NewInvoice) (Invoice, error)
	// ListInvoices returns a page of t's invoices, highest number first,
	// without their line items.
	ListInvoices(ctx context.Context, t *tenancy.Tenant, f InvoiceFilter) ([]Invoice, error)
	// GetInvoice returns t's invoice with its line items, or
	// ErrInvoiceNotFound.
	GetInvoice(ctx context.Context, t *tenancy.Tenant, id string) (Invoice, error)
	// UpdateDraft changes a draft invoice; see DraftPatch. An invoice that
	// is not a draft is a *StateError.
	UpdateDraft(ctx context.Context, t *tenancy.Tenant, id string, p DraftPatch) (Invoice, error)
	// Transition applies an action to an invoice and returns it with its
	// line items. An action its status does not allow is a *StateError.
	Transition(ctx context.Context, t *tenancy.Tenant, id string, a Action) (Invoice, error)
}

// refused explains why an UPDATE guarded by status matched no row: the
// invoice does not exist (for this tenant), or its status forbids action.
// status is sqlc's InvoiceStatus of either dialect.
func refused(ctx context.Context, status func(context.Context, string) (string, error), id, action string) error {
	st, err := status(ctx, id)
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.Is(err, sql.ErrNoRows):
		return ErrInvoiceNotFound
	case err != nil:
		return fmt.Errorf("%s invoice: %w", action, err)
	}
	return &StateError{Status: Status(st), Action: action}
}

// FormatNumber formats an invoice number: INV-0001 for 1. Numbers past
// 9999 take more digits.
func FormatNumber(n int64) string { return fmt.Sprintf("INV-%04d", n) }

// canonicalID returns id in canonical UUID form, or false when it is not a
// UUID in its 36-character form: such an ID names nothing and is never sent
// to the database.
func canonicalID(id string) (string, bool) {
	if len(id) != 36 {
		return "", false
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// limits returns p's limit and offset, with the defaults applied.
func (p Page) limits() (limit, offset int32) {
	l := p.Limit
	switch {
	case l <= 0:
		l = DefaultLimit
	case l > MaxLimit:
		l = MaxLimit
	}
	return int32(l), int32(min(max(p.Offset, 0), math.MaxInt32))
}

// checkCustomer trims and checks a customer's fields; nil fields are left
// alone.
func checkCustomer(name, email *string) error {
	if name != nil {
		*name = strings.TrimSpace(*name)
		if n := len([]rune(*name)); n < 1 || n > maxNameLen {
			return invalid("name", "must be 1 to %d characters", maxNameLen)
		}
	}
	if email != nil {
		*email = strings.TrimSpace(*email)
		at := strings.LastIndexByte(*email, '@')
		if n := len([]rune(*email)); n > maxEmailLen || at < 1 || at == len(*email)-1 {
			return invalid("email", "must be an email address of at most %d characters", maxEmailLen)
		}
	}
	return nil
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// checkDueDate checks a YYYY-MM-DD date.
func checkDueDate(d string) error {
	if t, err := time.Parse(time.DateOnly, d); err != nil || t.Format(time.DateOnly) != d {
		return invalid("due_date", "must be a date as YYYY-MM-DD")
	}
	return nil
}

// lineItems checks items and computes their amounts and subtotal, refusing
// any amount or sum that does not fit in 63 bits.
func lineItems(items []NewLineItem) ([]LineItem, int64, error) {
	if len(items) < 1 || len(items) > MaxLineItems {
		return nil, 0, invalid("line_items", "must hold 1 to %d items", MaxLineItems)
	}
	out := make([]LineItem, len(items))
	var subtotal int64
	for i, it := range items {
		field := fmt.Sprintf("line_items[%d]", i)
		desc := strings.TrimSpace(it.Description)
		if n := len([]rune(desc)); n < 1 || n > maxDescLen {
			return nil, 0, invalid(field+".description", "must be 1 to %d characters", maxDescLen)
		}
		if it.Quantity < 1 {
			return nil, 0, invalid(field+".quantity", "must be at least 1")
		}
		if it.UnitPriceCents < 0 {
			return nil, 0, invalid(field+".unit_price_cents", "must be at least 0")
		}
		hi, lo := bits.Mul64(uint64(it.Quantity), uint64(it.UnitPriceCents))
		if hi != 0 || lo > math.MaxInt64 || int64(lo) > math.MaxInt64-subtotal {
			return nil, 0, invalid(field, "amount too large")
		}
		out[i] = LineItem{Description: desc, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents, AmountCents: int64(lo)}
		subtotal += int64(lo)
	}
	return out, subtotal, nil
}

// checkedInvoice is a NewInvoice checked and completed: its customer ID in
// canonical form, its currency defaulted, its amounts computed.
type checkedInvoice struct {
	NewInvoice
	items    []LineItem
	subtotal int64
}

func checkInvoice(in NewInvoice) (checkedInvoice, error) {
	id, ok := canonicalID(in.CustomerID)
	if !ok {
		return checkedInvoice{}, unknownCustomer()
	}
	in.CustomerID = id
	if in.Currency == "" {
		in.Currency = DefaultCurrency
	}
	if !currencyCode.MatchString(in.Currency) {
		return checkedInvoice{}, invalid("currency", "must be an ISO 4217 code such as USD")
	}
	if err := checkDueDate(in.DueDate); err != nil {
		return checkedInvoice{}, err
	}
	items, subtotal, err := lineItems(in.LineItems)
	if err != nil {
		return checkedInvoice{}, err
	}
	return checkedInvoice{NewInvoice: in, items: items, subtotal: subtotal}, nil
}

// total is the amount due for a subtotal: Invoicer charges no tax.
func total(subtotal int64) int64 { return subtotal }

// itemColumns splits items into the parallel arrays the PostgreSQL
// statements take.
func itemColumns(items []LineItem) (desc []string, qty, price, amount []int64) {
	for _, it := range items {
		desc = append(desc, it.Description)
		qty = append(qty, it.Quantity)
		price = append(price, it.UnitPriceCents)
		amount = append(amount, it.AmountCents)
	}
	return desc, qty, price, amount
}
