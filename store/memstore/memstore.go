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
// zero value is not: use New.
type Store struct {
	mu       sync.RWMutex
	byID     map[string]*tenancy.Tenant
	byIdent  map[string]*tenancy.Tenant
	byDomain map[string]*tenancy.Tenant
	now      func() time.Time
}

var _ tenancy.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		byID:     make(map[string]*tenancy.Tenant),
		byIdent:  make(map[string]*tenancy.Tenant),
		byDomain: make(map[string]*tenancy.Tenant),
		now:      func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
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

// GetByDomain implements tenancy.Store.
func (s *Store) GetByDomain(_ context.Context, domain string) (*tenancy.Tenant, error) {
	d, ok := tenancy.NormalizeHost(domain)
	if !ok {
		return nil, fmt.Errorf("domain %w", tenancy.ErrTenantNotFound)
	}
	return s.lookup(s.byDomain, d)
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
	if err := s.checkDomains(c); err != nil {
		return nil, err
	}
	s.put(c)
	return c.Clone(), nil
}

// checkDomains reports a domain of c that another tenant holds.
func (s *Store) checkDomains(c *tenancy.Tenant) error {
	for _, d := range c.Domains {
		if o, ok := s.byDomain[d]; ok && o.ID != c.ID {
			return &tenancy.DuplicateError{Field: "domain", Value: d}
		}
	}
	return nil
}

func (s *Store) put(c *tenancy.Tenant) {
	s.byID[c.ID] = c
	s.byIdent[c.Identifier] = c
	for _, d := range c.Domains {
		s.byDomain[d] = c
	}
}

func (s *Store) remove(c *tenancy.Tenant) {
	delete(s.byID, c.ID)
	delete(s.byIdent, c.Identifier)
	for _, d := range c.Domains {
		delete(s.byDomain, d)
	}
}

// Update implements tenancy.Store.
func (s *Store) Update(_ context.Context, id string, u tenancy.Update) (*tenancy.Tenant, error) {
	return s.modify(id, func(t *tenancy.Tenant) (*tenancy.Tenant, error) { return u.Apply(t) })
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

func (s *Store) modify(id string, change func(*tenancy.Tenant) (*tenancy.Tenant, error)) (*tenancy.Tenant, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.byID[id]
	if !ok {
		return nil, tenancy.ErrTenantNotFound
	}
	c, err := change(old)
	if err != nil {
		return nil, err
	}
	if err := s.checkDomains(c); err != nil {
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
	return nil
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
