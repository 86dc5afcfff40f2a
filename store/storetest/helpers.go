package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
)

// create stores t and fails the test on error.
func create(t *testing.T, s tenancy.Store, tn *tenancy.Tenant) *tenancy.Tenant {
	t.Helper()
	got, err := s.Create(t.Context(), tn)
	if err != nil {
		t.Fatalf("Create(%q): %v", tn.Identifier, err)
	}
	return got
}

// basic returns a minimal valid tenant with the given identifier.
func basic(identifier string) *tenancy.Tenant {
	return &tenancy.Tenant{Identifier: identifier, Name: "Tenant " + identifier}
}

// get fetches the tenant by ID and fails the test on error.
func get(t *testing.T, s tenancy.Store, id string) *tenancy.Tenant {
	t.Helper()
	got, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return got
}

// count returns Count(status) and fails the test on error.
func count(t *testing.T, s tenancy.Store, status tenancy.Status) int {
	t.Helper()
	n, err := s.Count(t.Context(), status)
	if err != nil {
		t.Fatalf("Count(%q): %v", status, err)
	}
	return n
}

// list returns List(p) and fails the test on error.
func list(t *testing.T, s tenancy.Store, p tenancy.ListParams) []*tenancy.Tenant {
	t.Helper()
	got, err := s.List(t.Context(), p)
	if err != nil {
		t.Fatalf("List(%+v): %v", p, err)
	}
	return got
}

// identifiers returns the identifiers of ts, in order.
func identifiers(ts []*tenancy.Tenant) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Identifier
	}
	return out
}

// canceled returns a context that is already canceled: a store that
// validates before it queries answers a bad key without noticing.
func canceled(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// tick waits long enough for a store clock with microsecond resolution to
// move on, so that a later write gets a later UpdatedAt.
func tick() { time.Sleep(2 * time.Millisecond) }

// jsonObject returns m after a JSON round trip: the form any store returns
// metadata in (numbers as float64, nested maps as map[string]any).
func jsonObject(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("marshal metadata: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal metadata: %v", err)
	}
	return out
}

// equalTenant fails the test unless got and want hold the same record.
// Empty and nil Domains or Metadata are the same; times are compared with
// time.Time.Equal.
func equalTenant(t *testing.T, got, want *tenancy.Tenant) {
	t.Helper()
	if got == nil || want == nil {
		t.Fatalf("tenant: got %v, want %v", got, want)
	}
	type field struct {
		name      string
		got, want any
	}
	fields := []field{
		{"ID", got.ID, want.ID},
		{"Identifier", got.Identifier, want.Identifier},
		{"Name", got.Name, want.Name},
		{"Status", got.Status, want.Status},
		{"StatusReason", got.StatusReason, want.StatusReason},
		{"Placement", got.Placement, want.Placement},
		{"Tier", got.Tier, want.Tier},
		{"Isolation", got.Isolation, want.Isolation},
	}
	for _, f := range fields {
		if f.got != f.want {
			t.Errorf("tenant %s: %s = %q, want %q", want.Identifier, f.name, f.got, f.want)
		}
	}
	if !(len(got.Aliases) == 0 && len(want.Aliases) == 0) && !slices.Equal(got.Aliases, want.Aliases) {
		t.Errorf("tenant %s: Aliases = %q, want %q", want.Identifier, got.Aliases, want.Aliases)
	}
	if !(len(got.Domains) == 0 && len(want.Domains) == 0) && !slices.Equal(got.Domains, want.Domains) {
		t.Errorf("tenant %s: Domains = %q, want %q", want.Identifier, got.Domains, want.Domains)
	}
	if !(len(got.Metadata) == 0 && len(want.Metadata) == 0) && !reflect.DeepEqual(got.Metadata, want.Metadata) {
		t.Errorf("tenant %s: Metadata = %#v, want %#v", want.Identifier, got.Metadata, want.Metadata)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("tenant %s: CreatedAt = %v, want %v", want.Identifier, got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("tenant %s: UpdatedAt = %v, want %v", want.Identifier, got.UpdatedAt, want.UpdatedAt)
	}
}

// checkTime fails the test unless ts is a store timestamp: set, in UTC, with
// no precision below a microsecond (so that it survives a database round
// trip unchanged), and near the wall clock.
func checkTime(t *testing.T, name string, ts time.Time) {
	t.Helper()
	switch {
	case ts.IsZero():
		t.Errorf("%s is zero", name)
	case ts.Location() != time.UTC:
		t.Errorf("%s = %v is not in UTC", name, ts)
	case !ts.Truncate(time.Microsecond).Equal(ts):
		t.Errorf("%s = %v has precision below a microsecond", name, ts)
	case time.Since(ts).Abs() > time.Minute:
		// Generous: the store may use the database's clock.
		t.Errorf("%s = %v is far from now", name, ts)
	}
}

// wantIs fails the test unless errors.Is(err, target).
func wantIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v, want %v", what, err, target)
	}
}

// wantDuplicate fails the test unless err is a *tenancy.DuplicateError for
// field (and value, when value is not empty).
func wantDuplicate(t *testing.T, what string, err error, field, value string) {
	t.Helper()
	var dup *tenancy.DuplicateError
	if !errors.As(err, &dup) {
		t.Errorf("%s: err = %v (%T), want *tenancy.DuplicateError", what, err, err)
		return
	}
	if !errors.Is(err, tenancy.ErrDuplicate) {
		t.Errorf("%s: err = %v does not wrap ErrDuplicate", what, err)
	}
	if dup.Field != field {
		t.Errorf("%s: DuplicateError.Field = %q, want %q", what, dup.Field, field)
	}
	if value != "" && dup.Value != value {
		t.Errorf("%s: DuplicateError.Value = %q, want %q", what, dup.Value, value)
	}
}

// wantFieldError fails the test unless err is a *tenancy.FieldError naming
// field.
func wantFieldError(t *testing.T, what string, err error, field string) {
	t.Helper()
	var fe *tenancy.FieldError
	if !errors.As(err, &fe) {
		t.Errorf("%s: err = %v (%T), want *tenancy.FieldError", what, err, err)
		return
	}
	if !errors.Is(err, tenancy.ErrInvalidTenant) {
		t.Errorf("%s: err = %v does not wrap ErrInvalidTenant", what, err)
	}
	if fe.Field != field {
		t.Errorf("%s: FieldError.Field = %q, want %q", what, fe.Field, field)
	}
}

// verify marks the tenant's domain verified and fails the test on error.
func verify(t *testing.T, s tenancy.Store, id, domain string) *tenancy.Domain {
	t.Helper()
	d, err := s.VerifyDomain(t.Context(), id, domain)
	if err != nil {
		t.Fatalf("VerifyDomain(%q, %q): %v", id, domain, err)
	}
	if !d.Verified() {
		t.Fatalf("VerifyDomain(%q, %q) = %+v, not verified", id, domain, d)
	}
	return d
}

// listDomains returns ListDomains(id) and fails the test on error.
func listDomains(t *testing.T, s tenancy.Store, id string) []tenancy.Domain {
	t.Helper()
	l, err := s.ListDomains(t.Context(), id)
	if err != nil {
		t.Fatalf("ListDomains(%q): %v", id, err)
	}
	return l
}

func domainNames(l []tenancy.Domain) []string {
	var out []string
	for _, d := range l {
		out = append(out, d.Name)
	}
	return out
}

// checkNewDomain fails the test unless d is a domain just added to tenant
// id: unverified, with a token of 32 lowercase hex digits.
func checkNewDomain(t *testing.T, d tenancy.Domain, id string) {
	t.Helper()
	if d.TenantID != id {
		t.Errorf("domain %s: TenantID = %q, want %q", d.Name, d.TenantID, id)
	}
	if d.Verified() {
		t.Errorf("domain %s: verified at %v as soon as added", d.Name, d.VerifiedAt)
	}
	if len(d.Token) != 32 || strings.Trim(d.Token, "0123456789abcdef") != "" {
		t.Errorf("domain %s: Token = %q, want 32 lowercase hex digits", d.Name, d.Token)
	}
	checkTime(t, "domain CreatedAt", d.CreatedAt)
}

func ptr[T any](v T) *T { return &v }
