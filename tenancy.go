package tenancy

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Status is where a tenant is in its lifecycle. Only an active tenant is
// served; see [Tenant.CheckStatus].
type Status string

// Tenant statuses.
const (
	// StatusProvisioning marks a tenant whose storage is being created. It is
	// not served yet: requests get 503 with Retry-After.
	StatusProvisioning Status = "provisioning"
	// StatusActive marks a tenant that is served.
	StatusActive Status = "active"
	// StatusSuspended marks a tenant that is refused (403) but keeps its data.
	StatusSuspended Status = "suspended"
	// StatusDeleted marks a soft-deleted tenant: refused (403), data kept
	// until purged.
	StatusDeleted Status = "deleted"
	// StatusFailed marks a tenant whose provisioning failed; StatusReason
	// says why. It is not served (503).
	StatusFailed Status = "failed"
)

// Statuses lists every valid status, in lifecycle order.
var Statuses = []Status{StatusProvisioning, StatusActive, StatusSuspended, StatusDeleted, StatusFailed}

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Isolation names a data isolation strategy. A tenant may override the
// strategy its tier implies; see the isolation package.
type Isolation string

// Isolation strategies.
const (
	// IsolationDefault means "whatever the tenant's tier maps to".
	IsolationDefault Isolation = ""
	// IsolationRLS keeps the tenant's rows in shared tables guarded by
	// PostgreSQL row-level security.
	IsolationRLS Isolation = "rls"
	// IsolationSchema gives the tenant its own PostgreSQL schema.
	IsolationSchema Isolation = "schema"
	// IsolationDatabase gives the tenant its own database (PostgreSQL) or
	// file (SQLite).
	IsolationDatabase Isolation = "database"
)

// Valid reports whether i is a defined strategy or IsolationDefault.
func (i Isolation) Valid() bool {
	switch i {
	case IsolationDefault, IsolationRLS, IsolationSchema, IsolationDatabase:
		return true
	}
	return false
}

// Tenant is one customer of a multi-tenant service.
//
// Tenants returned by a Store may be shared with other goroutines (the cache
// hands out the same pointer to every request): treat them as read-only and
// call Clone before changing one.
type Tenant struct {
	// ID is the stable, immutable key of the tenant, e.g. "tenant-acme-001".
	// It is what rows carry in tenant_id and what jobs carry in their args.
	ID string `json:"id"`
	// Identifier is the slug that requests name the tenant by, in headers,
	// hosts, paths and tokens, e.g. "acme-corp". It is immutable because
	// schema and file names derive from it. See ValidateIdentifier.
	Identifier string `json:"identifier"`
	// Name is the display name.
	Name string `json:"name"`
	// Status is the lifecycle status.
	Status Status `json:"status"`
	// StatusReason says why the status was set, e.g. why provisioning failed.
	StatusReason string `json:"status_reason,omitempty"`
	// Placement names the database server that holds the tenant's data.
	// Empty means the default server.
	Placement string `json:"placement,omitempty"`
	// Tier is the plan the tenant is on, e.g. "enterprise" or "starter". It
	// selects rate limits, quotas and, in hybrid isolation, the strategy.
	Tier string `json:"tier,omitempty"`
	// Isolation overrides the strategy the tier implies. Empty means none.
	Isolation Isolation `json:"isolation,omitempty"`
	// Aliases are further names of the tenant under the host resolver's
	// base domain: single DNS labels, lowercase, such as "acme" for
	// "acme-corp", so that acme.example.com reaches it too. Identifiers and
	// aliases share one namespace: no alias equals another tenant's alias or
	// any tenant's identifier, so no tenant can take another's subdomain.
	Aliases []string `json:"aliases,omitempty"`
	// Domains are the tenant's custom domains, verified or not: host names
	// of two labels or more outside the base domain, such as "app.acme.com",
	// lowercase, without a trailing dot. One tenant holds a domain at a
	// time. A custom domain resolves only once it is verified (see Domain
	// and Store.VerifyDomain); Store.ListDomains tells which are.
	Domains []string `json:"domains,omitempty"`
	// Metadata is free-form JSON data about the tenant.
	Metadata map[string]any `json:"metadata,omitempty"`
	// CreatedAt is set by the store on Create.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is set by the store on every write.
	UpdatedAt time.Time `json:"updated_at"`
}

// Clone returns a deep copy of t that the caller may modify.
func (t *Tenant) Clone() *Tenant {
	if t == nil {
		return nil
	}
	c := *t
	c.Aliases = slices.Clone(t.Aliases)
	c.Domains = slices.Clone(t.Domains)
	if t.Metadata != nil {
		// Metadata is JSON data; a JSON round trip copies nested values too.
		c.Metadata = cloneJSON(t.Metadata)
	}
	return &c
}

func cloneJSON(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		return maps.Clone(m)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return maps.Clone(m)
	}
	return out
}

// CheckStatus reports whether t may be served: nil for an active tenant, and
// otherwise an error that wraps ErrTenantSuspended, ErrTenantDeleted or
// ErrTenantNotReady.
func (t *Tenant) CheckStatus() error {
	switch t.Status {
	case StatusActive:
		return nil
	case StatusSuspended:
		return ErrTenantSuspended
	case StatusDeleted:
		return ErrTenantDeleted
	default:
		return ErrTenantNotReady
	}
}

// maxNameLen bounds Name, in bytes.
const maxNameLen = 200

// Validate checks every field a store persists, and normalizes Aliases and
// Domains (lowercase, no trailing dot, sorted, without duplicates). Stores
// call it on Create; an invalid tenant is never written. That an alias or
// domain is free is the store's to check.
func (t *Tenant) Validate() error {
	if err := ValidateID(t.ID); err != nil {
		return err
	}
	if err := ValidateIdentifier(t.Identifier); err != nil {
		return err
	}
	if t.Name == "" || len(t.Name) > maxNameLen {
		return &FieldError{Field: "name", Reason: fmt.Sprintf("must be 1 to %d bytes", maxNameLen)}
	}
	if !t.Status.Valid() {
		return &FieldError{Field: "status", Reason: "unknown status"}
	}
	if t.Tier != "" {
		if err := validateLabel("tier", t.Tier); err != nil {
			return err
		}
	}
	if t.Placement != "" {
		if err := validateLabel("placement", t.Placement); err != nil {
			return err
		}
	}
	if !t.Isolation.Valid() {
		return &FieldError{Field: "isolation", Reason: "must be rls, schema, database or empty"}
	}
	if t.Metadata != nil {
		// Stores keep metadata as JSON; NaN, channels or functions cannot be.
		if _, err := json.Marshal(t.Metadata); err != nil {
			return &FieldError{Field: "metadata", Reason: "must be a JSON object"}
		}
	}
	aliases, err := NormalizeAliases(t.Aliases)
	if err != nil {
		return err
	}
	if slices.Contains(aliases, t.Identifier) {
		return &FieldError{Field: "aliases", Reason: "an alias must differ from the tenant's identifier"}
	}
	domains, err := NormalizeDomains(t.Domains)
	if err != nil {
		return err
	}
	t.Aliases, t.Domains = aliases, domains
	return nil
}

// NormalizeAliases validates aliases with NormalizeAlias and returns them
// lowercased, sorted and without duplicates. The error is a *FieldError
// for "aliases".
func NormalizeAliases(aliases []string) ([]string, error) {
	return normalizeAll(aliases, NormalizeAlias, "aliases",
		"an alias is one DNS label: 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'")
}

// NormalizeDomains validates custom domains with NormalizeDomain and returns
// them lowercased, without trailing dots, sorted and without duplicates.
// The error is a *FieldError for "domains".
func NormalizeDomains(domains []string) ([]string, error) {
	return normalizeAll(domains, NormalizeDomain, "domains",
		"a custom domain is a host name of two labels or more, not an IP address (use aliases for names under the base domain)")
}

func normalizeAll(in []string, norm func(string) (string, bool), field, reason string) ([]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(in))
	for _, v := range in {
		n, ok := norm(v)
		if !ok {
			return nil, &FieldError{Field: field, Reason: reason}
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// validateLabel checks short machine-readable labels such as tiers and
// placements: 1 to 63 bytes of [a-z0-9_-], starting with a letter.
func validateLabel(field, s string) error {
	if len(s) == 0 || len(s) > 63 || !isLower(s[0]) {
		return &FieldError{Field: field, Reason: "must be 1 to 63 characters of a-z, 0-9, '-' or '_', starting with a letter"}
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLower(c) && !isDigit(c) && c != '-' && c != '_' {
			return &FieldError{Field: field, Reason: "must be 1 to 63 characters of a-z, 0-9, '-' or '_', starting with a letter"}
		}
	}
	return nil
}
