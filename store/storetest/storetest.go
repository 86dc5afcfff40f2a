package storetest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/google/uuid"
)

// Run runs the conformance suite against the stores newStore returns.
//
// Every subtest calls newStore for a fresh, empty store of its own and runs
// in parallel with the others, so newStore must be safe for concurrent use;
// it registers any teardown with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	t.Helper()
	cases := []struct {
		name string
		run  func(t *testing.T, s tenancy.Store)
	}{
		{"CreateFillsDefaults", testCreateFillsDefaults},
		{"CreateKeepsFields", testCreateKeepsFields},
		{"LookupUnknown", testLookupUnknown},
		{"InvalidKeysNeverQuery", testInvalidKeysNeverQuery},
		{"DomainLookupNormalizes", testDomainLookupNormalizes},
		{"CreateDuplicate", testCreateDuplicate},
		{"CreateInvalid", testCreateInvalid},
		{"UpdateChangesOnlySetFields", testUpdateChangesOnlySetFields},
		{"UpdateAllFields", testUpdateAllFields},
		{"UpdateMovesDomains", testUpdateMovesDomains},
		{"UpdateDuplicateDomain", testUpdateDuplicateDomain},
		{"UpdateInvalid", testUpdateInvalid},
		{"WritesToUnknown", testWritesToUnknown},
		{"SetStatus", testSetStatus},
		{"DeleteIsSoft", testDeleteIsSoft},
		{"Purge", testPurge},
		{"ListOrderAndFilter", testListOrderAndFilter},
		{"ListKeysetPagination", testListKeysetPagination},
		{"ListDefaultLimit", testListDefaultLimit},
		{"ListMaxLimit", testListMaxLimit},
		{"Count", testCount},
		{"Metadata", testMetadata},
		{"KeepsNoReferences", testKeepsNoReferences},
		{"ReturnsSnapshots", testReturnsSnapshots},
		{"ConcurrentCreateSameIdentifier", testConcurrentCreateSameIdentifier},
		{"ConcurrentCreateSameDomain", testConcurrentCreateSameDomain},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newStore(t))
		})
	}
}

func testCreateFillsDefaults(t *testing.T, s tenancy.Store) {
	in := basic("acme-corp")
	got := create(t, s, in)

	if _, err := uuid.Parse(got.ID); err != nil {
		t.Errorf("ID = %q, want a UUID: %v", got.ID, err)
	}
	if got.Status != tenancy.StatusActive {
		t.Errorf("Status = %q, want %q", got.Status, tenancy.StatusActive)
	}
	checkTime(t, "CreatedAt", got.CreatedAt)
	if !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("UpdatedAt = %v, want CreatedAt %v", got.UpdatedAt, got.CreatedAt)
	}
	if in.ID != "" || in.Status != "" || !in.CreatedAt.IsZero() {
		t.Errorf("Create changed its argument: %+v", in)
	}
	// What Create returned is what the store holds, to the microsecond.
	equalTenant(t, get(t, s, got.ID), got)
	checkTime(t, "stored CreatedAt", get(t, s, got.ID).CreatedAt)

	// Two tenants get two different IDs.
	other := create(t, s, basic("other-corp"))
	if other.ID == got.ID {
		t.Errorf("two creates got the same ID %q", got.ID)
	}
}

func testCreateKeepsFields(t *testing.T, s tenancy.Store) {
	past := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	in := &tenancy.Tenant{
		ID:           "tenant-acme-001",
		Identifier:   "acme-corp",
		Name:         "Acme Corporation",
		Status:       tenancy.StatusProvisioning,
		StatusReason: "creating schema",
		Placement:    "eu-1",
		Tier:         "enterprise",
		Isolation:    tenancy.IsolationSchema,
		Domains:      []string{"Acme.Example.COM.", "acme", "acme.example.com", "portal.acme.test"},
		Metadata:     map[string]any{"plan": map[string]any{"seats": 25, "addons": []any{"sso", "audit"}}, "vip": true},
		CreatedAt:    past,
		UpdatedAt:    past,
	}
	got := create(t, s, in)

	want := in.Clone()
	want.Domains = []string{"acme", "acme.example.com", "portal.acme.test"}
	want.Metadata = jsonObject(t, in.Metadata)
	want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
	equalTenant(t, got, want)
	if got.CreatedAt.Equal(past) {
		t.Errorf("CreatedAt = %v: the caller's value was kept, want the store's clock", got.CreatedAt)
	}
	checkTime(t, "CreatedAt", got.CreatedAt)

	ctx := t.Context()
	byID, err := s.Get(ctx, "tenant-acme-001")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	equalTenant(t, byID, want)
	byIdent, err := s.GetByIdentifier(ctx, "acme-corp")
	if err != nil {
		t.Fatalf("GetByIdentifier: %v", err)
	}
	equalTenant(t, byIdent, want)
	for _, d := range want.Domains {
		byDomain, err := s.GetByDomain(ctx, d)
		if err != nil {
			t.Fatalf("GetByDomain(%q): %v", d, err)
		}
		equalTenant(t, byDomain, want)
	}
}

func testLookupUnknown(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	// An empty store and a store with a neighbour both answer "not found".
	for _, populated := range []bool{false, true} {
		if populated {
			create(t, s, &tenancy.Tenant{ID: "t-1", Identifier: "acme", Name: "Acme", Domains: []string{"acme.example.com"}})
		}
		_, err := s.Get(ctx, "t-2")
		wantIs(t, fmt.Sprintf("Get unknown (populated=%v)", populated), err, tenancy.ErrTenantNotFound)
		_, err = s.GetByIdentifier(ctx, "acme-two")
		wantIs(t, fmt.Sprintf("GetByIdentifier unknown (populated=%v)", populated), err, tenancy.ErrTenantNotFound)
		_, err = s.GetByDomain(ctx, "example.com")
		wantIs(t, fmt.Sprintf("GetByDomain unknown (populated=%v)", populated), err, tenancy.ErrTenantNotFound)
		_, err = s.GetByDomain(ctx, "www.acme.example.com")
		wantIs(t, fmt.Sprintf("GetByDomain subdomain of a known domain (populated=%v)", populated), err, tenancy.ErrTenantNotFound)
	}
}

// testInvalidKeysNeverQuery passes a canceled context with each bad key: a
// store that queried first would report the cancellation instead.
func testInvalidKeysNeverQuery(t *testing.T, s tenancy.Store) {
	create(t, s, basic("acme-corp"))
	ctx := canceled(t)
	badIDs := []string{"", " ", "a b", "-abc", "_abc", "abc\n", "../etc", "a\"; DROP TABLE tenants; --", "ü", strings.Repeat("a", tenancy.MaxIDLen+1)}
	for _, id := range badIDs {
		_, err := s.Get(ctx, id)
		wantIs(t, fmt.Sprintf("Get(%q)", id), err, tenancy.ErrInvalidID)
		_, err = s.Update(ctx, id, tenancy.Update{Name: ptr("x")})
		wantIs(t, fmt.Sprintf("Update(%q)", id), err, tenancy.ErrInvalidID)
		_, err = s.SetStatus(ctx, id, tenancy.StatusSuspended, "")
		wantIs(t, fmt.Sprintf("SetStatus(%q)", id), err, tenancy.ErrInvalidID)
		_, err = s.Delete(ctx, id)
		wantIs(t, fmt.Sprintf("Delete(%q)", id), err, tenancy.ErrInvalidID)
		wantIs(t, fmt.Sprintf("Purge(%q)", id), s.Purge(ctx, id), tenancy.ErrInvalidID)
	}
	badIdentifiers := []string{"", "ab", "Acme-Corp", " acme", "acme\n", "acme-", "1acme", "acme_corp", "../../etc", "a\"; DROP SCHEMA public; --", "аcme", strings.Repeat("a", tenancy.MaxIdentifierLen+1)}
	for _, ident := range badIdentifiers {
		_, err := s.GetByIdentifier(ctx, ident)
		wantIs(t, fmt.Sprintf("GetByIdentifier(%q)", ident), err, tenancy.ErrInvalidIdentifier)
	}
	// A domain that is no host name cannot be held by any tenant.
	for _, d := range []string{"", ".", "acme..example.com", "-acme.com", "acme.com/x", "acme.com:8080", "' OR 1=1 --", "acme.example.com.."} {
		_, err := s.GetByDomain(ctx, d)
		wantIs(t, fmt.Sprintf("GetByDomain(%q)", d), err, tenancy.ErrTenantNotFound)
	}
	// Nothing above wrote anything.
	if n := count(t, s, ""); n != 1 {
		t.Errorf("Count = %d after refused calls, want 1", n)
	}
}

func testDomainLookupNormalizes(t *testing.T, s tenancy.Store) {
	want := create(t, s, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme", Domains: []string{"acme.example.com", "acme"}})
	for _, d := range []string{"acme.example.com", "ACME.Example.Com", "acme.example.com.", "Acme.Example.Com.", "ACME", "acme."} {
		got, err := s.GetByDomain(t.Context(), d)
		if err != nil {
			t.Errorf("GetByDomain(%q): %v", d, err)
			continue
		}
		equalTenant(t, got, want)
	}
}

func testCreateDuplicate(t *testing.T, s tenancy.Store) {
	create(t, s, &tenancy.Tenant{ID: "t-1", Identifier: "acme-corp", Name: "Acme", Domains: []string{"acme.example.com"}})
	cases := []struct {
		name         string
		tenant       *tenancy.Tenant
		field, value string
	}{
		{"id", &tenancy.Tenant{ID: "t-1", Identifier: "globex", Name: "Globex", Domains: []string{"globex.example.com"}}, "id", "t-1"},
		{"identifier", &tenancy.Tenant{ID: "t-2", Identifier: "acme-corp", Name: "Acme 2", Domains: []string{"globex.example.com"}}, "identifier", "acme-corp"},
		{"domain", &tenancy.Tenant{ID: "t-3", Identifier: "globex", Name: "Globex", Domains: []string{"globex.example.com", "ACME.example.com.", "zzz.example.com"}}, "domain", "acme.example.com"},
		{"identifier without ID", &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme 3"}, "identifier", "acme-corp"},
	}
	for _, c := range cases {
		_, err := s.Create(t.Context(), c.tenant)
		wantDuplicate(t, c.name, err, c.field, c.value)
	}
	// The failed creates left nothing behind: not the row, not its domains.
	if n := count(t, s, ""); n != 1 {
		t.Errorf("Count = %d after duplicate creates, want 1", n)
	}
	for _, d := range []string{"globex.example.com", "zzz.example.com"} {
		_, err := s.GetByDomain(t.Context(), d)
		wantIs(t, "domain of a refused create "+d, err, tenancy.ErrTenantNotFound)
	}
	for _, id := range []string{"t-2", "t-3"} {
		_, err := s.Get(t.Context(), id)
		wantIs(t, "ID of a refused create "+id, err, tenancy.ErrTenantNotFound)
	}
	got, err := s.GetByDomain(t.Context(), "acme.example.com")
	if err != nil || got.ID != "t-1" {
		t.Errorf("GetByDomain(acme.example.com) = %v, %v; want t-1", got, err)
	}
}

func testCreateInvalid(t *testing.T, s tenancy.Store) {
	cases := []struct {
		name   string
		change func(*tenancy.Tenant)
		field  string // FieldError field, or "" when sentinel is set
		is     error
	}{
		{"bad ID", func(tn *tenancy.Tenant) { tn.ID = "a b" }, "", tenancy.ErrInvalidID},
		{"long ID", func(tn *tenancy.Tenant) { tn.ID = strings.Repeat("x", tenancy.MaxIDLen+1) }, "", tenancy.ErrInvalidID},
		{"empty identifier", func(tn *tenancy.Tenant) { tn.Identifier = "" }, "", tenancy.ErrInvalidIdentifier},
		{"uppercase identifier", func(tn *tenancy.Tenant) { tn.Identifier = "Acme" }, "", tenancy.ErrInvalidIdentifier},
		{"identifier with newline", func(tn *tenancy.Tenant) { tn.Identifier = "acme\n" }, "", tenancy.ErrInvalidIdentifier},
		{"empty name", func(tn *tenancy.Tenant) { tn.Name = "" }, "name", nil},
		{"long name", func(tn *tenancy.Tenant) { tn.Name = strings.Repeat("n", 201) }, "name", nil},
		{"unknown status", func(tn *tenancy.Tenant) { tn.Status = "paused" }, "status", nil},
		{"bad tier", func(tn *tenancy.Tenant) { tn.Tier = "Gold!" }, "tier", nil},
		{"bad placement", func(tn *tenancy.Tenant) { tn.Placement = "eu 1" }, "placement", nil},
		{"bad isolation", func(tn *tenancy.Tenant) { tn.Isolation = "table" }, "isolation", nil},
		{"bad domain", func(tn *tenancy.Tenant) { tn.Domains = []string{"ok.example.com", "not a host"} }, "domains", nil},
		{"metadata that is not JSON", func(tn *tenancy.Tenant) { tn.Metadata = map[string]any{"x": math.Inf(1)} }, "metadata", nil},
	}
	for _, c := range cases {
		tn := &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme", Domains: []string{"acme.example.com"}}
		c.change(tn)
		_, err := s.Create(t.Context(), tn)
		if c.is != nil {
			wantIs(t, c.name, err, c.is)
		} else {
			wantFieldError(t, c.name, err, c.field)
		}
	}
	if n := count(t, s, ""); n != 0 {
		t.Errorf("Count = %d after invalid creates, want 0", n)
	}
	_, err := s.GetByDomain(t.Context(), "acme.example.com")
	wantIs(t, "domain of an invalid create", err, tenancy.ErrTenantNotFound)
	// The identifier was never taken.
	create(t, s, basic("acme-corp"))
}

func testUpdateChangesOnlySetFields(t *testing.T, s tenancy.Store) {
	orig := create(t, s, &tenancy.Tenant{
		Identifier: "acme-corp", Name: "Acme", Tier: "starter", Placement: "eu-1",
		Isolation: tenancy.IsolationRLS, Domains: []string{"acme.example.com"},
		Metadata: map[string]any{"k": "v"},
	})
	tick()
	got, err := s.Update(t.Context(), orig.ID, tenancy.Update{Name: ptr("Acme Corporation")})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := orig.Clone()
	want.Name = "Acme Corporation"
	want.UpdatedAt = got.UpdatedAt
	equalTenant(t, got, want)
	if !got.UpdatedAt.After(orig.UpdatedAt) {
		t.Errorf("UpdatedAt = %v, want after %v", got.UpdatedAt, orig.UpdatedAt)
	}
	checkTime(t, "UpdatedAt", got.UpdatedAt)
	equalTenant(t, get(t, s, orig.ID), want)

	// An empty Update changes nothing but UpdatedAt.
	tick()
	again, err := s.Update(t.Context(), orig.ID, tenancy.Update{})
	if err != nil {
		t.Fatalf("empty Update: %v", err)
	}
	want.UpdatedAt = again.UpdatedAt
	equalTenant(t, again, want)
	if !again.UpdatedAt.After(got.UpdatedAt) {
		t.Errorf("UpdatedAt = %v after an empty Update, want after %v", again.UpdatedAt, got.UpdatedAt)
	}
}

func testUpdateAllFields(t *testing.T, s tenancy.Store) {
	orig := create(t, s, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme", Domains: []string{"old.example.com"}, Metadata: map[string]any{"old": 1}})
	iso := tenancy.IsolationDatabase
	u := tenancy.Update{
		Name:      ptr("Acme 2"),
		Tier:      ptr("enterprise"),
		Isolation: &iso,
		Placement: ptr("us-2"),
		Domains:   &[]string{"New.Example.com.", "acme"},
		Metadata:  map[string]any{"new": map[string]any{"deep": []any{1, "two"}}},
	}
	got, err := s.Update(t.Context(), orig.ID, u)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := &tenancy.Tenant{
		ID: orig.ID, Identifier: "acme-corp", Name: "Acme 2", Status: tenancy.StatusActive,
		Tier: "enterprise", Isolation: tenancy.IsolationDatabase, Placement: "us-2",
		Domains:   []string{"acme", "new.example.com"},
		Metadata:  jsonObject(t, u.Metadata),
		CreatedAt: orig.CreatedAt, UpdatedAt: got.UpdatedAt,
	}
	equalTenant(t, got, want)
	equalTenant(t, get(t, s, orig.ID), want)

	// Empty values clear the optional fields.
	empty := tenancy.IsolationDefault
	got, err = s.Update(t.Context(), orig.ID, tenancy.Update{Tier: ptr(""), Isolation: &empty, Placement: ptr("")})
	if err != nil {
		t.Fatalf("clearing Update: %v", err)
	}
	want.Tier, want.Isolation, want.Placement, want.UpdatedAt = "", "", "", got.UpdatedAt
	equalTenant(t, got, want)
	equalTenant(t, get(t, s, orig.ID), want)
}

func testUpdateMovesDomains(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	a := create(t, s, &tenancy.Tenant{Identifier: "acme", Name: "Acme", Domains: []string{"a1.example.com", "a2.example.com"}})
	got, err := s.Update(ctx, a.ID, tenancy.Update{Domains: &[]string{"a2.example.com", "A3.example.com"}})
	if err != nil {
		t.Fatalf("Update domains: %v", err)
	}
	if want := []string{"a2.example.com", "a3.example.com"}; !slices.Equal(got.Domains, want) {
		t.Errorf("Domains = %q, want %q", got.Domains, want)
	}
	_, err = s.GetByDomain(ctx, "a1.example.com")
	wantIs(t, "old domain after the move", err, tenancy.ErrTenantNotFound)
	for _, d := range []string{"a2.example.com", "a3.example.com"} {
		if got, err := s.GetByDomain(ctx, d); err != nil || got.ID != a.ID {
			t.Errorf("GetByDomain(%q) = %v, %v; want %s", d, got, err, a.ID)
		}
	}

	// The domain given up is free for another tenant.
	b := create(t, s, &tenancy.Tenant{Identifier: "bravo", Name: "Bravo", Domains: []string{"a1.example.com"}})
	if got, err := s.GetByDomain(ctx, "a1.example.com"); err != nil || got.ID != b.ID {
		t.Errorf("GetByDomain(a1) = %v, %v; want %s", got, err, b.ID)
	}

	// An empty list removes every domain; nil keeps them.
	if _, err := s.Update(ctx, b.ID, tenancy.Update{Name: ptr("Bravo 2")}); err != nil {
		t.Fatalf("Update name: %v", err)
	}
	if got := get(t, s, b.ID); !slices.Equal(got.Domains, []string{"a1.example.com"}) {
		t.Errorf("Domains = %q after an Update without Domains, want [a1.example.com]", got.Domains)
	}
	got, err = s.Update(ctx, a.ID, tenancy.Update{Domains: &[]string{}})
	if err != nil {
		t.Fatalf("Update to no domains: %v", err)
	}
	if len(got.Domains) != 0 || len(get(t, s, a.ID).Domains) != 0 {
		t.Errorf("Domains = %q, want none", got.Domains)
	}
	for _, d := range []string{"a2.example.com", "a3.example.com"} {
		_, err := s.GetByDomain(ctx, d)
		wantIs(t, "removed domain "+d, err, tenancy.ErrTenantNotFound)
	}
}

func testUpdateDuplicateDomain(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	a := create(t, s, &tenancy.Tenant{Identifier: "acme", Name: "Acme", Domains: []string{"acme.example.com"}})
	b := create(t, s, &tenancy.Tenant{Identifier: "bravo", Name: "Bravo", Domains: []string{"bravo.example.com"}})

	_, err := s.Update(ctx, b.ID, tenancy.Update{Name: ptr("Renamed"), Domains: &[]string{"bravo.example.com", "new.bravo.test", "ACME.example.com."}})
	wantDuplicate(t, "taking another tenant's domain", err, "domain", "acme.example.com")

	// Nothing of the refused update was written.
	equalTenant(t, get(t, s, b.ID), b)
	equalTenant(t, get(t, s, a.ID), a)
	_, err = s.GetByDomain(ctx, "new.bravo.test")
	wantIs(t, "domain of a refused update", err, tenancy.ErrTenantNotFound)
	if got, err := s.GetByDomain(ctx, "acme.example.com"); err != nil || got.ID != a.ID {
		t.Errorf("GetByDomain(acme.example.com) = %v, %v; want %s", got, err, a.ID)
	}

	// Keeping one's own domain is no conflict.
	if _, err := s.Update(ctx, a.ID, tenancy.Update{Domains: &[]string{"acme.example.com", "www.acme.example.com"}}); err != nil {
		t.Errorf("Update keeping own domain: %v", err)
	}
}

func testUpdateInvalid(t *testing.T, s tenancy.Store) {
	orig := create(t, s, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme", Domains: []string{"acme.example.com"}, Metadata: map[string]any{"k": "v"}})
	bad := tenancy.Isolation("table")
	cases := []struct {
		name  string
		u     tenancy.Update
		field string
	}{
		{"empty name", tenancy.Update{Name: ptr("")}, "name"},
		{"bad tier", tenancy.Update{Name: ptr("New"), Tier: ptr("-x")}, "tier"},
		{"bad placement", tenancy.Update{Placement: ptr("EU")}, "placement"},
		{"bad isolation", tenancy.Update{Isolation: &bad}, "isolation"},
		{"bad domain", tenancy.Update{Domains: &[]string{"new.example.com", "bad_domain"}}, "domains"},
		{"metadata that is not JSON", tenancy.Update{Name: ptr("New"), Metadata: map[string]any{"x": math.NaN()}}, "metadata"},
	}
	for _, c := range cases {
		_, err := s.Update(t.Context(), orig.ID, c.u)
		wantFieldError(t, c.name, err, c.field)
	}
	equalTenant(t, get(t, s, orig.ID), orig)
	_, err := s.GetByDomain(t.Context(), "new.example.com")
	wantIs(t, "domain of an invalid update", err, tenancy.ErrTenantNotFound)
}

func testWritesToUnknown(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	create(t, s, &tenancy.Tenant{ID: "t-1", Identifier: "acme", Name: "Acme"})
	_, err := s.Update(ctx, "t-2", tenancy.Update{Name: ptr("x")})
	wantIs(t, "Update unknown", err, tenancy.ErrTenantNotFound)
	_, err = s.SetStatus(ctx, "t-2", tenancy.StatusSuspended, "x")
	wantIs(t, "SetStatus unknown", err, tenancy.ErrTenantNotFound)
	_, err = s.Delete(ctx, "t-2")
	wantIs(t, "Delete unknown", err, tenancy.ErrTenantNotFound)
	wantIs(t, "Purge unknown", s.Purge(ctx, "t-2"), tenancy.ErrTenantNotFound)
	if n := count(t, s, ""); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}
}

func testSetStatus(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	orig := create(t, s, &tenancy.Tenant{Identifier: "acme", Name: "Acme", Status: tenancy.StatusProvisioning, Domains: []string{"acme.example.com"}})
	prev := orig
	for _, st := range tenancy.Statuses {
		reason := "now " + string(st)
		tick()
		got, err := s.SetStatus(ctx, orig.ID, st, reason)
		if err != nil {
			t.Fatalf("SetStatus(%s): %v", st, err)
		}
		want := orig.Clone()
		want.Status, want.StatusReason, want.UpdatedAt = st, reason, got.UpdatedAt
		equalTenant(t, got, want)
		equalTenant(t, get(t, s, orig.ID), want)
		if !got.UpdatedAt.After(prev.UpdatedAt) {
			t.Errorf("SetStatus(%s): UpdatedAt = %v, want after %v", st, got.UpdatedAt, prev.UpdatedAt)
		}
		prev = got
	}
	// An empty reason clears the old one.
	got, err := s.SetStatus(ctx, orig.ID, tenancy.StatusActive, "")
	if err != nil {
		t.Fatalf("SetStatus(active): %v", err)
	}
	if got.StatusReason != "" || get(t, s, orig.ID).StatusReason != "" {
		t.Errorf("StatusReason = %q, want empty", got.StatusReason)
	}
	// An unknown status is refused and changes nothing.
	before := get(t, s, orig.ID)
	_, err = s.SetStatus(ctx, orig.ID, "paused", "why")
	wantFieldError(t, "unknown status", err, "status")
	_, err = s.SetStatus(ctx, orig.ID, "", "why")
	wantFieldError(t, "empty status", err, "status")
	equalTenant(t, get(t, s, orig.ID), before)
}

func testDeleteIsSoft(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	orig := create(t, s, &tenancy.Tenant{Identifier: "acme", Name: "Acme", Domains: []string{"acme.example.com"}})
	create(t, s, basic("bravo"))
	tick()
	got, err := s.Delete(ctx, orig.ID)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got.Status != tenancy.StatusDeleted {
		t.Errorf("Status = %q, want deleted", got.Status)
	}
	if !got.UpdatedAt.After(orig.UpdatedAt) {
		t.Errorf("UpdatedAt = %v, want after %v", got.UpdatedAt, orig.UpdatedAt)
	}
	// The record stays findable by every key, so it is refused, not unknown.
	lookups := map[string]func() (*tenancy.Tenant, error){
		"Get":             func() (*tenancy.Tenant, error) { return s.Get(ctx, orig.ID) },
		"GetByIdentifier": func() (*tenancy.Tenant, error) { return s.GetByIdentifier(ctx, "acme") },
		"GetByDomain":     func() (*tenancy.Tenant, error) { return s.GetByDomain(ctx, "acme.example.com") },
	}
	for name, lookup := range lookups {
		found, err := lookup()
		if err != nil {
			t.Errorf("%s after Delete: %v", name, err)
			continue
		}
		equalTenant(t, found, got)
		wantIs(t, name+" CheckStatus", found.CheckStatus(), tenancy.ErrTenantDeleted)
	}
	if n := count(t, s, tenancy.StatusDeleted); n != 1 {
		t.Errorf("Count(deleted) = %d, want 1", n)
	}
	if n := count(t, s, ""); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
	// Its identifier and domain stay taken.
	_, err = s.Create(ctx, &tenancy.Tenant{Identifier: "acme", Name: "Acme again"})
	wantDuplicate(t, "identifier of a deleted tenant", err, "identifier", "acme")
}

func testPurge(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	orig := create(t, s, &tenancy.Tenant{ID: "t-1", Identifier: "acme", Name: "Acme", Domains: []string{"acme.example.com", "acme"}})
	keep := create(t, s, &tenancy.Tenant{Identifier: "bravo", Name: "Bravo", Domains: []string{"bravo.example.com"}})
	if _, err := s.Delete(ctx, orig.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.Purge(ctx, orig.ID); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	_, err := s.Get(ctx, orig.ID)
	wantIs(t, "Get after Purge", err, tenancy.ErrTenantNotFound)
	_, err = s.GetByIdentifier(ctx, "acme")
	wantIs(t, "GetByIdentifier after Purge", err, tenancy.ErrTenantNotFound)
	for _, d := range []string{"acme.example.com", "acme"} {
		_, err = s.GetByDomain(ctx, d)
		wantIs(t, "GetByDomain after Purge "+d, err, tenancy.ErrTenantNotFound)
	}
	wantIs(t, "second Purge", s.Purge(ctx, orig.ID), tenancy.ErrTenantNotFound)
	if n := count(t, s, ""); n != 1 {
		t.Errorf("Count = %d after Purge, want 1", n)
	}
	if got := list(t, s, tenancy.ListParams{}); !slices.Equal(identifiers(got), []string{"bravo"}) {
		t.Errorf("List after Purge = %q, want [bravo]", identifiers(got))
	}
	equalTenant(t, get(t, s, keep.ID), keep)

	// ID, identifier and domains are free again.
	again := create(t, s, &tenancy.Tenant{ID: "t-1", Identifier: "acme", Name: "Acme reborn", Domains: []string{"acme.example.com"}})
	if got, err := s.GetByDomain(ctx, "acme.example.com"); err != nil || got.Name != "Acme reborn" {
		t.Errorf("GetByDomain after re-create = %v, %v", got, err)
	}
	if again.Status != tenancy.StatusActive {
		t.Errorf("re-created Status = %q, want active", again.Status)
	}
}

// listFixture creates tenants whose identifiers sort differently by bytes
// than by a natural-language collation ('-' sorts before digits and
// letters), with a mix of statuses, and returns them in byte order.
func listFixture(t *testing.T, s tenancy.Store) []*tenancy.Tenant {
	t.Helper()
	specs := []struct {
		ident  string
		status tenancy.Status
	}{
		{"abb", tenancy.StatusActive},
		{"zz9", tenancy.StatusSuspended},
		{"ab-c", tenancy.StatusActive},
		{"a-z", tenancy.StatusDeleted},
		{"ab0", tenancy.StatusSuspended},
		{"m-m-m", tenancy.StatusActive},
		{"mm0", tenancy.StatusProvisioning},
		{"ab-d", tenancy.StatusActive},
	}
	var all []*tenancy.Tenant
	for _, sp := range specs {
		tn := basic(sp.ident)
		tn.Status = sp.status
		tn.Domains = []string{sp.ident + ".example.com"}
		all = append(all, create(t, s, tn))
	}
	slices.SortFunc(all, func(a, b *tenancy.Tenant) int { return strings.Compare(a.Identifier, b.Identifier) })
	return all
}

func filter(all []*tenancy.Tenant, status tenancy.Status) []*tenancy.Tenant {
	var out []*tenancy.Tenant
	for _, tn := range all {
		if status == "" || tn.Status == status {
			out = append(out, tn)
		}
	}
	return out
}

func testListOrderAndFilter(t *testing.T, s tenancy.Store) {
	all := listFixture(t, s)
	got := list(t, s, tenancy.ListParams{})
	if !slices.Equal(identifiers(got), identifiers(all)) {
		t.Fatalf("List = %q, want byte order %q", identifiers(got), identifiers(all))
	}
	for i := range got {
		equalTenant(t, got[i], all[i])
	}
	for _, st := range tenancy.Statuses {
		want := filter(all, st)
		got := list(t, s, tenancy.ListParams{Status: st})
		if !slices.Equal(identifiers(got), identifiers(want)) {
			t.Errorf("List(status=%s) = %q, want %q", st, identifiers(got), identifiers(want))
		}
	}
}

func testListKeysetPagination(t *testing.T, s tenancy.Store) {
	all := listFixture(t, s)
	cases := []struct {
		name   string
		p      tenancy.ListParams
		expect []string
	}{
		{"after an existing identifier", tenancy.ListParams{After: "ab-d"}, identifiers(all[3:])},
		{"after a gap", tenancy.ListParams{After: "ab-"}, identifiers(all[1:])},
		{"after the last", tenancy.ListParams{After: "zz9"}, nil},
		{"after everything", tenancy.ListParams{After: "zzzz"}, nil},
		{"limit", tenancy.ListParams{Limit: 3}, identifiers(all[:3])},
		{"after and limit", tenancy.ListParams{After: "ab0", Limit: 2}, []string{"abb", "m-m-m"}},
		{"status, after and limit", tenancy.ListParams{Status: tenancy.StatusActive, After: "ab-c", Limit: 2}, []string{"ab-d", "abb"}},
		{"status and after", tenancy.ListParams{Status: tenancy.StatusSuspended, After: "ab0"}, []string{"zz9"}},
	}
	for _, c := range cases {
		got := list(t, s, c.p)
		if !slices.Equal(identifiers(got), c.expect) {
			t.Errorf("%s: List(%+v) = %q, want %q", c.name, c.p, identifiers(got), c.expect)
		}
	}

	// Walking pages of every size visits every tenant once, in order.
	for _, status := range []tenancy.Status{"", tenancy.StatusActive} {
		want := identifiers(filter(all, status))
		for size := 1; size <= len(all)+1; size++ {
			var seen []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > len(all)+1 {
					t.Fatalf("page size %d: pagination does not end", size)
				}
				page := list(t, s, tenancy.ListParams{Status: status, After: after, Limit: size})
				if len(page) > size {
					t.Fatalf("page size %d: got %d tenants", size, len(page))
				}
				if len(page) == 0 {
					break
				}
				seen = append(seen, identifiers(page)...)
				after = page[len(page)-1].Identifier
			}
			if !slices.Equal(seen, want) {
				t.Errorf("status %q, page size %d: walked %q, want %q", status, size, seen, want)
			}
		}
	}
}

// createMany creates n tenants named t0000, t0001, ... concurrently.
func createMany(t *testing.T, s tenancy.Store, n int) {
	t.Helper()
	const workers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if _, err := s.Create(t.Context(), basic(fmt.Sprintf("t%04d", i))); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("creating %d tenants: %d failed, first: %v", n, len(errs), errs[0])
	}
}

func testListDefaultLimit(t *testing.T, s tenancy.Store) {
	n := tenancy.DefaultListLimit + 1
	createMany(t, s, n)
	cases := []struct {
		p    tenancy.ListParams
		want int
	}{
		{tenancy.ListParams{}, tenancy.DefaultListLimit},
		{tenancy.ListParams{Limit: -5}, tenancy.DefaultListLimit},
		{tenancy.ListParams{Limit: n}, n},
		{tenancy.ListParams{Limit: n + 10}, n},
	}
	for _, c := range cases {
		got := list(t, s, c.p)
		if len(got) != c.want {
			t.Errorf("List(%+v) returned %d tenants, want %d", c.p, len(got), c.want)
		}
		if !slices.IsSortedFunc(got, func(a, b *tenancy.Tenant) int { return cmp.Compare(a.Identifier, b.Identifier) }) {
			t.Errorf("List(%+v) is not ordered by identifier", c.p)
		}
		if len(got) > 0 && got[0].Identifier != "t0000" {
			t.Errorf("List(%+v) starts at %q, want t0000", c.p, got[0].Identifier)
		}
	}
	if c := count(t, s, ""); c != n {
		t.Errorf("Count = %d, want %d", c, n)
	}
}

func testListMaxLimit(t *testing.T, s tenancy.Store) {
	createMany(t, s, tenancy.MaxListLimit+1)
	for _, limit := range []int{tenancy.MaxListLimit + 1, 1 << 30} {
		if got := list(t, s, tenancy.ListParams{Limit: limit}); len(got) != tenancy.MaxListLimit {
			t.Errorf("List(Limit=%d) returned %d tenants, want MaxListLimit %d", limit, len(got), tenancy.MaxListLimit)
		}
	}
	last := list(t, s, tenancy.ListParams{After: fmt.Sprintf("t%04d", tenancy.MaxListLimit-1), Limit: tenancy.MaxListLimit})
	if !slices.Equal(identifiers(last), []string{fmt.Sprintf("t%04d", tenancy.MaxListLimit)}) {
		t.Errorf("last page = %q, want the one remaining tenant", identifiers(last))
	}
}

func testCount(t *testing.T, s tenancy.Store) {
	for _, st := range append([]tenancy.Status{""}, tenancy.Statuses...) {
		if n := count(t, s, st); n != 0 {
			t.Errorf("empty store: Count(%q) = %d, want 0", st, n)
		}
	}
	all := listFixture(t, s)
	if n := count(t, s, ""); n != len(all) {
		t.Errorf("Count = %d, want %d", n, len(all))
	}
	for _, st := range tenancy.Statuses {
		if n, want := count(t, s, st), len(filter(all, st)); n != want {
			t.Errorf("Count(%s) = %d, want %d", st, n, want)
		}
	}
}

func testMetadata(t *testing.T, s tenancy.Store) {
	meta := map[string]any{
		"plan":    map[string]any{"seats": 25, "price": 9.99, "features": []any{"sso", map[string]any{"audit": true}}},
		"flag":    false,
		"nothing": nil,
		"text":    "Ünïcødé ✓ \"quoted\" \\ back\nline",
		"empty":   map[string]any{},
		"list":    []any{},
		"big":     1e300,
		"neg":     -42,
	}
	orig := create(t, s, &tenancy.Tenant{Identifier: "acme", Name: "Acme", Metadata: meta})
	want := jsonObject(t, meta)
	for name, got := range map[string]*tenancy.Tenant{"Create": orig, "Get": get(t, s, orig.ID)} {
		equalTenant(t, got, &tenancy.Tenant{
			ID: orig.ID, Identifier: "acme", Name: "Acme", Status: tenancy.StatusActive,
			Metadata: want, CreatedAt: orig.CreatedAt, UpdatedAt: orig.UpdatedAt,
		})
		if t.Failed() {
			t.Fatalf("%s did not round-trip metadata", name)
		}
	}

	// Update replaces the object; it does not merge.
	got, err := s.Update(t.Context(), orig.ID, tenancy.Update{Metadata: map[string]any{"only": "this"}})
	if err != nil {
		t.Fatalf("Update metadata: %v", err)
	}
	for _, tn := range []*tenancy.Tenant{got, get(t, s, orig.ID)} {
		if len(tn.Metadata) != 1 || tn.Metadata["only"] != "this" {
			t.Errorf("Metadata = %#v, want only {only: this}", tn.Metadata)
		}
	}
	// An empty map clears it.
	got, err = s.Update(t.Context(), orig.ID, tenancy.Update{Metadata: map[string]any{}})
	if err != nil {
		t.Fatalf("Update empty metadata: %v", err)
	}
	if len(got.Metadata) != 0 || len(get(t, s, orig.ID).Metadata) != 0 {
		t.Errorf("Metadata = %#v, want empty", got.Metadata)
	}
	// A tenant created without metadata has none.
	if m := create(t, s, basic("bravo")).Metadata; len(m) != 0 {
		t.Errorf("Metadata = %#v for a tenant created without, want empty", m)
	}
}

// testKeepsNoReferences: a store never keeps what a caller passes in, so
// that changing an argument after the call changes nothing stored.
func testKeepsNoReferences(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	in := &tenancy.Tenant{
		Identifier: "acme", Name: "Acme", Domains: []string{"acme.example.com", "b.example.com"},
		Metadata: map[string]any{"nested": map[string]any{"k": "v"}, "list": []any{"x"}},
	}
	orig := create(t, s, in)
	want := get(t, s, orig.ID).Clone()

	in.Name = "changed"
	in.Domains[0] = "evil.example.com"
	in.Metadata["nested"].(map[string]any)["k"] = "changed"
	in.Metadata["list"].([]any)[0] = "y"
	equalTenant(t, get(t, s, orig.ID), want)

	domains := []string{"new.example.com"}
	meta := map[string]any{"nested": map[string]any{"k": "v2"}}
	updated, err := s.Update(ctx, orig.ID, tenancy.Update{Domains: &domains, Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	want = updated.Clone()
	domains[0] = "evil.example.com"
	meta["nested"].(map[string]any)["k"] = "changed"
	meta["added"] = true
	equalTenant(t, get(t, s, orig.ID), want)
	_, err = s.GetByDomain(ctx, "evil.example.com")
	wantIs(t, "domain written into an argument after the call", err, tenancy.ErrTenantNotFound)
}

// testReturnsSnapshots: a tenant a store returned never changes afterwards;
// a write stores a new value. (Returned tenants may be shared between
// callers, so the suite, like any caller, never modifies one.)
func testReturnsSnapshots(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	orig := create(t, s, &tenancy.Tenant{
		Identifier: "acme", Name: "Acme", Tier: "starter", Domains: []string{"acme.example.com"},
		Metadata: map[string]any{"nested": map[string]any{"k": "v"}},
	})
	byID := get(t, s, orig.ID)
	byIdent, err := s.GetByIdentifier(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	byDomain, err := s.GetByDomain(ctx, "acme.example.com")
	if err != nil {
		t.Fatal(err)
	}
	listed := list(t, s, tenancy.ListParams{})[0]
	held := map[string]*tenancy.Tenant{"Create": orig, "Get": byID, "GetByIdentifier": byIdent, "GetByDomain": byDomain, "List": listed}
	want := make(map[string]*tenancy.Tenant, len(held))
	for name, tn := range held {
		want[name] = tn.Clone()
	}

	tick()
	domains := []string{"other.example.com"}
	updated, err := s.Update(ctx, orig.ID, tenancy.Update{
		Name: ptr("Acme Corp"), Tier: ptr("enterprise"), Domains: &domains,
		Metadata: map[string]any{"nested": map[string]any{"k": "v2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	held["Update"], want["Update"] = updated, updated.Clone()
	if _, err := s.SetStatus(ctx, orig.ID, tenancy.StatusSuspended, "unpaid"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, orig.ID); err != nil {
		t.Fatal(err)
	}
	for name, tn := range held {
		equalTenant(t, tn, want[name])
		if t.Failed() {
			t.Fatalf("the tenant %s returned changed after later writes", name)
		}
	}
	// The writes did happen.
	if got := get(t, s, orig.ID); got.Name != "Acme Corp" || got.Status != tenancy.StatusDeleted {
		t.Fatalf("after the writes: %+v", got)
	}
}

// race runs f from n goroutines released at once and returns their results.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// checkOneWinner fails the test unless exactly one of errs is nil and the
// rest are DuplicateErrors for field.
func checkOneWinner(t *testing.T, errs []error, field, value string) {
	t.Helper()
	wins := 0
	for i, err := range errs {
		if err == nil {
			wins++
			continue
		}
		wantDuplicate(t, fmt.Sprintf("goroutine %d", i), err, field, value)
	}
	if wins != 1 {
		t.Errorf("%d creates succeeded, want exactly 1", wins)
	}
}

func testConcurrentCreateSameIdentifier(t *testing.T, s tenancy.Store) {
	const n = 10
	errs := race(n, func(i int) error {
		_, err := s.Create(t.Context(), &tenancy.Tenant{Identifier: "acme", Name: fmt.Sprintf("Acme %d", i), Domains: []string{fmt.Sprintf("d%d.example.com", i)}})
		return err
	})
	checkOneWinner(t, errs, "identifier", "acme")
	if c := count(t, s, ""); c != 1 {
		t.Errorf("Count = %d, want 1", c)
	}
	// Only the winner's domain was kept.
	winner, err := s.GetByIdentifier(t.Context(), "acme")
	if err != nil {
		t.Fatalf("GetByIdentifier: %v", err)
	}
	for i := range n {
		d := fmt.Sprintf("d%d.example.com", i)
		got, err := s.GetByDomain(t.Context(), d)
		if slices.Contains(winner.Domains, d) {
			if err != nil || got.ID != winner.ID {
				t.Errorf("GetByDomain(%s) = %v, %v; want the winner", d, got, err)
			}
		} else {
			wantIs(t, "loser's domain "+d, err, tenancy.ErrTenantNotFound)
		}
	}
}

func testConcurrentCreateSameDomain(t *testing.T, s tenancy.Store) {
	const n = 10
	errs := race(n, func(i int) error {
		_, err := s.Create(t.Context(), &tenancy.Tenant{Identifier: fmt.Sprintf("tenant-%d", i), Name: "T", Domains: []string{"shared.example.com"}})
		return err
	})
	checkOneWinner(t, errs, "domain", "shared.example.com")
	if c := count(t, s, ""); c != 1 {
		t.Errorf("Count = %d, want 1", c)
	}
}
