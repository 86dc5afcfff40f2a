// Package memstore is an in-process tenant store, for tests, examples and
// single-process deployments. Its contents are lost when the process exits.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/google/uuid"
)

// Store is an in-memory tenancy.Store. It is safe for concurrent use; the
// zero value is not: use New. Every write checks and changes its maps under
// one lock, so uniqueness holds under concurrency.
type Store struct {
	mu      sync.RWMutex
	byID    map[string]*tenancy.Tenant
	byIdent map[string]*tenancy.Tenant
	byAlias map[string]*tenancy.Tenant
	domains map[string]*tenancy.Domain
	now     func() time.Time
	secrets secrets
}

var _ tenancy.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		byID:    make(map[string]*tenancy.Tenant),
		byIdent: make(map[string]*tenancy.Tenant),
		byAlias: make(map[string]*tenancy.Tenant),
		domains: make(map[string]*tenancy.Domain),
		now:     func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
}

// Get implements tenancy.Store.
func (s *Store) Get(_ context.Context, id string) (*tenancy.Tenant, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	return s.lookup(s.byID, id)
}

// GetByIdentifier implements tenancy.Store.
func (s *Store) GetByIdentifier(_ context.Context, identifier string) (*tenancy.Tenant, error) {
	if err := tenancy.ValidateIdentifier(identifier); err != nil {
		return nil, err
	}
	return s.lookup(s.byIdent, identifier)
}

// GetByAlias implements tenancy.Store.
func (s *Store) GetByAlias(_ context.Context, alias string) (*tenancy.Tenant, error) {
	a, ok := tenancy.NormalizeAlias(alias)
	if !ok {
		return nil, fmt.Errorf("alias %w", tenancy.ErrTenantNotFound)
	}
	return s.lookup(s.byAlias, a)
}

// GetByDomain implements tenancy.Store.
func (s *Store) GetByDomain(_ context.Context, domain string) (*tenancy.Tenant, error) {
	d, ok := tenancy.NormalizeDomain(domain)
	if !ok {
		return nil, fmt.Errorf("domain %w", tenancy.ErrTenantNotFound)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec, ok := s.domains[d]
	if !ok || !rec.Verified() {
		return nil, tenancy.ErrTenantNotFound
	}
	return s.byID[rec.TenantID].Clone(), nil
}

func (s *Store) lookup(m map[string]*tenancy.Tenant, key string) (*tenancy.Tenant, error) {
	s.mu.RLock()
	t, ok := m[key]
	s.mu.RUnlock()
	if !ok {
		return nil, tenancy.ErrTenantNotFound
	}
	return t.Clone(), nil
}

// Create implements tenancy.Store.
func (s *Store) Create(_ context.Context, t *tenancy.Tenant) (*tenancy.Tenant, error) {
	c := t.Clone()
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.Status == "" {
		c.Status = tenancy.StatusActive
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.CreatedAt = s.now()
	c.UpdatedAt = c.CreatedAt

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[c.ID]; ok {
		return nil, &tenancy.DuplicateError{Field: "id", Value: c.ID}
	}
	if _, ok := s.byIdent[c.Identifier]; ok {
		return nil, &tenancy.DuplicateError{Field: "identifier", Value: c.Identifier}
	}
	if _, ok := s.byAlias[c.Identifier]; ok {
		return nil, &tenancy.DuplicateError{Field: "identifier", Value: c.Identifier}
	}
	if err := s.checkAliases(c); err != nil {
		return nil, err
	}
	for _, d := range c.Domains {
		if _, ok := s.domains[d]; ok {
			return nil, &tenancy.DuplicateError{Field: "domain", Value: d}
		}
	}
	for _, d := range c.Domains {
		s.domains[d] = &tenancy.Domain{Name: d, TenantID: c.ID, Token: tenancy.NewDomainToken(), CreatedAt: c.CreatedAt}
	}
	s.put(c)
	return c.Clone(), nil
}

// checkAliases reports an alias of c that another tenant holds as an alias
// or an identifier.
func (s *Store) checkAliases(c *tenancy.Tenant) error {
	for _, a := range c.Aliases {
		if o, ok := s.byAlias[a]; ok && o.ID != c.ID {
			return &tenancy.DuplicateError{Field: "alias", Value: a}
		}
		if _, ok := s.byIdent[a]; ok {
			// c's own identifier is refused by Validate.
			return &tenancy.DuplicateError{Field: "alias", Value: a}
		}
	}
	return nil
}

func (s *Store) put(c *tenancy.Tenant) {
	s.byID[c.ID] = c
	s.byIdent[c.Identifier] = c
	for _, a := range c.Aliases {
		s.byAlias[a] = c
	}
}

func (s *Store) remove(c *tenancy.Tenant) {
	delete(s.byID, c.ID)
	delete(s.byIdent, c.Identifier)
	for _, a := range c.Aliases {
		delete(s.byAlias, a)
	}
}

// Update implements tenancy.Store.
func (s *Store) Update(_ context.Context, id string, u tenancy.Update) (*tenancy.Tenant, error) {
	return s.modify(id, func(t *tenancy.Tenant) (*tenancy.Tenant, error) {
		c, err := u.Apply(t)
		if err != nil {
			return nil, err
		}
		return c, s.checkAliases(c)
	})
}

// SetStatus implements tenancy.Store.
func (s *Store) SetStatus(_ context.Context, id string, status tenancy.Status, reason string) (*tenancy.Tenant, error) {
	if !status.Valid() {
		return nil, &tenancy.FieldError{Field: "status", Reason: "unknown status"}
	}
	return s.modify(id, func(t *tenancy.Tenant) (*tenancy.Tenant, error) {
		c := t.Clone()
		c.Status, c.StatusReason = status, reason
		return c, nil
	})
}

// Delete implements tenancy.Store.
func (s *Store) Delete(ctx context.Context, id string) (*tenancy.Tenant, error) {
	return s.SetStatus(ctx, id, tenancy.StatusDeleted, "deleted")
}

// modify replaces tenant id by what change returns, under the write lock.
func (s *Store) modify(id string, change func(*tenancy.Tenant) (*tenancy.Tenant, error)) (*tenancy.Tenant, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.modifyLocked(id, change)
}

func (s *Store) modifyLocked(id string, change func(*tenancy.Tenant) (*tenancy.Tenant, error)) (*tenancy.Tenant, error) {
	old, ok := s.byID[id]
	if !ok {
		return nil, tenancy.ErrTenantNotFound
	}
	c, err := change(old)
	if err != nil {
		return nil, err
	}
	c.UpdatedAt = s.now()
	s.remove(old)
	s.put(c)
	return c.Clone(), nil
}

// Purge implements tenancy.Store.
func (s *Store) Purge(_ context.Context, id string) error {
	if err := tenancy.ValidateID(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byID[id]
	if !ok {
		return tenancy.ErrTenantNotFound
	}
	s.remove(t)
	for _, d := range t.Domains {
		delete(s.domains, d)
	}
	s.secrets.mu.Lock()
	delete(s.secrets.m, id)
	s.secrets.mu.Unlock()
	return nil
}

// ListDomains implements tenancy.Store.
func (s *Store) ListDomains(_ context.Context, id string) ([]tenancy.Domain, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.byID[id]
	if !ok {
		return nil, tenancy.ErrTenantNotFound
	}
	out := make([]tenancy.Domain, 0, len(t.Domains))
	for _, d := range t.Domains { // sorted by Validate
		out = append(out, *s.domains[d])
	}
	return out, nil
}

// AddDomain implements tenancy.Store.
func (s *Store) AddDomain(_ context.Context, id, domain string) (*tenancy.Domain, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	d, ok := tenancy.NormalizeDomain(domain)
	if !ok {
		return nil, &tenancy.FieldError{Field: "domain", Reason: "a custom domain is a host name of two labels or more, not an IP address"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[id]; !ok {
		return nil, tenancy.ErrTenantNotFound
	}
	if rec, ok := s.domains[d]; ok {
		if rec.TenantID != id {
			return nil, &tenancy.DuplicateError{Field: "domain", Value: d}
		}
		out := *rec
		return &out, nil
	}
	t, err := s.modifyLocked(id, func(t *tenancy.Tenant) (*tenancy.Tenant, error) {
		c := t.Clone()
		c.Domains = append(c.Domains, d)
		slices.Sort(c.Domains)
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	rec := &tenancy.Domain{Name: d, TenantID: id, Token: tenancy.NewDomainToken(), CreatedAt: t.UpdatedAt}
	s.domains[d] = rec
	out := *rec
	return &out, nil
}

// VerifyDomain implements tenancy.Store.
func (s *Store) VerifyDomain(_ context.Context, id, domain string) (*tenancy.Domain, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.held(id, domain)
	if err != nil {
		return nil, err
	}
	t, err := s.modifyLocked(id, func(t *tenancy.Tenant) (*tenancy.Tenant, error) { return t.Clone(), nil })
	if err != nil {
		return nil, err
	}
	if !rec.Verified() {
		// Records are replaced, never changed: ListDomains hands out copies.
		v := *rec
		v.VerifiedAt = t.UpdatedAt
		rec = &v
		s.domains[rec.Name] = rec
	}
	out := *rec
	return &out, nil
}

// RemoveDomain implements tenancy.Store.
func (s *Store) RemoveDomain(_ context.Context, id, domain string) error {
	if err := tenancy.ValidateID(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.held(id, domain)
	if err != nil {
		return err
	}
	_, err = s.modifyLocked(id, func(t *tenancy.Tenant) (*tenancy.Tenant, error) {
		c := t.Clone()
		c.Domains = slices.DeleteFunc(c.Domains, func(d string) bool { return d == rec.Name })
		if len(c.Domains) == 0 {
			c.Domains = nil
		}
		return c, nil
	})
	if err != nil {
		return err
	}
	delete(s.domains, rec.Name)
	return nil
}

// held returns the record of domain if tenant id holds it. The caller holds
// the lock.
func (s *Store) held(id, domain string) (*tenancy.Domain, error) {
	if _, ok := s.byID[id]; !ok {
		return nil, tenancy.ErrTenantNotFound
	}
	d, ok := tenancy.NormalizeDomain(domain)
	if !ok {
		return nil, tenancy.ErrDomainNotFound
	}
	rec, ok := s.domains[d]
	if !ok || rec.TenantID != id {
		return nil, tenancy.ErrDomainNotFound
	}
	return rec, nil
}

// List implements tenancy.Store.
func (s *Store) List(_ context.Context, p tenancy.ListParams) ([]*tenancy.Tenant, error) {
	s.mu.RLock()
	all := make([]*tenancy.Tenant, 0, len(s.byID))
	for _, t := range s.byID {
		if (p.Status == "" || t.Status == p.Status) && t.Identifier > p.After {
			all = append(all, t)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(all, func(a, b *tenancy.Tenant) int { return strings.Compare(a.Identifier, b.Identifier) })
	all = all[:min(len(all), p.PageLimit())]
	for i, t := range all {
		all[i] = t.Clone()
	}
	return all, nil
}

// Count implements tenancy.Store.
func (s *Store) Count(_ context.Context, status tenancy.Status) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if status == "" {
		return len(s.byID), nil
	}
	n := 0
	for _, t := range s.byID {
		if t.Status == status {
			n++
		}
	}
	return n, nil
}
