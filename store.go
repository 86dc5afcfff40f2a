package tenancy

import (
	"context"
	"fmt"
)

// Store keeps tenant records. Implementations live in the store packages
// (memory, PostgreSQL, SQLite) and share one conformance suite; the cache
// package wraps any Store with a two-level cache.
//
// Lookups return an error wrapping ErrTenantNotFound when nothing matches,
// and ErrInvalidIdentifier or ErrInvalidID for a key that could never match,
// without querying anything. Writes return *DuplicateError for a taken ID,
// identifier, alias or domain, and *FieldError for an invalid field.
//
// Identifiers and aliases share one namespace, enforced by the store without
// races: no alias equals any other alias or any identifier. Custom domains
// are unique too, and resolve only once verified. Every write to a tenant,
// domains included, sets its UpdatedAt.
//
// Copies. A store never keeps what a caller passes in: changing a tenant
// after Create, or the Aliases or Metadata of an Update after the call,
// changes nothing stored. A tenant a store returns is a snapshot: later
// writes store a new value and never change one already returned. It may be
// shared with other callers (the cache hands the same *Tenant to every
// request that resolves it, so that a lookup allocates nothing): treat it as
// read-only, and Clone it before changing it. The conformance suite,
// store/storetest, checks both halves.
type Store interface {
	// Get returns the tenant with the given ID.
	Get(ctx context.Context, id string) (*Tenant, error)
	// GetByIdentifier returns the tenant with the given identifier.
	GetByIdentifier(ctx context.Context, identifier string) (*Tenant, error)
	// GetByAlias returns the tenant that has alias among its Aliases. The
	// alias is normalized with NormalizeAlias; one that is invalid matches
	// no tenant.
	GetByAlias(ctx context.Context, alias string) (*Tenant, error)
	// GetByDomain returns the tenant that holds domain among its Domains
	// and has verified it. An unverified domain matches nothing, exactly
	// like an unknown one. The domain is normalized with NormalizeDomain;
	// one that is invalid matches no tenant.
	GetByDomain(ctx context.Context, domain string) (*Tenant, error)
	// Create stores a new tenant. An empty ID is replaced by a new UUID and an
	// empty Status by StatusActive; CreatedAt and UpdatedAt are set. Its
	// Domains are added unverified, each with a new token, as AddDomain
	// adds them.
	Create(ctx context.Context, t *Tenant) (*Tenant, error)
	// Update changes the mutable fields that u sets.
	Update(ctx context.Context, id string, u Update) (*Tenant, error)
	// ListDomains returns the custom domains of tenant id, verified or not,
	// ordered by name.
	ListDomains(ctx context.Context, id string) ([]Domain, error)
	// AddDomain adds a custom domain to tenant id, unverified, with a new
	// token (NewDomainToken); it resolves once VerifyDomain marks it. Adding
	// a domain the tenant already holds returns it unchanged. A domain that
	// another tenant holds, verified or not, is a *DuplicateError; an
	// invalid one a *FieldError for "domain".
	AddDomain(ctx context.Context, id, domain string) (*Domain, error)
	// VerifyDomain marks the tenant's custom domain verified: from then on
	// GetByDomain finds the tenant by it. It checks nothing itself: call it
	// once the owner of the domain has been checked (package customdomain
	// does both). Verifying a verified domain keeps its VerifiedAt. It
	// returns ErrDomainNotFound when the tenant does not hold the domain.
	VerifyDomain(ctx context.Context, id, domain string) (*Domain, error)
	// RemoveDomain removes the tenant's custom domain, verified or not. It
	// returns ErrDomainNotFound when the tenant does not hold the domain.
	RemoveDomain(ctx context.Context, id, domain string) error
	// SetStatus changes the status and its reason.
	SetStatus(ctx context.Context, id string, status Status, reason string) (*Tenant, error)
	// Delete soft-deletes the tenant: its status becomes StatusDeleted and its
	// record stays, so it is refused rather than unknown.
	Delete(ctx context.Context, id string) (*Tenant, error)
	// Purge removes the record for good. It returns ErrTenantNotFound when
	// there is none.
	Purge(ctx context.Context, id string) error
	// List returns tenants ordered by identifier.
	List(ctx context.Context, p ListParams) ([]*Tenant, error)
	// Count returns how many tenants have the given status, or all of them
	// when status is empty.
	Count(ctx context.Context, status Status) (int, error)
}

// Update names the mutable fields to change; nil fields stay as they are.
// ID and Identifier never change.
type Update struct {
	Name      *string
	Tier      *string
	Isolation *Isolation
	Placement *string
	// Aliases, when non-nil, replaces the tenant's aliases (an empty slice
	// removes them all). Custom domains change through AddDomain,
	// VerifyDomain and RemoveDomain only, so that a domain is never
	// verified by accident.
	Aliases *[]string
	// Metadata, when non-nil, replaces the tenant's metadata.
	Metadata map[string]any
}

// Apply returns a copy of t with u applied, validated. Stores use it so that
// every implementation changes and checks the same fields the same way.
func (u Update) Apply(t *Tenant) (*Tenant, error) {
	c := t.Clone()
	if u.Name != nil {
		c.Name = *u.Name
	}
	if u.Tier != nil {
		c.Tier = *u.Tier
	}
	if u.Isolation != nil {
		c.Isolation = *u.Isolation
	}
	if u.Placement != nil {
		c.Placement = *u.Placement
	}
	if u.Aliases != nil {
		c.Aliases = *u.Aliases
	}
	if u.Metadata != nil {
		c.Metadata = cloneJSON(u.Metadata)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// ListParams selects and pages tenants for Store.List.
type ListParams struct {
	// Status, when set, keeps only tenants with that status.
	Status Status
	// After, when set, starts the page after this identifier (keyset
	// pagination: pass the last identifier of the previous page).
	After string
	// Limit caps the page size. Zero means DefaultListLimit; values above
	// MaxListLimit are lowered to it.
	Limit int
}

// List page sizes.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// PageLimit returns the effective Limit.
func (p ListParams) PageLimit() int {
	switch {
	case p.Limit <= 0:
		return DefaultListLimit
	case p.Limit > MaxListLimit:
		return MaxListLimit
	}
	return p.Limit
}

// ListAll returns every tenant of store with the given status (every
// tenant when status is empty), reading it page by page.
func ListAll(ctx context.Context, store Store, status Status) ([]*Tenant, error) {
	tenants := []*Tenant{}
	after := ""
	for {
		page, err := store.List(ctx, ListParams{Status: status, After: after, Limit: MaxListLimit})
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		tenants = append(tenants, page...)
		if len(page) < MaxListLimit {
			return tenants, nil
		}
		after = page[len(page)-1].Identifier
	}
}
