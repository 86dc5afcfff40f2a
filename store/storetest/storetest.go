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
		{"UpdateMovesAliases", testUpdateMovesAliases},
		{"UpdateDuplicateAlias", testUpdateDuplicateAlias},
		{"AliasesAndIdentifiersShareANamespace", testAliasesAndIdentifiersShareANamespace},
		{"DomainVerification", testDomainVerification},
		{"DomainDuplicate", testDomainDuplicate},
		{"DomainWritesRefused", testDomainWritesRefused},
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
		{"ConcurrentCreateSameAlias", testConcurrentCreateSameAlias},
		{"ConcurrentAliasAndIdentifierClaims", testConcurrentAliasAndIdentifierClaims},
		{"ConcurrentAddSameDomain", testConcurrentAddSameDomain},
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
		Aliases:      []string{"ACME", "acme", "acme-co."},
		Domains:      []string{"Acme.Example.COM.", "acme.example.com", "portal.acme.test"},
		Metadata:     map[string]any{"plan": map[string]any{"seats": 25, "addons": []any{"sso", "audit"}}, "vip": true},
		CreatedAt:    past,
		UpdatedAt:    past,
	}
	got := create(t, s, in)

	want := in.Clone()
	want.Aliases = []string{"acme", "acme-co"}
	want.Domains = []string{"acme.example.com", "portal.acme.test"}
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
	for _, a := range want.Aliases {
		byAlias, err := s.GetByAlias(ctx, a)
		if err != nil {
			t.Fatalf("GetByAlias(%q): %v", a, err)
		}
		equalTenant(t, byAlias, want)
	}
	// Create adds its domains unverified, each with a token of its own.
	domains := listDomains(t, s, got.ID)
	if names := domainNames(domains); !slices.Equal(names, want.Domains) {
		t.Fatalf("ListDomains = %q, want %q", names, want.Domains)
	}
	for _, d := range domains {
		checkNewDomain(t, d, got.ID)
		_, err := s.GetByDomain(ctx, d.Name)
		wantIs(t, "GetByDomain of an unverified domain "+d.Name, err, tenancy.ErrTenantNotFound)
	}
	if domains[0].Token == domains[1].Token {
		t.Errorf("two domains got the same token %q", domains[0].Token)
	}
	for _, d := range want.Domains {
		verify(t, s, got.ID, d)
		byDomain, err := s.GetByDomain(ctx, d)
		if err != nil {
			t.Fatalf("GetByDomain(%q) once verified: %v", d, err)
		}
		want.UpdatedAt = byDomain.UpdatedAt
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
		_, err = s.GetByAlias(ctx, "acme-two")
		wantIs(t, fmt.Sprintf("GetByAlias unknown (populated=%v)", populated), err, tenancy.ErrTenantNotFound)
		_, err = s.GetByAlias(ctx, "acme")
		wantIs(t, fmt.Sprintf("GetByAlias of an identifier (populated=%v)", populated), err, tenancy.ErrTenantNotFound)
		_, err = s.ListDomains(ctx, "t-2")
		wantIs(t, fmt.Sprintf("ListDomains unknown (populated=%v)", populated), err, tenancy.ErrTenantNotFound)
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
		_, err = s.ListDomains(ctx, id)
		wantIs(t, fmt.Sprintf("ListDomains(%q)", id), err, tenancy.ErrInvalidID)
		_, err = s.AddDomain(ctx, id, "acme.example.com")
		wantIs(t, fmt.Sprintf("AddDomain(%q)", id), err, tenancy.ErrInvalidID)
		_, err = s.VerifyDomain(ctx, id, "acme.example.com")
		wantIs(t, fmt.Sprintf("VerifyDomain(%q)", id), err, tenancy.ErrInvalidID)
		wantIs(t, fmt.Sprintf("RemoveDomain(%q)", id), s.RemoveDomain(ctx, id, "acme.example.com"), tenancy.ErrInvalidID)
	}
	badIdentifiers := []string{"", "ab", "Acme-Corp", " acme", "acme\n", "acme-", "1acme", "acme_corp", "../../etc", "a\"; DROP SCHEMA public; --", "аcme", strings.Repeat("a", tenancy.MaxIdentifierLen+1)}
	for _, ident := range badIdentifiers {
		_, err := s.GetByIdentifier(ctx, ident)
		wantIs(t, fmt.Sprintf("GetByIdentifier(%q)", ident), err, tenancy.ErrInvalidIdentifier)
	}
	// A domain that is no host name cannot be held by any tenant, nor can a
	// single label or an IPv4 address; an alias is a single label.
	badDomains := []string{"", ".", "acme..example.com", "-acme.com", "acme.com/x", "acme.com:8080", "' OR 1=1 --", "acme.example.com..", "acme", "10.0.0.1"}
	for _, d := range badDomains {
		_, err := s.GetByDomain(ctx, d)
		wantIs(t, fmt.Sprintf("GetByDomain(%q)", d), err, tenancy.ErrTenantNotFound)
		_, err = s.AddDomain(ctx, "t-1", d)
		wantFieldError(t, fmt.Sprintf("AddDomain(%q)", d), err, "domain")
	}
	for _, a := range []string{"", ".", "acme.example.com", "-acme", "acme_corp", "acme\n", "' OR 1=1 --", strings.Repeat("a", 64)} {
		_, err := s.GetByAlias(ctx, a)
		wantIs(t, fmt.Sprintf("GetByAlias(%q)", a), err, tenancy.ErrTenantNotFound)
	}
	// Nothing above wrote anything.
	if n := count(t, s, ""); n != 1 {
		t.Errorf("Count = %d after refused calls, want 1", n)
	}
}

func testDomainLookupNormalizes(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	want := create(t, s, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme", Aliases: []string{"acme"}, Domains: []string{"acme.example.com"}})
	verify(t, s, want.ID, "ACME.example.com.")
	want = get(t, s, want.ID)
	for _, d := range []string{"acme.example.com", "ACME.Example.Com", "acme.example.com.", "Acme.Example.Com."} {
		got, err := s.GetByDomain(ctx, d)
		if err != nil {
			t.Errorf("GetByDomain(%q): %v", d, err)
			continue
		}
		equalTenant(t, got, want)
	}
	for _, a := range []string{"acme", "ACME", "acme.", "Acme."} {
		got, err := s.GetByAlias(ctx, a)
		if err != nil {
			t.Errorf("GetByAlias(%q): %v", a, err)
			continue
		}
		equalTenant(t, got, want)
	}
	// Aliases and domains are looked up apart: neither lookup finds the
	// other's names.
	_, err := s.GetByDomain(ctx, "acme")
	wantIs(t, "GetByDomain of an alias", err, tenancy.ErrTenantNotFound)
	_, err = s.GetByAlias(ctx, "acme.example.com")
	wantIs(t, "GetByAlias of a domain", err, tenancy.ErrTenantNotFound)
	_, err = s.GetByAlias(ctx, "acme-corp")
	wantIs(t, "GetByAlias of an identifier", err, tenancy.ErrTenantNotFound)
}

func testCreateDuplicate(t *testing.T, s tenancy.Store) {
	create(t, s, &tenancy.Tenant{ID: "t-1", Identifier: "acme-corp", Name: "Acme", Aliases: []string{"acme"}, Domains: []string{"acme.example.com"}})
	cases := []struct {
		name         string
		tenant       *tenancy.Tenant
		field, value string
	}{
		{"id", &tenancy.Tenant{ID: "t-1", Identifier: "globex", Name: "Globex", Domains: []string{"globex.example.com"}}, "id", "t-1"},
		{"identifier", &tenancy.Tenant{ID: "t-2", Identifier: "acme-corp", Name: "Acme 2", Domains: []string{"globex.example.com"}}, "identifier", "acme-corp"},
		{"domain", &tenancy.Tenant{ID: "t-3", Identifier: "globex", Name: "Globex", Domains: []string{"globex.example.com", "ACME.example.com.", "zzz.example.com"}}, "domain", "acme.example.com"},
		{"identifier without ID", &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme 3"}, "identifier", "acme-corp"},
		{"identifier equal to an alias", &tenancy.Tenant{ID: "t-4", Identifier: "acme", Name: "Acme 4", Domains: []string{"globex.example.com"}}, "identifier", "acme"},
		{"alias", &tenancy.Tenant{ID: "t-5", Identifier: "globex", Name: "Globex", Aliases: []string{"gx", "ACME"}, Domains: []string{"globex.example.com"}}, "alias", "acme"},
		{"alias equal to an identifier", &tenancy.Tenant{ID: "t-6", Identifier: "globex", Name: "Globex", Aliases: []string{"acme-corp"}, Domains: []string{"globex.example.com"}}, "alias", "acme-corp"},
	}
	for _, c := range cases {
		_, err := s.Create(t.Context(), c.tenant)
		wantDuplicate(t, c.name, err, c.field, c.value)
	}
	// The failed creates left nothing behind: not the row, not its domains.
	if n := count(t, s, ""); n != 1 {
		t.Errorf("Count = %d after duplicate creates, want 1", n)
	}
	// Nothing the refused creates named is taken: another tenant gets it all.
	other := create(t, s, &tenancy.Tenant{Identifier: "globex", Name: "Globex", Aliases: []string{"gx"}, Domains: []string{"globex.example.com", "zzz.example.com"}})
	if names := domainNames(listDomains(t, s, other.ID)); !slices.Equal(names, []string{"globex.example.com", "zzz.example.com"}) {
		t.Errorf("ListDomains = %q", names)
	}
	for _, id := range []string{"t-2", "t-3", "t-4", "t-5", "t-6"} {
		_, err := s.Get(t.Context(), id)
		wantIs(t, "ID of a refused create "+id, err, tenancy.ErrTenantNotFound)
	}
	if names := domainNames(listDomains(t, s, "t-1")); !slices.Equal(names, []string{"acme.example.com"}) {
		t.Errorf("ListDomains(t-1) = %q, want [acme.example.com]", names)
	}
	if got, err := s.GetByAlias(t.Context(), "acme"); err != nil || got.ID != "t-1" {
		t.Errorf("GetByAlias(acme) = %v, %v; want t-1", got, err)
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
		{"single-label domain", func(tn *tenancy.Tenant) { tn.Domains = []string{"acme"} }, "domains", nil},
		{"IPv4 domain", func(tn *tenancy.Tenant) { tn.Domains = []string{"192.0.2.1"} }, "domains", nil},
		{"bad alias", func(tn *tenancy.Tenant) { tn.Aliases = []string{"acme_co"} }, "aliases", nil},
		{"alias with a dot", func(tn *tenancy.Tenant) { tn.Aliases = []string{"acme.co"} }, "aliases", nil},
		{"alias equal to the identifier", func(tn *tenancy.Tenant) { tn.Aliases = []string{"ACME-CORP"} }, "aliases", nil},
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
	// The identifier and the domain were never taken.
	tn := create(t, s, basic("acme-corp"))
	if _, err := s.AddDomain(t.Context(), tn.ID, "acme.example.com"); err != nil {
		t.Errorf("AddDomain after invalid creates: %v", err)
	}
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
		Aliases:   &[]string{"New.", "acme"},
		Metadata:  map[string]any{"new": map[string]any{"deep": []any{1, "two"}}},
	}
	got, err := s.Update(t.Context(), orig.ID, u)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := &tenancy.Tenant{
		ID: orig.ID, Identifier: "acme-corp", Name: "Acme 2", Status: tenancy.StatusActive,
		Tier: "enterprise", Isolation: tenancy.IsolationDatabase, Placement: "us-2",
		Aliases:   []string{"acme", "new"},
		Domains:   []string{"old.example.com"},
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

func testUpdateMovesAliases(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	a := create(t, s, &tenancy.Tenant{Identifier: "acme", Name: "Acme", Aliases: []string{"a1", "a2"}})
	got, err := s.Update(ctx, a.ID, tenancy.Update{Aliases: &[]string{"a2", "A3"}})
	if err != nil {
		t.Fatalf("Update aliases: %v", err)
	}
	if want := []string{"a2", "a3"}; !slices.Equal(got.Aliases, want) {
		t.Errorf("Aliases = %q, want %q", got.Aliases, want)
	}
	_, err = s.GetByAlias(ctx, "a1")
	wantIs(t, "old alias after the move", err, tenancy.ErrTenantNotFound)
	for _, al := range []string{"a2", "a3"} {
		if got, err := s.GetByAlias(ctx, al); err != nil || got.ID != a.ID {
			t.Errorf("GetByAlias(%q) = %v, %v; want %s", al, got, err, a.ID)
		}
	}

	// The alias given up is free for another tenant, as an alias or as an
	// identifier.
	b := create(t, s, &tenancy.Tenant{Identifier: "bravo", Name: "Bravo", Aliases: []string{"a1"}})
	if got, err := s.GetByAlias(ctx, "a1"); err != nil || got.ID != b.ID {
		t.Errorf("GetByAlias(a1) = %v, %v; want %s", got, err, b.ID)
	}

	// An empty list removes every alias; nil keeps them.
	if _, err := s.Update(ctx, b.ID, tenancy.Update{Name: ptr("Bravo 2")}); err != nil {
		t.Fatalf("Update name: %v", err)
	}
	if got := get(t, s, b.ID); !slices.Equal(got.Aliases, []string{"a1"}) {
		t.Errorf("Aliases = %q after an Update without Aliases, want [a1]", got.Aliases)
	}
	got, err = s.Update(ctx, a.ID, tenancy.Update{Aliases: &[]string{}})
	if err != nil {
		t.Fatalf("Update to no aliases: %v", err)
	}
	if len(got.Aliases) != 0 || len(get(t, s, a.ID).Aliases) != 0 {
		t.Errorf("Aliases = %q, want none", got.Aliases)
	}
	for _, al := range []string{"a2", "a3"} {
		_, err := s.GetByAlias(ctx, al)
		wantIs(t, "removed alias "+al, err, tenancy.ErrTenantNotFound)
	}
	create(t, s, basic("a2x"))
	create(t, s, &tenancy.Tenant{Identifier: "a3-corp", Name: "A3", Aliases: []string{"a2", "a3"}})
}

func testUpdateDuplicateAlias(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	a := create(t, s, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme", Aliases: []string{"acme"}})
	b := create(t, s, &tenancy.Tenant{Identifier: "bravo", Name: "Bravo", Aliases: []string{"bv"}})

	for _, c := range []struct {
		name, taken string
		aliases     []string
	}{
		{"another tenant's alias", "acme", []string{"bv", "new-bravo", "ACME"}},
		{"another tenant's identifier", "acme-corp", []string{"bv", "new-bravo", "acme-corp"}},
	} {
		_, err := s.Update(ctx, b.ID, tenancy.Update{Name: ptr("Renamed"), Aliases: &c.aliases})
		wantDuplicate(t, "taking "+c.name, err, "alias", c.taken)
	}

	// Nothing of the refused updates was written.
	equalTenant(t, get(t, s, b.ID), b)
	equalTenant(t, get(t, s, a.ID), a)
	_, err := s.GetByAlias(ctx, "new-bravo")
	wantIs(t, "alias of a refused update", err, tenancy.ErrTenantNotFound)
	if got, err := s.GetByAlias(ctx, "acme"); err != nil || got.ID != a.ID {
		t.Errorf("GetByAlias(acme) = %v, %v; want %s", got, err, a.ID)
	}

	// Keeping one's own alias is no conflict.
	if _, err := s.Update(ctx, a.ID, tenancy.Update{Aliases: &[]string{"acme", "acme-co"}}); err != nil {
		t.Errorf("Update keeping own alias: %v", err)
	}
}

// testAliasesAndIdentifiersShareANamespace checks that no tenant takes a
// subdomain another tenant answers to, in either direction, through any
// write, and that a name is free again once its holder lets it go.
func testAliasesAndIdentifiersShareANamespace(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	acme := create(t, s, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme", Aliases: []string{"acme"}})
	other := create(t, s, basic("other"))

	_, err := s.Create(ctx, &tenancy.Tenant{Identifier: "acme", Name: "Taker"})
	wantDuplicate(t, "identifier equal to an alias", err, "identifier", "acme")
	_, err = s.Create(ctx, &tenancy.Tenant{Identifier: "taker", Name: "Taker", Aliases: []string{"acme-corp"}})
	wantDuplicate(t, "alias equal to an identifier", err, "alias", "acme-corp")
	_, err = s.Create(ctx, &tenancy.Tenant{Identifier: "taker", Name: "Taker", Aliases: []string{"acme"}})
	wantDuplicate(t, "alias equal to an alias", err, "alias", "acme")
	_, err = s.Update(ctx, other.ID, tenancy.Update{Aliases: &[]string{"acme-corp"}})
	wantDuplicate(t, "update to an identifier", err, "alias", "acme-corp")
	_, err = s.Update(ctx, other.ID, tenancy.Update{Aliases: &[]string{"acme"}})
	wantDuplicate(t, "update to an alias", err, "alias", "acme")
	// A deleted tenant keeps its names: it is refused, not unknown.
	if _, err := s.Delete(ctx, acme.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Create(ctx, &tenancy.Tenant{Identifier: "taker", Name: "Taker", Aliases: []string{"acme"}})
	wantDuplicate(t, "alias of a deleted tenant", err, "alias", "acme")
	if n := count(t, s, ""); n != 2 {
		t.Fatalf("Count = %d after refused writes, want 2", n)
	}
	if got, err := s.GetByAlias(ctx, "acme"); err != nil || got.ID != acme.ID {
		t.Errorf("GetByAlias(acme) = %v, %v; want %s", got, err, acme.ID)
	}

	// Purged, both names are free: the identifier as an alias, the alias
	// as an identifier.
	if err := s.Purge(ctx, acme.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, other.ID, tenancy.Update{Aliases: &[]string{"acme-corp"}}); err != nil {
		t.Errorf("alias equal to a purged identifier: %v", err)
	}
	if _, err := s.Create(ctx, basic("acme")); err != nil {
		t.Errorf("identifier equal to a purged alias: %v", err)
	}
}

func testDomainVerification(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	acme := create(t, s, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme"})
	tick()
	added, err := s.AddDomain(ctx, acme.ID, "App.Acme.COM.")
	if err != nil {
		t.Fatalf("AddDomain: %v", err)
	}
	if added.Name != "app.acme.com" {
		t.Errorf("Name = %q, want app.acme.com", added.Name)
	}
	checkNewDomain(t, *added, acme.ID)
	after := get(t, s, acme.ID)
	if !slices.Equal(after.Domains, []string{"app.acme.com"}) {
		t.Errorf("Domains = %q after AddDomain", after.Domains)
	}
	if !after.UpdatedAt.After(acme.UpdatedAt) {
		t.Errorf("UpdatedAt = %v after AddDomain, want after %v", after.UpdatedAt, acme.UpdatedAt)
	}

	// Unverified, it resolves no more than an unknown domain does.
	_, unverified := s.GetByDomain(ctx, "app.acme.com")
	_, unknown := s.GetByDomain(ctx, "app.nobody.com")
	wantIs(t, "GetByDomain of an unverified domain", unverified, tenancy.ErrTenantNotFound)
	wantIs(t, "GetByDomain of an unknown domain", unknown, tenancy.ErrTenantNotFound)

	// Adding it again changes nothing, the token included.
	again, err := s.AddDomain(ctx, acme.ID, "app.acme.com")
	if err != nil {
		t.Fatalf("AddDomain again: %v", err)
	}
	if *again != *added {
		t.Errorf("AddDomain again = %+v, want %+v", again, added)
	}

	// Verification flips it.
	tick()
	verified := verify(t, s, acme.ID, "APP.acme.com")
	if verified.Name != "app.acme.com" || verified.Token != added.Token || !verified.CreatedAt.Equal(added.CreatedAt) || verified.TenantID != acme.ID {
		t.Errorf("VerifyDomain = %+v, want %+v verified", verified, added)
	}
	checkTime(t, "VerifiedAt", verified.VerifiedAt)
	got, err := s.GetByDomain(ctx, "app.acme.com")
	if err != nil || got.ID != acme.ID {
		t.Fatalf("GetByDomain once verified = %v, %v; want %s", got, err, acme.ID)
	}
	if !got.UpdatedAt.After(after.UpdatedAt) {
		t.Errorf("UpdatedAt = %v after VerifyDomain, want after %v", got.UpdatedAt, after.UpdatedAt)
	}
	if l := listDomains(t, s, acme.ID); len(l) != 1 || l[0] != *verified {
		t.Errorf("ListDomains = %+v, want [%+v]", l, verified)
	}
	// Verifying again keeps the first VerifiedAt; adding again keeps the
	// state.
	tick()
	if v := verify(t, s, acme.ID, "app.acme.com"); !v.VerifiedAt.Equal(verified.VerifiedAt) {
		t.Errorf("VerifiedAt = %v after a second VerifyDomain, want %v", v.VerifiedAt, verified.VerifiedAt)
	}
	if a, err := s.AddDomain(ctx, acme.ID, "app.acme.com"); err != nil || !a.Verified() {
		t.Errorf("AddDomain of a verified domain = %+v, %v; want it verified", a, err)
	}
	// Other writes leave domains as they are.
	if _, err := s.Update(ctx, acme.ID, tenancy.Update{Name: ptr("Acme 2"), Aliases: &[]string{"acme"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetStatus(ctx, acme.ID, tenancy.StatusSuspended, "x"); err != nil {
		t.Fatal(err)
	}
	if l := listDomains(t, s, acme.ID); len(l) != 1 || !l[0].VerifiedAt.Equal(verified.VerifiedAt) {
		t.Errorf("ListDomains after Update and SetStatus = %+v", l)
	}

	// A second domain, listed in order with the first.
	second, err := s.AddDomain(ctx, acme.ID, "acme.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if second.Token == added.Token {
		t.Errorf("two domains got the same token")
	}
	l := listDomains(t, s, acme.ID)
	if names := domainNames(l); !slices.Equal(names, []string{"acme.example.org", "app.acme.com"}) || l[0].Verified() || !l[1].Verified() {
		t.Errorf("ListDomains = %+v", l)
	}

	// Removed, it stops resolving; added back, it has a new token and must
	// be verified again.
	tick()
	before := get(t, s, acme.ID)
	if err := s.RemoveDomain(ctx, acme.ID, "app.acme.com."); err != nil {
		t.Fatalf("RemoveDomain: %v", err)
	}
	_, err = s.GetByDomain(ctx, "app.acme.com")
	wantIs(t, "GetByDomain after RemoveDomain", err, tenancy.ErrTenantNotFound)
	if tn := get(t, s, acme.ID); !slices.Equal(tn.Domains, []string{"acme.example.org"}) || !tn.UpdatedAt.After(before.UpdatedAt) {
		t.Errorf("after RemoveDomain: Domains = %q, UpdatedAt = %v (before %v)", tn.Domains, tn.UpdatedAt, before.UpdatedAt)
	}
	readded, err := s.AddDomain(ctx, acme.ID, "app.acme.com")
	if err != nil {
		t.Fatal(err)
	}
	if readded.Verified() || readded.Token == added.Token {
		t.Errorf("re-added domain = %+v: want unverified, with a new token", readded)
	}
	_, err = s.GetByDomain(ctx, "app.acme.com")
	wantIs(t, "GetByDomain of a re-added domain", err, tenancy.ErrTenantNotFound)
}

func testDomainDuplicate(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	acme := create(t, s, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme", Domains: []string{"acme.example.com"}})
	bravo := create(t, s, &tenancy.Tenant{Identifier: "bravo", Name: "Bravo", Domains: []string{"bravo.example.com"}})
	// Held unverified, and then verified: either way nobody else gets it.
	for _, verified := range []bool{false, true} {
		if verified {
			verify(t, s, acme.ID, "acme.example.com")
		}
		what := fmt.Sprintf(" (verified %v)", verified)
		_, err := s.AddDomain(ctx, bravo.ID, "ACME.example.com")
		wantDuplicate(t, "AddDomain of another tenant's domain"+what, err, "domain", "acme.example.com")
		_, err = s.Create(ctx, &tenancy.Tenant{Identifier: "taker", Name: "Taker", Domains: []string{"acme.example.com"}})
		wantDuplicate(t, "Create with another tenant's domain"+what, err, "domain", "acme.example.com")
		// Nor can it verify or remove it.
		_, err = s.VerifyDomain(ctx, bravo.ID, "acme.example.com")
		wantIs(t, "VerifyDomain of another tenant's domain"+what, err, tenancy.ErrDomainNotFound)
		wantIs(t, "RemoveDomain of another tenant's domain"+what, s.RemoveDomain(ctx, bravo.ID, "acme.example.com"), tenancy.ErrDomainNotFound)
		if l := listDomains(t, s, acme.ID); len(l) != 1 || l[0].Verified() != verified {
			t.Errorf("ListDomains(acme)%s = %+v", what, l)
		}
		if names := domainNames(listDomains(t, s, bravo.ID)); !slices.Equal(names, []string{"bravo.example.com"}) {
			t.Errorf("ListDomains(bravo)%s = %q", what, names)
		}
	}
	if got, err := s.GetByDomain(ctx, "acme.example.com"); err != nil || got.ID != acme.ID {
		t.Errorf("GetByDomain(acme.example.com) = %v, %v; want %s", got, err, acme.ID)
	}
	if n := count(t, s, ""); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
	// Once removed, it is free.
	if err := s.RemoveDomain(ctx, acme.ID, "acme.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDomain(ctx, bravo.ID, "acme.example.com"); err != nil {
		t.Errorf("AddDomain of a removed domain: %v", err)
	}
}

func testDomainWritesRefused(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	acme := create(t, s, &tenancy.Tenant{ID: "t-1", Identifier: "acme-corp", Name: "Acme", Domains: []string{"acme.example.com"}})
	_, err := s.AddDomain(ctx, "t-2", "other.example.com")
	wantIs(t, "AddDomain to an unknown tenant", err, tenancy.ErrTenantNotFound)
	_, err = s.VerifyDomain(ctx, "t-2", "acme.example.com")
	wantIs(t, "VerifyDomain of an unknown tenant", err, tenancy.ErrTenantNotFound)
	wantIs(t, "RemoveDomain of an unknown tenant", s.RemoveDomain(ctx, "t-2", "acme.example.com"), tenancy.ErrTenantNotFound)
	_, err = s.VerifyDomain(ctx, acme.ID, "other.example.com")
	wantIs(t, "VerifyDomain of a domain the tenant does not hold", err, tenancy.ErrDomainNotFound)
	wantIs(t, "RemoveDomain of a domain the tenant does not hold", s.RemoveDomain(ctx, acme.ID, "other.example.com"), tenancy.ErrDomainNotFound)
	for _, d := range []string{"acme", "not a host", "192.0.2.1"} {
		_, err = s.VerifyDomain(ctx, acme.ID, d)
		wantIs(t, fmt.Sprintf("VerifyDomain(%q)", d), err, tenancy.ErrDomainNotFound)
		wantIs(t, fmt.Sprintf("RemoveDomain(%q)", d), s.RemoveDomain(ctx, acme.ID, d), tenancy.ErrDomainNotFound)
	}
	equalTenant(t, get(t, s, acme.ID), acme)
	if l := listDomains(t, s, acme.ID); len(l) != 1 || l[0].Verified() {
		t.Errorf("ListDomains = %+v after refused writes", l)
	}
	// A tenant without domains lists none.
	if l := listDomains(t, s, create(t, s, basic("bravo")).ID); len(l) != 0 {
		t.Errorf("ListDomains of a tenant without domains = %+v", l)
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
		{"bad alias", tenancy.Update{Aliases: &[]string{"new", "bad_alias"}}, "aliases"},
		{"alias equal to the identifier", tenancy.Update{Aliases: &[]string{"acme-corp"}}, "aliases"},
		{"metadata that is not JSON", tenancy.Update{Name: ptr("New"), Metadata: map[string]any{"x": math.NaN()}}, "metadata"},
	}
	for _, c := range cases {
		_, err := s.Update(t.Context(), orig.ID, c.u)
		wantFieldError(t, c.name, err, c.field)
	}
	equalTenant(t, get(t, s, orig.ID), orig)
	_, err := s.GetByAlias(t.Context(), "new")
	wantIs(t, "alias of an invalid update", err, tenancy.ErrTenantNotFound)
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
	orig := create(t, s, &tenancy.Tenant{Identifier: "acme", Name: "Acme", Aliases: []string{"acme-co"}, Domains: []string{"acme.example.com"}})
	verify(t, s, orig.ID, "acme.example.com")
	orig = get(t, s, orig.ID)
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
		"GetByAlias":      func() (*tenancy.Tenant, error) { return s.GetByAlias(ctx, "acme-co") },
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
	orig := create(t, s, &tenancy.Tenant{ID: "t-1", Identifier: "acme", Name: "Acme", Aliases: []string{"acme-co"}, Domains: []string{"acme.example.com", "www.acme.example.com"}})
	oldToken := verify(t, s, orig.ID, "acme.example.com").Token
	keep := create(t, s, &tenancy.Tenant{Identifier: "bravo", Name: "Bravo", Domains: []string{"bravo.example.com"}})
	verify(t, s, keep.ID, "bravo.example.com")
	keep = get(t, s, keep.ID)
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
	_, err = s.GetByDomain(ctx, "acme.example.com")
	wantIs(t, "GetByDomain after Purge", err, tenancy.ErrTenantNotFound)
	_, err = s.GetByAlias(ctx, "acme-co")
	wantIs(t, "GetByAlias after Purge", err, tenancy.ErrTenantNotFound)
	_, err = s.ListDomains(ctx, orig.ID)
	wantIs(t, "ListDomains after Purge", err, tenancy.ErrTenantNotFound)
	wantIs(t, "second Purge", s.Purge(ctx, orig.ID), tenancy.ErrTenantNotFound)
	if n := count(t, s, ""); n != 1 {
		t.Errorf("Count = %d after Purge, want 1", n)
	}
	if got := list(t, s, tenancy.ListParams{}); !slices.Equal(identifiers(got), []string{"bravo"}) {
		t.Errorf("List after Purge = %q, want [bravo]", identifiers(got))
	}
	equalTenant(t, get(t, s, keep.ID), keep)

	// ID, identifier, alias and domains are free again; a domain comes
	// back unverified, with a new token.
	again := create(t, s, &tenancy.Tenant{ID: "t-1", Identifier: "acme", Name: "Acme reborn", Aliases: []string{"acme-co"}, Domains: []string{"acme.example.com"}})
	_, err = s.GetByDomain(ctx, "acme.example.com")
	wantIs(t, "GetByDomain of a purged tenant's domain, added again", err, tenancy.ErrTenantNotFound)
	if v := verify(t, s, again.ID, "acme.example.com"); v.Token == oldToken {
		t.Errorf("the domain kept its token %q across a purge", oldToken)
	}
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
		Identifier: "acme", Name: "Acme", Aliases: []string{"acme-co", "b"}, Domains: []string{"acme.example.com", "b.example.com"},
		Metadata: map[string]any{"nested": map[string]any{"k": "v"}, "list": []any{"x"}},
	}
	orig := create(t, s, in)
	want := get(t, s, orig.ID).Clone()

	in.Name = "changed"
	in.Domains[0] = "evil.example.com"
	in.Aliases[0] = "evil"
	in.Metadata["nested"].(map[string]any)["k"] = "changed"
	in.Metadata["list"].([]any)[0] = "y"
	equalTenant(t, get(t, s, orig.ID), want)

	aliases := []string{"new"}
	meta := map[string]any{"nested": map[string]any{"k": "v2"}}
	updated, err := s.Update(ctx, orig.ID, tenancy.Update{Aliases: &aliases, Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	want = updated.Clone()
	aliases[0] = "evil"
	meta["nested"].(map[string]any)["k"] = "changed"
	meta["added"] = true
	equalTenant(t, get(t, s, orig.ID), want)
	_, err = s.GetByAlias(ctx, "evil")
	wantIs(t, "alias written into an argument after the call", err, tenancy.ErrTenantNotFound)

	// Domain records handed out are the caller's to change, too.
	v := verify(t, s, orig.ID, "acme.example.com")
	v.Token, v.Name = "scribbled", "evil.example.com"
	l := listDomains(t, s, orig.ID)
	l[0].Token, l[0].VerifiedAt, l[1].Token = "scribbled", time.Time{}, "scribbled"
	l = listDomains(t, s, orig.ID)
	if len(l) != 2 || l[0].Name != "acme.example.com" || l[0].Token == "scribbled" || !l[0].Verified() || l[1].Token == "scribbled" {
		t.Errorf("ListDomains = %+v after changing returned domains", l)
	}
	_, err = s.GetByDomain(ctx, "evil.example.com")
	wantIs(t, "domain written into a returned record", err, tenancy.ErrTenantNotFound)
}

// testReturnsSnapshots: a tenant a store returned never changes afterwards;
// a write stores a new value. (Returned tenants may be shared between
// callers, so the suite, like any caller, never modifies one.)
func testReturnsSnapshots(t *testing.T, s tenancy.Store) {
	ctx := t.Context()
	orig := create(t, s, &tenancy.Tenant{
		Identifier: "acme", Name: "Acme", Tier: "starter", Aliases: []string{"acme-co"}, Domains: []string{"acme.example.com"},
		Metadata: map[string]any{"nested": map[string]any{"k": "v"}},
	})
	verify(t, s, orig.ID, "acme.example.com")
	byID := get(t, s, orig.ID)
	byIdent, err := s.GetByIdentifier(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	byAlias, err := s.GetByAlias(ctx, "acme-co")
	if err != nil {
		t.Fatal(err)
	}
	byDomain, err := s.GetByDomain(ctx, "acme.example.com")
	if err != nil {
		t.Fatal(err)
	}
	listed := list(t, s, tenancy.ListParams{})[0]
	held := map[string]*tenancy.Tenant{"Create": orig, "Get": byID, "GetByIdentifier": byIdent, "GetByAlias": byAlias, "GetByDomain": byDomain, "List": listed}
	want := make(map[string]*tenancy.Tenant, len(held))
	for name, tn := range held {
		want[name] = tn.Clone()
	}

	tick()
	aliases := []string{"other"}
	updated, err := s.Update(ctx, orig.ID, tenancy.Update{
		Name: ptr("Acme Corp"), Tier: ptr("enterprise"), Aliases: &aliases,
		Metadata: map[string]any{"nested": map[string]any{"k": "v2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	held["Update"], want["Update"] = updated, updated.Clone()
	if _, err := s.AddDomain(ctx, orig.ID, "other.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveDomain(ctx, orig.ID, "acme.example.com"); err != nil {
		t.Fatal(err)
	}
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
	if got := get(t, s, orig.ID); got.Name != "Acme Corp" || got.Status != tenancy.StatusDeleted || !slices.Equal(got.Domains, []string{"other.example.com"}) {
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
	// Only the winner's domain was kept: every other one is free.
	winner, err := s.GetByIdentifier(t.Context(), "acme")
	if err != nil {
		t.Fatalf("GetByIdentifier: %v", err)
	}
	other := create(t, s, basic("other"))
	for i := range n {
		d := fmt.Sprintf("d%d.example.com", i)
		if slices.Contains(winner.Domains, d) {
			verify(t, s, winner.ID, d)
			if got, err := s.GetByDomain(t.Context(), d); err != nil || got.ID != winner.ID {
				t.Errorf("GetByDomain(%s) = %v, %v; want the winner", d, got, err)
			}
		} else if _, err := s.AddDomain(t.Context(), other.ID, d); err != nil {
			t.Errorf("loser's domain %s is still taken: %v", d, err)
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

func testConcurrentCreateSameAlias(t *testing.T, s tenancy.Store) {
	const n = 10
	errs := race(n, func(i int) error {
		_, err := s.Create(t.Context(), &tenancy.Tenant{Identifier: fmt.Sprintf("tenant-%d", i), Name: "T", Aliases: []string{"shared"}})
		return err
	})
	checkOneWinner(t, errs, "alias", "shared")
	if c := count(t, s, ""); c != 1 {
		t.Errorf("Count = %d, want 1", c)
	}
}

// testConcurrentAliasAndIdentifierClaims races tenants that add the alias
// "shared" against creates of a tenant identified "shared": exactly one
// claim wins, whichever kind it is.
func testConcurrentAliasAndIdentifierClaims(t *testing.T, s tenancy.Store) {
	const n = 10
	ids := make([]string, n)
	for i := range n {
		if i%2 == 0 {
			ids[i] = create(t, s, basic(fmt.Sprintf("tenant-%d", i))).ID
		}
	}
	errs := race(n, func(i int) error {
		if i%2 == 0 {
			_, err := s.Update(t.Context(), ids[i], tenancy.Update{Aliases: &[]string{"shared"}})
			return err
		}
		_, err := s.Create(t.Context(), &tenancy.Tenant{Identifier: "shared", Name: fmt.Sprintf("Shared %d", i)})
		return err
	})
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case i%2 == 0:
			wantDuplicate(t, fmt.Sprintf("alias claim %d", i), err, "alias", "shared")
		default:
			wantDuplicate(t, fmt.Sprintf("identifier claim %d", i), err, "identifier", "shared")
		}
	}
	if wins != 1 {
		t.Fatalf("%d claims of \"shared\" succeeded, want exactly 1", wins)
	}
	byAlias, aliasErr := s.GetByAlias(t.Context(), "shared")
	byIdent, identErr := s.GetByIdentifier(t.Context(), "shared")
	if (aliasErr == nil) == (identErr == nil) {
		t.Errorf("GetByAlias = %v, %v and GetByIdentifier = %v, %v: want exactly one to find a tenant", byAlias, aliasErr, byIdent, identErr)
	}
}

func testConcurrentAddSameDomain(t *testing.T, s tenancy.Store) {
	const n = 10
	ids := make([]string, n)
	for i := range n {
		ids[i] = create(t, s, basic(fmt.Sprintf("tenant-%d", i))).ID
	}
	errs := race(n, func(i int) error {
		_, err := s.AddDomain(t.Context(), ids[i], "shared.example.com")
		return err
	})
	checkOneWinner(t, errs, "domain", "shared.example.com")
	holders := 0
	for _, id := range ids {
		holders += len(listDomains(t, s, id))
	}
	if holders != 1 {
		t.Errorf("%d tenants list the domain, want 1", holders)
	}
}
