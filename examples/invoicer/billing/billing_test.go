package billing

import (
	"errors"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
)

func TestFormatNumber(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{1: "INV-0001", 42: "INV-0042", 9999: "INV-9999", 10000: "INV-10000"} {
		if got := FormatNumber(n); got != want {
			t.Errorf("FormatNumber(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPageLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p             Page
		limit, offset int32
	}{
		{Page{}, DefaultLimit, 0},
		{Page{Limit: -1, Offset: -5}, DefaultLimit, 0},
		{Page{Limit: 7, Offset: 3}, 7, 3},
		{Page{Limit: MaxLimit + 1}, MaxLimit, 0},
	} {
		if l, o := tc.p.limits(); l != tc.limit || o != tc.offset {
			t.Errorf("%+v: limit %d offset %d, want %d %d", tc.p, l, o, tc.limit, tc.offset)
		}
	}
}

func TestErrorsMatch(t *testing.T) {
	t.Parallel()
	for _, err := range []error{ErrEmailTaken, ErrCustomerHasInvoices, &StateError{Status: StatusPaid, Action: "void"}} {
		if !errors.Is(err, ErrConflict) {
			t.Errorf("%v does not match ErrConflict", err)
		}
	}
	if errors.Is(ErrCustomerNotFound, ErrConflict) || errors.Is(unknownCustomer(), ErrInvalid) {
		t.Error("not-found errors match more than not found")
	}
}

func TestDemoData(t *testing.T) {
	t.Parallel()
	if len(Demo) != len(DemoTenants) {
		t.Fatalf("%d demo data sets for %d demo tenants", len(Demo), len(DemoTenants))
	}
	for _, tn := range DemoTenants {
		tn.Status = tenancy.StatusActive // as the store sets it on Create
		if err := tn.Validate(); err != nil {
			t.Errorf("demo tenant %s: %v", tn.Identifier, err)
		}
		d, ok := Demo[tn.ID]
		if !ok || len(d.Customers) == 0 || len(d.Invoices) == 0 {
			t.Errorf("demo tenant %s has no demo data", tn.ID)
		}
		emails := map[string]bool{}
		for _, c := range d.Customers {
			emails[c.Email] = true
		}
		for _, in := range d.Invoices {
			if !emails[in.CustomerEmail] {
				t.Errorf("demo invoice of %s names unknown customer %s", tn.ID, in.CustomerEmail)
			}
		}
	}
	if name, err := isolation.Name(isolation.DefaultPrefix, DemoTenants[0].Identifier); err != nil || name != "tenant_acme_corp" {
		t.Errorf("acme-corp's schema is %q, %v", name, err)
	}
}
