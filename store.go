package tenancy

import "context"

// Store keeps tenant records. Implementations live in the store packages
// (memory, PostgreSQL, SQLite) and share one conformance suite; the cache
// package wraps any Store with a two-level cache.
//
// Lookups return an error wrapping ErrTenantNotFound when nothing matches,
// and ErrInvalidIdentifier or ErrInvalidID for a key that could never match,
// without querying anything. Writes return *DuplicateError for a taken ID,
// identifier or domain, and *FieldError for an invalid field.
//
// Copies. A store never keeps what a caller passes in: changing a tenant
// after Create, or the Domains or Metadata of an Update after the call,
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
	// GetByDomain returns the tenant that lists domain (a normalized host name
	// or alias) among its Domains.
	GetByDomain(ctx context.Context, domain string) (*Tenant, error)
	// Create stores a new tenant. An empty ID is replaced by a new UUID and an
	// empty Status by StatusActive; CreatedAt and UpdatedAt are set.
	Create(ctx context.Context, t *Tenant) (*Tenant, error)
	// Update changes the mutable fields that u sets.
	Update(ctx context.Context, id string, u Update) (*Tenant, error)
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
	// Domains, when non-nil, replaces the tenant's domains (an empty slice
	// removes them all).
	Domains *[]string
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
	if u.Domains != nil {
		c.Domains = *u.Domains
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
