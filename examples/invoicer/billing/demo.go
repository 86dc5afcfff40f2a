package billing

import (
	"context"
	"fmt"

	"github.com/go-tenancy/tenancy"
)

// DemoTenants are Invoicer's demo tenants: acme-corp (also reachable as
// acme.<base domain>) and globex. Their schemas are tenant_acme_corp and
// tenant_globex.
var DemoTenants = []tenancy.Tenant{
	{ID: "tenant-acme-001", Identifier: "acme-corp", Name: "Acme Corp", Aliases: []string{"acme"}},
	{ID: "tenant-globex-001", Identifier: "globex", Name: "Globex Corporation"},
}

// DemoData is one tenant's demo customers and invoices.
type DemoData struct {
	Customers []NewCustomer
	Invoices  []DemoInvoice
}

// DemoInvoice is a demo invoice. It names its customer by email, since IDs
// are made when the data is loaded, and lists the actions applied after it
// is created.
type DemoInvoice struct {
	CustomerEmail string
	Invoice       NewInvoice
	Actions       []Action
}

// Demo holds the demo data of DemoTenants, by tenant ID.
var Demo = map[string]DemoData{
	"tenant-acme-001": {
		Customers: []NewCustomer{
			{Name: "Bob Smith", Email: "bob@example.com"},
			{Name: "Initech", Email: "billing@initech.example"},
		},
		Invoices: []DemoInvoice{
			{
				CustomerEmail: "bob@example.com",
				Invoice: NewInvoice{DueDate: "2026-01-31", LineItems: []NewLineItem{
					{Description: "Anvil, heavy duty", Quantity: 2, UnitPriceCents: 12_500},
					{Description: "Delivery by rocket", Quantity: 1, UnitPriceCents: 4_999},
				}},
				Actions: []Action{ActionIssue, ActionPay},
			},
			{
				CustomerEmail: "billing@initech.example",
				Invoice: NewInvoice{DueDate: "2026-02-28", LineItems: []NewLineItem{
					{Description: "Consulting, per hour", Quantity: 10, UnitPriceCents: 15_000},
				}},
				Actions: []Action{ActionIssue},
			},
			{
				CustomerEmail: "bob@example.com",
				Invoice: NewInvoice{DueDate: "2026-03-31", LineItems: []NewLineItem{
					{Description: "Giant rubber band", Quantity: 3, UnitPriceCents: 1_999},
				}},
			},
		},
	},
	"tenant-globex-001": {
		Customers: []NewCustomer{
			{Name: "Hank Scorpio", Email: "hank@globex.example"},
		},
		Invoices: []DemoInvoice{
			{
				CustomerEmail: "hank@globex.example",
				Invoice: NewInvoice{Currency: "EUR", DueDate: "2026-01-15", LineItems: []NewLineItem{
					{Description: "Doomsday device maintenance", Quantity: 1, UnitPriceCents: 1_000_000},
				}},
				Actions: []Action{ActionIssue},
			},
		},
	},
}

// LoadDemo loads d into t's data. A tenant that has customers already is
// left alone, so it may run at every start; it is not safe to run twice at
// once for one tenant.
func LoadDemo(ctx context.Context, s Store, t *tenancy.Tenant, d DemoData) error {
	existing, err := s.ListCustomers(ctx, t, Page{Limit: 1})
	if err != nil {
		return fmt.Errorf("load demo data: %w", err)
	}
	if len(existing) > 0 {
		return nil
	}
	ids := make(map[string]string, len(d.Customers))
	for _, c := range d.Customers {
		created, err := s.CreateCustomer(ctx, t, c)
		if err != nil {
			return fmt.Errorf("load demo customer %s: %w", c.Email, err)
		}
		ids[c.Email] = created.ID
	}
	for i, di := range d.Invoices {
		in := di.Invoice
		in.CustomerID = ids[di.CustomerEmail]
		inv, err := s.CreateInvoice(ctx, t, in)
		if err != nil {
			return fmt.Errorf("load demo invoice %d: %w", i+1, err)
		}
		for _, a := range di.Actions {
			if _, err := s.Transition(ctx, t, inv.ID, a); err != nil {
				return fmt.Errorf("load demo invoice %s: %w", inv.Number, err)
			}
		}
	}
	return nil
}
