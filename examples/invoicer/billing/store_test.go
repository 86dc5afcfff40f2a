package billing

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/google/uuid"
)

// Store conformance: PostgreSQL (a schema per tenant, used as an
// application role that owns nothing) and SQLite (a file per tenant) must
// behave alike. Each subtest takes fresh tenants, so they run in parallel.

// fixture is a Store and a way to get fresh, migrated tenants for it.
type fixture struct {
	store     Store
	newTenant func(t *testing.T) *tenancy.Tenant
}

func mustCustomer(t *testing.T, s Store, tn *tenancy.Tenant, name, email string) Customer {
	t.Helper()
	c, err := s.CreateCustomer(t.Context(), tn, NewCustomer{Name: name, Email: email})
	if err != nil {
		t.Fatalf("create customer %s: %v", email, err)
	}
	return c
}

// oneItem is an invoice of one line item of the given price.
func oneItem(customerID string, cents int64) NewInvoice {
	return NewInvoice{CustomerID: customerID, DueDate: "2026-06-30", LineItems: []NewLineItem{{Description: "Widget", Quantity: 1, UnitPriceCents: cents}}}
}

func mustInvoice(t *testing.T, s Store, tn *tenancy.Tenant, in NewInvoice) Invoice {
	t.Helper()
	inv, err := s.CreateInvoice(t.Context(), tn, in)
	if err != nil {
		t.Fatalf("create invoice: %v", err)
	}
	return inv
}

// wantField fails unless err is a *FieldError for field matching target.
func wantField(t *testing.T, err error, field string, target error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, target) {
		t.Fatalf("error %v, want a field error for %s matching %v", err, field, target)
	}
}

// wantState fails unless err is a *StateError with the given status and
// action, matching ErrConflict.
func wantState(t *testing.T, err error, status Status, action string) {
	t.Helper()
	var se *StateError
	if !errors.As(err, &se) || se.Status != status || se.Action != action || !errors.Is(err, ErrConflict) {
		t.Fatalf("error %v, want a conflict: %s invoice, cannot %s", err, status, action)
	}
}

func testStore(t *testing.T, fx fixture) {
	s := fx.store

	t.Run("Customers", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tn := fx.newTenant(t)
		if list, err := s.ListCustomers(ctx, tn, Page{}); err != nil || len(list) != 0 {
			t.Fatalf("new tenant lists %v, %v", list, err)
		}
		bob, err := s.CreateCustomer(ctx, tn, NewCustomer{Name: "  Bob Smith ", Email: "bob@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if u, err := uuid.Parse(bob.ID); err != nil || u.String() != bob.ID {
			t.Fatalf("id %q is not a canonical UUID", bob.ID)
		}
		if bob.Name != "Bob Smith" || bob.Email != "bob@example.com" || bob.CreatedAt.IsZero() || !bob.UpdatedAt.Equal(bob.CreatedAt) {
			t.Fatalf("created %+v", bob)
		}
		if got, err := s.GetCustomer(ctx, tn, strings.ToUpper(bob.ID)); err != nil || got != bob {
			t.Fatalf("get = %+v, %v; want %+v", got, err, bob)
		}
		alice := mustCustomer(t, s, tn, "Alice Jones", "alice@example.com")
		carol := mustCustomer(t, s, tn, "Carol White", "carol@example.com")

		for _, tc := range []struct {
			p    Page
			want []Customer
		}{
			{Page{}, []Customer{alice, bob, carol}},
			{Page{Limit: 2}, []Customer{alice, bob}},
			{Page{Limit: 2, Offset: 2}, []Customer{carol}},
			{Page{Limit: 2, Offset: 3}, []Customer{}},
		} {
			got, err := s.ListCustomers(ctx, tn, tc.p)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("list %+v = %+v, %v; want %+v", tc.p, got, err, tc.want)
			}
		}

		name, email := "Robert Smith", "robert@example.com"
		u, err := s.UpdateCustomer(ctx, tn, bob.ID, CustomerPatch{Name: &name})
		if err != nil || u.Name != name || u.Email != bob.Email || u.UpdatedAt.Before(bob.UpdatedAt) {
			t.Fatalf("update name = %+v, %v", u, err)
		}
		u, err = s.UpdateCustomer(ctx, tn, bob.ID, CustomerPatch{Email: &email})
		if err != nil || u.Name != name || u.Email != email {
			t.Fatalf("update email = %+v, %v", u, err)
		}
		if same, err := s.UpdateCustomer(ctx, tn, bob.ID, CustomerPatch{}); err != nil || same != u {
			t.Fatalf("empty patch = %+v, %v; want %+v", same, err, u)
		}
		empty := " "
		_, err = s.UpdateCustomer(ctx, tn, bob.ID, CustomerPatch{Name: &empty})
		wantField(t, err, "name", ErrInvalid)

		if err := s.DeleteCustomer(ctx, tn, alice.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetCustomer(ctx, tn, alice.ID); !errors.Is(err, ErrCustomerNotFound) {
			t.Fatalf("get deleted: %v", err)
		}
		if err := s.DeleteCustomer(ctx, tn, alice.ID); !errors.Is(err, ErrCustomerNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
	})

	t.Run("EmailUniquePerTenant", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tn, other := fx.newTenant(t), fx.newTenant(t)
		mustCustomer(t, s, tn, "Bob", "bob@example.com")
		_, err := s.CreateCustomer(ctx, tn, NewCustomer{Name: "Bob again", Email: "Bob@Example.COM"})
		if !errors.Is(err, ErrEmailTaken) || !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate email: %v, want ErrEmailTaken", err)
		}
		alice := mustCustomer(t, s, tn, "Alice", "alice@example.com")
		taken := "BOB@example.com"
		if _, err := s.UpdateCustomer(ctx, tn, alice.ID, CustomerPatch{Email: &taken}); !errors.Is(err, ErrEmailTaken) {
			t.Fatalf("update to a taken email: %v", err)
		}
		mustCustomer(t, s, other, "Bob elsewhere", "bob@example.com")
		if list, _ := s.ListCustomers(ctx, tn, Page{}); len(list) != 2 {
			t.Fatalf("tenant has %d customers, want 2", len(list))
		}
	})

	t.Run("CustomerWithInvoicesIsKept", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tn := fx.newTenant(t)
		c := mustCustomer(t, s, tn, "Bob", "bob@example.com")
		mustInvoice(t, s, tn, oneItem(c.ID, 100))
		err := s.DeleteCustomer(ctx, tn, c.ID)
		if !errors.Is(err, ErrCustomerHasInvoices) || !errors.Is(err, ErrConflict) {
			t.Fatalf("delete customer with invoices: %v", err)
		}
		if _, err := s.GetCustomer(ctx, tn, c.ID); err != nil {
			t.Fatalf("customer gone: %v", err)
		}
	})

	t.Run("CreateAndGetInvoice", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tn := fx.newTenant(t)
		c := mustCustomer(t, s, tn, "Bob", "bob@example.com")
		inv := mustInvoice(t, s, tn, NewInvoice{CustomerID: c.ID, DueDate: "2026-01-31", LineItems: []NewLineItem{
			{Description: "Anvil", Quantity: 2, UnitPriceCents: 12_500},
			{Description: " Delivery ", Quantity: 1, UnitPriceCents: 4_999},
			{Description: "Sample", Quantity: 3, UnitPriceCents: 0},
		}})
		wantItems := []LineItem{
			{Description: "Anvil", Quantity: 2, UnitPriceCents: 12_500, AmountCents: 25_000},
			{Description: "Delivery", Quantity: 1, UnitPriceCents: 4_999, AmountCents: 4_999},
			{Description: "Sample", Quantity: 3, UnitPriceCents: 0, AmountCents: 0},
		}
		if inv.Number != "INV-0001" || inv.Status != StatusDraft || inv.Currency != "USD" || inv.DueDate != "2026-01-31" ||
			inv.CustomerID != c.ID || inv.SubtotalCents != 29_999 || inv.TotalCents != 29_999 || !reflect.DeepEqual(inv.LineItems, wantItems) ||
			inv.IssuedAt != nil || inv.PaidAt != nil || inv.VoidedAt != nil || inv.CreatedAt.IsZero() {
			t.Fatalf("created %+v", inv)
		}
		got, err := s.GetInvoice(ctx, tn, inv.ID)
		if err != nil || !reflect.DeepEqual(got, inv) {
			t.Fatalf("get = %+v, %v; want %+v", got, err, inv)
		}
		eur := mustInvoice(t, s, tn, NewInvoice{CustomerID: strings.ToUpper(c.ID), Currency: "EUR", DueDate: "2026-02-28", LineItems: []NewLineItem{{Description: "x", Quantity: 1, UnitPriceCents: 1}}})
		if eur.Number != "INV-0002" || eur.Currency != "EUR" || eur.CustomerID != c.ID {
			t.Fatalf("second invoice %+v", eur)
		}
	})

	t.Run("InvalidInvoices", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tn := fx.newTenant(t)
		c := mustCustomer(t, s, tn, "Bob", "bob@example.com")
		item := NewLineItem{Description: "x", Quantity: 1, UnitPriceCents: 1}
		for _, tc := range []struct {
			name  string
			edit  func(*NewInvoice)
			field string
		}{
			{"lower-case currency", func(in *NewInvoice) { in.Currency = "usd" }, "currency"},
			{"long currency", func(in *NewInvoice) { in.Currency = "USDX" }, "currency"},
			{"no due date", func(in *NewInvoice) { in.DueDate = "" }, "due_date"},
			{"bad due date", func(in *NewInvoice) { in.DueDate = "2026-02-30" }, "due_date"},
			{"due date with time", func(in *NewInvoice) { in.DueDate = "2026-02-01T00:00:00Z" }, "due_date"},
			{"no items", func(in *NewInvoice) { in.LineItems = nil }, "line_items"},
			{"too many items", func(in *NewInvoice) { in.LineItems = slices.Repeat([]NewLineItem{item}, MaxLineItems+1) }, "line_items"},
			{"zero quantity", func(in *NewInvoice) { in.LineItems = []NewLineItem{item, {Description: "y", UnitPriceCents: 1}} }, "line_items[1].quantity"},
			{"negative price", func(in *NewInvoice) {
				in.LineItems = []NewLineItem{{Description: "y", Quantity: 1, UnitPriceCents: -1}}
			}, "line_items[0].unit_price_cents"},
			{"empty description", func(in *NewInvoice) { in.LineItems = []NewLineItem{{Description: " ", Quantity: 1}} }, "line_items[0].description"},
			{"amount overflows", func(in *NewInvoice) {
				in.LineItems = []NewLineItem{{Description: "y", Quantity: 3, UnitPriceCents: math.MaxInt64 / 2}}
			}, "line_items[0]"},
			{"sum overflows", func(in *NewInvoice) {
				in.LineItems = []NewLineItem{{Description: "y", Quantity: 1, UnitPriceCents: math.MaxInt64}, item}
			}, "line_items[1]"},
		} {
			in := NewInvoice{CustomerID: c.ID, DueDate: "2026-01-31", LineItems: []NewLineItem{item}}
			tc.edit(&in)
			_, err := s.CreateInvoice(ctx, tn, in)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v, want a field error for %s", tc.name, err, tc.field)
			}
		}
		// Nothing was stored and no number was used.
		if list, err := s.ListInvoices(ctx, tn, InvoiceFilter{}); err != nil || len(list) != 0 {
			t.Fatalf("invoices after refusals: %v, %v", list, err)
		}
		if inv := mustInvoice(t, s, tn, oneItem(c.ID, 1)); inv.Number != "INV-0001" {
			t.Fatalf("first stored invoice is %s", inv.Number)
		}
	})

	t.Run("UnknownCustomer", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tn := fx.newTenant(t)
		c := mustCustomer(t, s, tn, "Bob", "bob@example.com")
		mustInvoice(t, s, tn, oneItem(c.ID, 1))
		for _, id := range []string{uuid.NewString(), "", "nope", "' OR 1=1 --"} {
			_, err := s.CreateInvoice(ctx, tn, oneItem(id, 1))
			wantField(t, err, "customer_id", ErrCustomerNotFound)
		}
		// The refused creates gave their numbers back.
		if inv := mustInvoice(t, s, tn, oneItem(c.ID, 1)); inv.Number != "INV-0002" {
			t.Fatalf("next invoice is %s, want INV-0002", inv.Number)
		}
	})

	t.Run("Transitions", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tn := fx.newTenant(t)
		c := mustCustomer(t, s, tn, "Bob", "bob@example.com")
		newDraft := func() Invoice { return mustInvoice(t, s, tn, oneItem(c.ID, 500)) }
		do := func(id string, a Action) Invoice {
			t.Helper()
			inv, err := s.Transition(ctx, tn, id, a)
			if err != nil {
				t.Fatalf("%s: %v", a, err)
			}
			return inv
		}

		inv := newDraft()
		_, err := s.Transition(ctx, tn, inv.ID, ActionPay)
		wantState(t, err, StatusDraft, "pay")
		issued := do(inv.ID, ActionIssue)
		if issued.Status != StatusIssued || issued.IssuedAt == nil || issued.PaidAt != nil || len(issued.LineItems) != 1 {
			t.Fatalf("issued %+v", issued)
		}
		_, err = s.Transition(ctx, tn, inv.ID, ActionIssue)
		wantState(t, err, StatusIssued, "issue")
		paid := do(inv.ID, ActionPay)
		if paid.Status != StatusPaid || paid.PaidAt == nil || !paid.IssuedAt.Equal(*issued.IssuedAt) {
			t.Fatalf("paid %+v", paid)
		}
		for _, a := range []Action{ActionIssue, ActionPay, ActionVoid} {
			_, err = s.Transition(ctx, tn, inv.ID, a)
			wantState(t, err, StatusPaid, string(a))
		}

		if v := do(newDraft().ID, ActionVoid); v.Status != StatusVoid || v.VoidedAt == nil || v.IssuedAt != nil {
			t.Fatalf("voided draft %+v", v)
		}
		v := newDraft()
		do(v.ID, ActionIssue)
		if v := do(v.ID, ActionVoid); v.Status != StatusVoid || v.VoidedAt == nil {
			t.Fatalf("voided issued %+v", v)
		}
		for _, a := range []Action{ActionIssue, ActionPay, ActionVoid} {
			_, err = s.Transition(ctx, tn, v.ID, a)
			wantState(t, err, StatusVoid, string(a))
		}
		if _, err := s.Transition(ctx, tn, newDraft().ID, "reopen"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("unknown action: %v", err)
		}
		if _, err := s.Transition(ctx, tn, uuid.NewString(), ActionIssue); !errors.Is(err, ErrInvoiceNotFound) {
			t.Fatalf("unknown invoice: %v", err)
		}
	})

	t.Run("UpdateDraft", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tn := fx.newTenant(t)
		c := mustCustomer(t, s, tn, "Bob", "bob@example.com")
		inv := mustInvoice(t, s, tn, oneItem(c.ID, 500))
		due := "2026-12-31"
		u, err := s.UpdateDraft(ctx, tn, inv.ID, DraftPatch{DueDate: &due})
		if err != nil || u.DueDate != due || !reflect.DeepEqual(u.LineItems, inv.LineItems) || u.TotalCents != 500 || u.Number != inv.Number {
			t.Fatalf("update due date = %+v, %v", u, err)
		}
		u, err = s.UpdateDraft(ctx, tn, inv.ID, DraftPatch{LineItems: []NewLineItem{
			{Description: "A", Quantity: 2, UnitPriceCents: 300},
			{Description: "B", Quantity: 1, UnitPriceCents: 50},
		}})
		want := []LineItem{{"A", 2, 300, 600}, {"B", 1, 50, 50}}
		if err != nil || u.DueDate != due || !reflect.DeepEqual(u.LineItems, want) || u.SubtotalCents != 650 || u.TotalCents != 650 {
			t.Fatalf("update items = %+v, %v", u, err)
		}
		if got, err := s.GetInvoice(ctx, tn, inv.ID); err != nil || !reflect.DeepEqual(got, u) {
			t.Fatalf("stored %+v, %v; want %+v", got, err, u)
		}
		bad := "31/12/2026"
		_, err = s.UpdateDraft(ctx, tn, inv.ID, DraftPatch{DueDate: &bad})
		wantField(t, err, "due_date", ErrInvalid)
		_, err = s.UpdateDraft(ctx, tn, inv.ID, DraftPatch{LineItems: []NewLineItem{}})
		wantField(t, err, "line_items", ErrInvalid)

		if _, err := s.Transition(ctx, tn, inv.ID, ActionIssue); err != nil {
			t.Fatal(err)
		}
		_, err = s.UpdateDraft(ctx, tn, inv.ID, DraftPatch{DueDate: &due})
		wantState(t, err, StatusIssued, "edit")
		_, err = s.UpdateDraft(ctx, tn, inv.ID, DraftPatch{LineItems: []NewLineItem{{Description: "C", Quantity: 1}}})
		wantState(t, err, StatusIssued, "edit")
		if got, _ := s.GetInvoice(ctx, tn, inv.ID); !reflect.DeepEqual(got.LineItems, want) {
			t.Fatalf("issued invoice's items changed: %+v", got.LineItems)
		}
		if _, err := s.UpdateDraft(ctx, tn, uuid.NewString(), DraftPatch{DueDate: &due}); !errors.Is(err, ErrInvoiceNotFound) {
			t.Fatalf("unknown invoice: %v", err)
		}
	})

	t.Run("ListInvoices", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tn := fx.newTenant(t)
		c := mustCustomer(t, s, tn, "Bob", "bob@example.com")
		var all []Invoice
		for i := range 5 {
			all = append(all, mustInvoice(t, s, tn, oneItem(c.ID, int64(i))))
		}
		for _, i := range []int{1, 3} {
			if _, err := s.Transition(ctx, tn, all[i].ID, ActionIssue); err != nil {
				t.Fatal(err)
			}
		}
		numbers := func(f InvoiceFilter) []string {
			t.Helper()
			list, err := s.ListInvoices(ctx, tn, f)
			if err != nil {
				t.Fatalf("list %+v: %v", f, err)
			}
			out := []string{}
			for _, inv := range list {
				if inv.LineItems != nil || (f.Status != "" && inv.Status != f.Status) {
					t.Fatalf("list %+v returned %+v", f, inv)
				}
				out = append(out, inv.Number)
			}
			return out
		}
		for _, tc := range []struct {
			f    InvoiceFilter
			want []string
		}{
			{InvoiceFilter{}, []string{"INV-0005", "INV-0004", "INV-0003", "INV-0002", "INV-0001"}},
			{InvoiceFilter{Page: Page{Limit: 2, Offset: 1}}, []string{"INV-0004", "INV-0003"}},
			{InvoiceFilter{Status: StatusIssued}, []string{"INV-0004", "INV-0002"}},
			{InvoiceFilter{Status: StatusDraft, Page: Page{Limit: 2}}, []string{"INV-0005", "INV-0003"}},
			{InvoiceFilter{Status: StatusPaid}, []string{}},
		} {
			if got := numbers(tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("list %+v = %v, want %v", tc.f, got, tc.want)
			}
		}
		if _, err := s.ListInvoices(ctx, tn, InvoiceFilter{Status: "overdue"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("unknown status: %v", err)
		}
	})

	t.Run("OtherTenantsIDsAreNotFound", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		owner, other := fx.newTenant(t), fx.newTenant(t)
		c := mustCustomer(t, s, owner, "Owner's customer", "bob@example.com")
		inv := mustInvoice(t, s, owner, oneItem(c.ID, 100))
		oc := mustCustomer(t, s, other, "Other's customer", "eve@example.com")

		if _, err := s.GetCustomer(ctx, other, c.ID); !errors.Is(err, ErrCustomerNotFound) {
			t.Errorf("get customer: %v", err)
		}
		name := "stolen"
		if _, err := s.UpdateCustomer(ctx, other, c.ID, CustomerPatch{Name: &name}); !errors.Is(err, ErrCustomerNotFound) {
			t.Errorf("update customer: %v", err)
		}
		if err := s.DeleteCustomer(ctx, other, c.ID); !errors.Is(err, ErrCustomerNotFound) {
			t.Errorf("delete customer: %v", err)
		}
		// An invoice for the owner's customer, created as the other tenant,
		// is refused exactly like one for a customer that exists nowhere.
		_, errCross := s.CreateInvoice(ctx, other, oneItem(c.ID, 1))
		_, errNone := s.CreateInvoice(ctx, other, oneItem(uuid.NewString(), 1))
		wantField(t, errCross, "customer_id", ErrCustomerNotFound)
		if errCross.Error() != errNone.Error() {
			t.Errorf("cross-tenant customer %q, unknown customer %q: they differ", errCross, errNone)
		}
		if _, err := s.GetInvoice(ctx, other, inv.ID); !errors.Is(err, ErrInvoiceNotFound) {
			t.Errorf("get invoice: %v", err)
		}
		due := "2030-01-01"
		if _, err := s.UpdateDraft(ctx, other, inv.ID, DraftPatch{DueDate: &due, LineItems: []NewLineItem{{Description: "x", Quantity: 1}}}); !errors.Is(err, ErrInvoiceNotFound) {
			t.Errorf("update invoice: %v", err)
		}
		for _, a := range []Action{ActionIssue, ActionPay, ActionVoid} {
			if _, err := s.Transition(ctx, other, inv.ID, a); !errors.Is(err, ErrInvoiceNotFound) {
				t.Errorf("%s invoice: %v", a, err)
			}
		}

		// The owner's data is untouched, and each tenant lists only its own.
		if got, err := s.GetCustomer(ctx, owner, c.ID); err != nil || got != c {
			t.Errorf("owner's customer %+v, %v; want %+v", got, err, c)
		}
		if got, err := s.GetInvoice(ctx, owner, inv.ID); err != nil || !reflect.DeepEqual(got, inv) {
			t.Errorf("owner's invoice %+v, %v; want %+v", got, err, inv)
		}
		if list, err := s.ListCustomers(ctx, other, Page{}); err != nil || len(list) != 1 || list[0] != oc {
			t.Errorf("other lists customers %+v, %v", list, err)
		}
		if list, err := s.ListInvoices(ctx, other, InvoiceFilter{}); err != nil || len(list) != 0 {
			t.Errorf("other lists invoices %+v, %v", list, err)
		}
		// The other tenant's first invoice is its own INV-0001.
		if oi := mustInvoice(t, s, other, oneItem(oc.ID, 1)); oi.Number != "INV-0001" {
			t.Errorf("other's first invoice is %s", oi.Number)
		}
	})

	t.Run("MalformedIDs", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tn := fx.newTenant(t)
		c := mustCustomer(t, s, tn, "Bob", "bob@example.com")
		inv := mustInvoice(t, s, tn, oneItem(c.ID, 1))
		name := "x"
		for _, id := range []string{"", "xyz", "' OR 1=1 --", "{" + c.ID + "}", strings.ReplaceAll(c.ID, "-", ""), c.ID + "\n"} {
			if _, err := s.GetCustomer(ctx, tn, id); !errors.Is(err, ErrCustomerNotFound) {
				t.Errorf("get customer %q: %v", id, err)
			}
			if _, err := s.UpdateCustomer(ctx, tn, id, CustomerPatch{Name: &name}); !errors.Is(err, ErrCustomerNotFound) {
				t.Errorf("update customer %q: %v", id, err)
			}
			if err := s.DeleteCustomer(ctx, tn, id); !errors.Is(err, ErrCustomerNotFound) {
				t.Errorf("delete customer %q: %v", id, err)
			}
			if _, err := s.GetInvoice(ctx, tn, id); !errors.Is(err, ErrInvoiceNotFound) {
				t.Errorf("get invoice %q: %v", id, err)
			}
			if _, err := s.Transition(ctx, tn, id, ActionVoid); !errors.Is(err, ErrInvoiceNotFound) {
				t.Errorf("void invoice %q: %v", id, err)
			}
		}
		if got, err := s.GetInvoice(ctx, tn, inv.ID); err != nil || got.Status != StatusDraft {
			t.Fatalf("invoice changed: %+v, %v", got, err)
		}
	})

	t.Run("ConcurrentNumbering", func(t *testing.T) {
		t.Parallel()
		testConcurrentNumbering(t, fx)
	})

	t.Run("Demo", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		tn := fx.newTenant(t)
		d := Demo[DemoTenants[0].ID]
		for range 2 { // the second load changes nothing
			if err := LoadDemo(ctx, s, tn, d); err != nil {
				t.Fatal(err)
			}
		}
		customers, _ := s.ListCustomers(ctx, tn, Page{})
		invoices, _ := s.ListInvoices(ctx, tn, InvoiceFilter{})
		if len(customers) != len(d.Customers) || len(invoices) != len(d.Invoices) {
			t.Fatalf("demo loaded %d customers and %d invoices", len(customers), len(invoices))
		}
		// Highest number first: the third invoice is a draft, the first paid.
		if invoices[0].Status != StatusDraft || invoices[2].Status != StatusPaid || invoices[2].Number != "INV-0001" || invoices[2].TotalCents != 29_999 {
			t.Fatalf("demo invoices %+v", invoices)
		}
	})
}

// testConcurrentNumbering creates 20 invoices at once in each of two
// tenants: each tenant's numbers are exactly INV-0001 to INV-0020.
func testConcurrentNumbering(t *testing.T, fx fixture) {
	const n = 20
	ctx := t.Context()
	tenants := []*tenancy.Tenant{fx.newTenant(t), fx.newTenant(t)}
	customers := make([]string, len(tenants))
	for i, tn := range tenants {
		customers[i] = mustCustomer(t, fx.store, tn, "Bob", "bob@example.com").ID
	}
	numbers := make([][]string, len(tenants))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	errs := make(chan error, n*len(tenants))
	for i, tn := range tenants {
		for range n {
			wg.Go(func() {
				inv, err := fx.store.CreateInvoice(ctx, tn, oneItem(customers[i], 100))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				numbers[i] = append(numbers[i], inv.Number)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("INV-%04d", i+1)
	}
	for i, tn := range tenants {
		slices.Sort(numbers[i])
		if !slices.Equal(numbers[i], want) {
			t.Errorf("%s numbered %v, want %v", tn.Identifier, numbers[i], want)
		}
		list, err := fx.store.ListInvoices(ctx, tn, InvoiceFilter{Page: Page{Limit: MaxLimit}})
		if err != nil || len(list) != n {
			t.Errorf("%s stores %d invoices, %v; want %d", tn.Identifier, len(list), err, n)
		}
	}
}
