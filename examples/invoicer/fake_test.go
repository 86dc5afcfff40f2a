package main

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/invoicer/billing"
	"github.com/google/uuid"
)

// fakeBilling is an in-memory billing.Store for the handler tests: the
// behaviour the HTTP layer relies on (tenants apart, email conflicts,
// numbering, transitions, the errors' types), without the stores'
// validation, which the handler must do first.
type fakeBilling struct {
	mu      sync.Mutex
	tenants map[string]*fakeTenant // by tenant ID
	clock   time.Time
	err     error                   // when set, every call fails: a broken database
	pages   []billing.Page          // the pages ListCustomers was asked for
	filters []billing.InvoiceFilter // the filters ListInvoices was asked for
}

type fakeTenant struct {
	customers []billing.Customer
	invoices  []billing.Invoice
	next      int64
}

var _ billing.Store = (*fakeBilling)(nil)

func newFakeBilling() *fakeBilling {
	return &fakeBilling{tenants: map[string]*fakeTenant{}, clock: time.Now().UTC().Truncate(time.Microsecond)}
}

func (f *fakeBilling) lock(t *tenancy.Tenant) (*fakeTenant, func(), error) {
	f.mu.Lock()
	if f.err != nil {
		f.mu.Unlock()
		return nil, nil, f.err
	}
	ft := f.tenants[t.ID]
	if ft == nil {
		ft = &fakeTenant{next: 1}
		f.tenants[t.ID] = ft
	}
	f.clock = f.clock.Add(time.Millisecond)
	return ft, f.mu.Unlock, nil
}

func (ft *fakeTenant) customer(id string) int {
	return slices.IndexFunc(ft.customers, func(c billing.Customer) bool { return c.ID == id })
}

func (ft *fakeTenant) invoice(id string) int {
	return slices.IndexFunc(ft.invoices, func(i billing.Invoice) bool { return i.ID == id })
}

func (ft *fakeTenant) emailTaken(email, except string) bool {
	return slices.ContainsFunc(ft.customers, func(c billing.Customer) bool {
		return c.ID != except && strings.EqualFold(c.Email, email)
	})
}

func (f *fakeBilling) CreateCustomer(_ context.Context, t *tenancy.Tenant, in billing.NewCustomer) (billing.Customer, error) {
	ft, unlock, err := f.lock(t)
	if err != nil {
		return billing.Customer{}, err
	}
	defer unlock()
	if ft.emailTaken(in.Email, "") {
		return billing.Customer{}, billing.ErrEmailTaken
	}
	c := billing.Customer{ID: uuid.NewString(), Name: strings.TrimSpace(in.Name), Email: strings.TrimSpace(in.Email), CreatedAt: f.clock, UpdatedAt: f.clock}
	ft.customers = append(ft.customers, c)
	return c, nil
}

func (f *fakeBilling) ListCustomers(_ context.Context, t *tenancy.Tenant, p billing.Page) ([]billing.Customer, error) {
	ft, unlock, err := f.lock(t)
	if err != nil {
		return nil, err
	}
	defer unlock()
	f.pages = append(f.pages, p)
	out := slices.Clone(ft.customers)
	slices.SortStableFunc(out, func(a, b billing.Customer) int { return strings.Compare(a.Name, b.Name) })
	return page(out, p), nil
}

func page[T any](items []T, p billing.Page) []T {
	if p.Offset >= len(items) {
		return nil
	}
	items = items[p.Offset:]
	limit := p.Limit
	if limit <= 0 {
		limit = billing.DefaultLimit
	}
	return items[:min(len(items), limit)]
}

func (f *fakeBilling) GetCustomer(_ context.Context, t *tenancy.Tenant, id string) (billing.Customer, error) {
	ft, unlock, err := f.lock(t)
	if err != nil {
		return billing.Customer{}, err
	}
	defer unlock()
	i := ft.customer(id)
	if i < 0 {
		return billing.Customer{}, billing.ErrCustomerNotFound
	}
	return ft.customers[i], nil
}

func (f *fakeBilling) UpdateCustomer(_ context.Context, t *tenancy.Tenant, id string, p billing.CustomerPatch) (billing.Customer, error) {
	ft, unlock, err := f.lock(t)
	if err != nil {
		return billing.Customer{}, err
	}
	defer unlock()
	i := ft.customer(id)
	if i < 0 {
		return billing.Customer{}, billing.ErrCustomerNotFound
	}
	c := &ft.customers[i]
	if p.Email != nil && ft.emailTaken(*p.Email, id) {
		return billing.Customer{}, billing.ErrEmailTaken
	}
	if p.Name != nil {
		c.Name = strings.TrimSpace(*p.Name)
	}
	if p.Email != nil {
		c.Email = strings.TrimSpace(*p.Email)
	}
	if p.Name != nil || p.Email != nil {
		c.UpdatedAt = f.clock
	}
	return *c, nil
}

func (f *fakeBilling) DeleteCustomer(_ context.Context, t *tenancy.Tenant, id string) error {
	ft, unlock, err := f.lock(t)
	if err != nil {
		return err
	}
	defer unlock()
	i := ft.customer(id)
	if i < 0 {
		return billing.ErrCustomerNotFound
	}
	if slices.ContainsFunc(ft.invoices, func(inv billing.Invoice) bool { return inv.CustomerID == id }) {
		return billing.ErrCustomerHasInvoices
	}
	ft.customers = slices.Delete(ft.customers, i, i+1)
	return nil
}

func items(in []billing.NewLineItem) ([]billing.LineItem, int64) {
	out := make([]billing.LineItem, len(in))
	var sum int64
	for i, it := range in {
		out[i] = billing.LineItem{Description: strings.TrimSpace(it.Description), Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents, AmountCents: it.Quantity * it.UnitPriceCents}
		sum += out[i].AmountCents
	}
	return out, sum
}

func (f *fakeBilling) CreateInvoice(_ context.Context, t *tenancy.Tenant, in billing.NewInvoice) (billing.Invoice, error) {
	ft, unlock, err := f.lock(t)
	if err != nil {
		return billing.Invoice{}, err
	}
	defer unlock()
	if ft.customer(in.CustomerID) < 0 {
		return billing.Invoice{}, &billing.FieldError{Field: "customer_id", Message: "no such customer", Err: billing.ErrCustomerNotFound}
	}
	if in.Currency == "" {
		in.Currency = billing.DefaultCurrency
	}
	li, sum := items(in.LineItems)
	inv := billing.Invoice{
		ID: uuid.NewString(), Number: billing.FormatNumber(ft.next), CustomerID: in.CustomerID, Status: billing.StatusDraft,
		Currency: in.Currency, DueDate: in.DueDate, SubtotalCents: sum, TotalCents: sum, LineItems: li,
		CreatedAt: f.clock, UpdatedAt: f.clock,
	}
	ft.next++
	ft.invoices = append(ft.invoices, inv)
	return inv, nil
}

func (f *fakeBilling) ListInvoices(_ context.Context, t *tenancy.Tenant, fl billing.InvoiceFilter) ([]billing.Invoice, error) {
	ft, unlock, err := f.lock(t)
	if err != nil {
		return nil, err
	}
	defer unlock()
	f.filters = append(f.filters, fl)
	var out []billing.Invoice
	for i := len(ft.invoices) - 1; i >= 0; i-- {
		inv := ft.invoices[i]
		if fl.Status == "" || inv.Status == fl.Status {
			inv.LineItems = nil
			out = append(out, inv)
		}
	}
	return page(out, fl.Page), nil
}

func (f *fakeBilling) GetInvoice(_ context.Context, t *tenancy.Tenant, id string) (billing.Invoice, error) {
	ft, unlock, err := f.lock(t)
	if err != nil {
		return billing.Invoice{}, err
	}
	defer unlock()
	i := ft.invoice(id)
	if i < 0 {
		return billing.Invoice{}, billing.ErrInvoiceNotFound
	}
	return ft.invoices[i], nil
}

func (f *fakeBilling) UpdateDraft(_ context.Context, t *tenancy.Tenant, id string, p billing.DraftPatch) (billing.Invoice, error) {
	ft, unlock, err := f.lock(t)
	if err != nil {
		return billing.Invoice{}, err
	}
	defer unlock()
	i := ft.invoice(id)
	if i < 0 {
		return billing.Invoice{}, billing.ErrInvoiceNotFound
	}
	inv := &ft.invoices[i]
	if inv.Status != billing.StatusDraft {
		return billing.Invoice{}, &billing.StateError{Status: inv.Status, Action: "edit"}
	}
	if p.DueDate != nil {
		inv.DueDate = *p.DueDate
	}
	if p.LineItems != nil {
		inv.LineItems, inv.SubtotalCents = items(p.LineItems)
		inv.TotalCents = inv.SubtotalCents
	}
	inv.UpdatedAt = f.clock
	return *inv, nil
}

func (f *fakeBilling) Transition(_ context.Context, t *tenancy.Tenant, id string, a billing.Action) (billing.Invoice, error) {
	ft, unlock, err := f.lock(t)
	if err != nil {
		return billing.Invoice{}, err
	}
	defer unlock()
	i := ft.invoice(id)
	if i < 0 {
		return billing.Invoice{}, billing.ErrInvoiceNotFound
	}
	inv := &ft.invoices[i]
	now := f.clock
	switch {
	case a == billing.ActionIssue && inv.Status == billing.StatusDraft:
		inv.Status, inv.IssuedAt = billing.StatusIssued, &now
	case a == billing.ActionPay && inv.Status == billing.StatusIssued:
		inv.Status, inv.PaidAt = billing.StatusPaid, &now
	case a == billing.ActionVoid && (inv.Status == billing.StatusDraft || inv.Status == billing.StatusIssued):
		inv.Status, inv.VoidedAt = billing.StatusVoid, &now
	default:
		return billing.Invoice{}, &billing.StateError{Status: inv.Status, Action: string(a)}
	}
	inv.UpdatedAt = now
	return *inv, nil
}
