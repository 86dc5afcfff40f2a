package tenancy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/store/memstore"
)

func TestValidateIdentifierTable(t *testing.T) {
	t.Parallel()
	valid := []string{"acme", "acme-corp", "a1b", "abc", strings.Repeat("a", 56), "t-rex", "a--b"}
	invalid := []string{
		"", "ab", " acme", "acme ", "acme\n", "ACME", "Acme-corp", "1acme", "-acme", "acme-", "acme_corp",
		"acme.corp", "acme/corp", "../x", `a"; drop schema public; --`, "аcme", "ａcme", strings.Repeat("a", 57),
	}
	for _, s := range valid {
		if err := tenancy.ValidateIdentifier(s); err != nil {
			t.Errorf("ValidateIdentifier(%q) = %v", s, err)
		}
	}
	for _, s := range invalid {
		if err := tenancy.ValidateIdentifier(s); !errors.Is(err, tenancy.ErrInvalidIdentifier) {
			t.Errorf("ValidateIdentifier(%q) = %v, want ErrInvalidIdentifier", s, err)
		}
	}
}

func TestValidateID(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"tenant-acme-001", "0d9e3b1c-2f4a-4b5c-8d6e-7f8091a2b3c4", "A_b-1", strings.Repeat("x", 64)} {
		if err := tenancy.ValidateID(s); err != nil {
			t.Errorf("ValidateID(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "-x", "_x", "a b", "a'b", "a;b", "x\n", strings.Repeat("x", 65), "é"} {
		if err := tenancy.ValidateID(s); !errors.Is(err, tenancy.ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidID", s, err)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Acme.Example.COM", "acme.example.com", true},
		{"acme.example.com.", "acme.example.com", true},
		{"acme", "acme", true},
		{"xn--80ak6aa92e.com", "xn--80ak6aa92e.com", true},
		{"", "", false},
		{".", "", false},
		{"a..b", "", false},
		{"-a.com", "", false},
		{"a-.com", "", false},
		{"a_b.com", "", false},
		{"аcme.com", "", false},
		{"acme.com:8000", "", false},
		{strings.Repeat("a", 64) + ".com", "", false},
	}
	for _, tt := range tests {
		got, ok := tenancy.NormalizeHost(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func validTenant() *tenancy.Tenant {
	return &tenancy.Tenant{ID: "tenant-acme-001", Identifier: "acme-corp", Name: "Acme Corp", Status: tenancy.StatusActive}
}

func TestTenantValidate(t *testing.T) {
	t.Parallel()
	tn := validTenant()
	tn.Domains = []string{"Acme.Example.com.", "www.acme.example.com", "acme.example.com"}
	tn.Aliases = []string{"ACME", "acme.", "acme-co"}
	if err := tn.Validate(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(tn.Domains, ",") != "acme.example.com,www.acme.example.com" {
		t.Fatalf("domains not normalized: %v", tn.Domains)
	}
	if strings.Join(tn.Aliases, ",") != "acme,acme-co" {
		t.Fatalf("aliases not normalized: %v", tn.Aliases)
	}
	bad := []func(*tenancy.Tenant){
		func(t *tenancy.Tenant) { t.ID = "" },
		func(t *tenancy.Tenant) { t.Identifier = "ACME" },
		func(t *tenancy.Tenant) { t.Name = "" },
		func(t *tenancy.Tenant) { t.Name = strings.Repeat("n", 201) },
		func(t *tenancy.Tenant) { t.Status = "paused" },
		func(t *tenancy.Tenant) { t.Tier = "Gold" },
		func(t *tenancy.Tenant) { t.Placement = "eu west" },
		func(t *tenancy.Tenant) { t.Isolation = "table" },
		func(t *tenancy.Tenant) { t.Domains = []string{"bad_domain.com"} },
		func(t *tenancy.Tenant) { t.Domains = []string{"acme"} },
		func(t *tenancy.Tenant) { t.Domains = []string{"10.0.0.1"} },
		func(t *tenancy.Tenant) { t.Aliases = []string{"acme.example.com"} },
		func(t *tenancy.Tenant) { t.Aliases = []string{"-acme"} },
		func(t *tenancy.Tenant) { t.Aliases = []string{"acme-corp"} },
		func(t *tenancy.Tenant) { t.Metadata = map[string]any{"f": func() {}} },
	}
	for i, mutate := range bad {
		tn := validTenant()
		mutate(tn)
		err := tn.Validate()
		var fe *tenancy.FieldError
		if err == nil || (!errors.As(err, &fe) && !errors.Is(err, tenancy.ErrInvalidID) && !errors.Is(err, tenancy.ErrInvalidIdentifier)) {
			t.Errorf("case %d: Validate() = %v", i, err)
		}
	}
}

func TestNormalizeAliasAndDomain(t *testing.T) {
	t.Parallel()
	aliases := []struct {
		in, want string
		ok       bool
	}{
		{"acme", "acme", true},
		{"ACME.", "acme", true},
		{"a", "a", true},
		{"123", "123", true},
		{strings.Repeat("a", 63), strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), "", false},
		{"acme.example.com", "", false},
		{"-acme", "", false},
		{"acme_co", "", false},
		{"", "", false},
		{".", "", false},
		{"аcme", "", false},
	}
	for _, c := range aliases {
		if got, ok := tenancy.NormalizeAlias(c.in); got != c.want || ok != c.ok {
			t.Errorf("NormalizeAlias(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	domains := []struct {
		in, want string
		ok       bool
	}{
		{"app.acme.com", "app.acme.com", true},
		{"App.Acme.COM.", "app.acme.com", true},
		{"acme.localhost", "acme.localhost", true},
		{"a.b2", "a.b2", true},
		{"acme", "", false},
		{"acme.", "", false},
		{"10.0.0.1", "", false},
		{"host.123", "", false},
		{"1.2.3.4.5", "", false},
		{"acme..com", "", false},
		{"acme.com:443", "", false},
		{"", "", false},
	}
	for _, c := range domains {
		if got, ok := tenancy.NormalizeDomain(c.in); got != c.want || ok != c.ok {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestNewDomainToken(t *testing.T) {
	t.Parallel()
	a, b := tenancy.NewDomainToken(), tenancy.NewDomainToken()
	if len(a) != 32 || strings.Trim(a, "0123456789abcdef") != "" || a == b {
		t.Errorf("NewDomainToken = %q, %q: want two different 32-digit lowercase hex tokens", a, b)
	}
}

func TestCheckStatus(t *testing.T) {
	t.Parallel()
	want := map[tenancy.Status]error{
		tenancy.StatusActive:       nil,
		tenancy.StatusSuspended:    tenancy.ErrTenantSuspended,
		tenancy.StatusDeleted:      tenancy.ErrTenantDeleted,
		tenancy.StatusProvisioning: tenancy.ErrTenantNotReady,
		tenancy.StatusFailed:       tenancy.ErrTenantNotReady,
	}
	for s, w := range want {
		tn := validTenant()
		tn.Status = s
		if err := tn.CheckStatus(); !errors.Is(err, w) || (w == nil && err != nil) {
			t.Errorf("%s: CheckStatus() = %v, want %v", s, err, w)
		}
	}
}

func TestCloneIsDeep(t *testing.T) {
	t.Parallel()
	tn := validTenant()
	tn.Domains = []string{"acme.example.com"}
	tn.Aliases = []string{"acme"}
	tn.Metadata = map[string]any{"plan": map[string]any{"seats": 5.0}}
	c := tn.Clone()
	c.Domains[0] = "changed"
	c.Aliases[0] = "changed"
	c.Metadata["plan"].(map[string]any)["seats"] = 9.0
	if tn.Domains[0] != "acme.example.com" || tn.Aliases[0] != "acme" || tn.Metadata["plan"].(map[string]any)["seats"] != 5.0 {
		t.Fatal("Clone shares domains, aliases or metadata with the original")
	}
}

func TestUpdateApply(t *testing.T) {
	t.Parallel()
	tn := validTenant()
	name, tier := "Acme Inc", "enterprise"
	aliases := []string{"ACME"}
	got, err := tenancy.Update{Name: &name, Tier: &tier, Aliases: &aliases}.Apply(tn)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != name || got.Tier != tier || got.Aliases[0] != "acme" || got.ID != tn.ID || got.Identifier != tn.Identifier {
		t.Fatalf("Apply: %+v", got)
	}
	if tn.Name != "Acme Corp" {
		t.Fatal("Apply changed its input")
	}
	bad := "Bad Tier"
	if _, err := (tenancy.Update{Tier: &bad}).Apply(tn); !errors.Is(err, tenancy.ErrInvalidTenant) {
		t.Fatalf("invalid update: %v", err)
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	if _, ok := tenancy.FromContext(context.Background()); ok {
		t.Fatal("empty context reports a tenant")
	}
	if _, ok := tenancy.FromContext(tenancy.WithTenant(context.Background(), nil)); ok {
		t.Fatal("nil tenant reported as present")
	}
	tn := validTenant()
	got, ok := tenancy.FromContext(tenancy.WithTenant(context.Background(), tn))
	if !ok || got != tn {
		t.Fatal("tenant not returned")
	}
}

func TestClaimsContext(t *testing.T) {
	t.Parallel()
	if c, ok := tenancy.ClaimsFromContext(context.Background()); ok || c != nil {
		t.Fatalf("empty context reports claims %v", c)
	}
	if _, ok := tenancy.ClaimsFromContext(tenancy.WithClaims(context.Background(), nil)); ok {
		t.Fatal("nil claims reported as present")
	}
	type custom struct{ role string }
	want := &custom{role: "admin"}
	got, ok := tenancy.ClaimsFromContext(tenancy.WithClaims(context.Background(), want))
	if !ok || got != want {
		t.Fatalf("ClaimsFromContext = %v, %v; want the value stored", got, ok)
	}
}

func TestLogHandlerAddsTenant(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(tenancy.NewLogHandler(slog.NewJSONHandler(&buf, nil))).With("svc", "notes")
	ctx := tenancy.WithTenant(context.Background(), validTenant())
	logger.InfoContext(ctx, "created")
	logger.InfoContext(context.Background(), "no tenant")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	if !strings.Contains(lines[0], `"tenant_id":"tenant-acme-001"`) || !strings.Contains(lines[0], `"tenant":"acme-corp"`) || !strings.Contains(lines[0], `"svc":"notes"`) {
		t.Fatalf("tenant attributes missing: %s", lines[0])
	}
	if strings.Contains(lines[1], `"tenant_id"`) {
		t.Fatalf("tenant attributes without a tenant: %s", lines[1])
	}
}

func TestListAllReadsEveryPage(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	const n = tenancy.MaxListLimit + 7
	for i := range n {
		tn := &tenancy.Tenant{ID: fmt.Sprintf("id-%04d", i), Identifier: fmt.Sprintf("t%04d", i), Name: "T", Status: tenancy.StatusActive}
		if i%3 == 0 {
			tn.Status = tenancy.StatusSuspended
		}
		if _, err := store.Create(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	all, err := tenancy.ListAll(ctx, store, "")
	if err != nil || len(all) != n {
		t.Fatalf("ListAll = %d tenants, %v; want %d", len(all), err, n)
	}
	seen := map[string]bool{}
	for _, tn := range all {
		seen[tn.ID] = true
	}
	if len(seen) != n {
		t.Fatalf("ListAll returned %d distinct tenants of %d", len(seen), n)
	}
	suspended, err := tenancy.ListAll(ctx, store, tenancy.StatusSuspended)
	if err != nil || len(suspended) != (n+2)/3 {
		t.Fatalf("ListAll(suspended) = %d tenants, %v; want %d", len(suspended), err, (n+2)/3)
	}
}
