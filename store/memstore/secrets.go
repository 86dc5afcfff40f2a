package memstore

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/credential"
)

var _ credential.Store = (*Store)(nil)

// secrets holds the tenants' hashed client secrets, apart from the tenant
// records.
type secrets struct {
	mu sync.Mutex
	m  map[string][]credential.Secret // tenant ID -> secrets, newest first
}

// PutSecret implements credential.Store.
func (s *Store) PutSecret(_ context.Context, sec credential.Secret, othersUntil time.Time) error {
	if err := tenancy.ValidateID(sec.TenantID); err != nil {
		return err
	}
	s.mu.RLock()
	_, ok := s.byID[sec.TenantID]
	s.mu.RUnlock()
	if !ok {
		return tenancy.ErrTenantNotFound
	}
	s.secrets.mu.Lock()
	defer s.secrets.mu.Unlock()
	if s.secrets.m == nil {
		s.secrets.m = map[string][]credential.Secret{}
	}
	list := s.secrets.m[sec.TenantID]
	for i, o := range list {
		if o.ExpiresAt.IsZero() || o.ExpiresAt.After(othersUntil) {
			list[i].ExpiresAt = othersUntil
		}
	}
	s.secrets.m[sec.TenantID] = append([]credential.Secret{sec}, list...)
	return nil
}

// GetSecret implements credential.Store.
func (s *Store) GetSecret(_ context.Context, tenantID, id string) (credential.Secret, error) {
	s.secrets.mu.Lock()
	defer s.secrets.mu.Unlock()
	for _, o := range s.secrets.m[tenantID] {
		if o.ID == id {
			return o, nil
		}
	}
	return credential.Secret{}, credential.ErrSecretNotFound
}

// ListSecrets implements credential.Store.
func (s *Store) ListSecrets(_ context.Context, tenantID string) ([]credential.Secret, error) {
	s.secrets.mu.Lock()
	defer s.secrets.mu.Unlock()
	return slices.Clone(s.secrets.m[tenantID]), nil
}

// DeleteSecrets implements credential.Store.
func (s *Store) DeleteSecrets(_ context.Context, tenantID, id string) (int, error) {
	s.secrets.mu.Lock()
	defer s.secrets.mu.Unlock()
	list := s.secrets.m[tenantID]
	kept := slices.DeleteFunc(slices.Clone(list), func(o credential.Secret) bool { return id == "" || o.ID == id })
	if len(kept) == 0 {
		delete(s.secrets.m, tenantID)
	} else {
		s.secrets.m[tenantID] = kept
	}
	return len(list) - len(kept), nil
}
