package cache

import (
	"slices"

	"github.com/go-tenancy/tenancy"
)

// kind says which field of a tenant a key looks it up by.
type kind byte

const (
	kindID kind = iota + 1
	kindIdentifier
	kindDomain
	kindAlias
)

func (k kind) String() string {
	switch k {
	case kindID:
		return "id"
	case kindIdentifier:
		return "identifier"
	case kindDomain:
		return "domain"
	case kindAlias:
		return "alias"
	}
	return "unknown"
}

// key is an L1 key. It is a small comparable struct so that a lookup builds
// no string and allocates nothing.
type key struct {
	kind  kind
	value string
}

// redisKey returns the Redis key of k. Callers validate the value first, so
// an empty value or unknown kind is a bug in this package, and a key without
// its tenant would be shared by every tenant: it panics instead.
func (s *Store) redisKey(k key) string {
	if k.value == "" || k.kind < kindID || k.kind > kindAlias {
		panic("cache: Redis key built without a tenant ID, identifier, alias or domain")
	}
	return s.prefix + "tenant:" + k.kind.String() + ":" + k.value
}

// tenantKeys returns the L1 keys of the tenants' valid IDs, identifiers,
// aliases and domains, without duplicates. Invalid fields are skipped: they can never
// have been cached.
func tenantKeys(ts ...*tenancy.Tenant) []key {
	var keys []key
	add := func(k key) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, t := range ts {
		if t == nil {
			continue
		}
		if tenancy.ValidateID(t.ID) == nil {
			add(key{kindID, t.ID})
		}
		if tenancy.ValidateIdentifier(t.Identifier) == nil {
			add(key{kindIdentifier, t.Identifier})
		}
		for _, a := range t.Aliases {
			if n, ok := tenancy.NormalizeAlias(a); ok {
				add(key{kindAlias, n})
			}
		}
		for _, d := range t.Domains {
			if n, ok := tenancy.NormalizeDomain(d); ok {
				add(key{kindDomain, n})
			}
		}
	}
	return keys
}

// Keys returns the Redis keys this cache may hold for t: one for its ID, one
// for its identifier, one for each alias and one for each domain. Fields that are not valid are
// left out, since nothing is ever cached under them. A purge check can assert
// that none of them exists afterwards.
func (s *Store) Keys(t *tenancy.Tenant) []string {
	keys := tenantKeys(t)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = s.redisKey(k)
	}
	return out
}

// matches reports whether t is the tenant that k looks up, so that a Redis
// entry written under the wrong key is never served.
func (k key) matches(t *tenancy.Tenant) bool {
	switch k.kind {
	case kindID:
		return t.ID == k.value
	case kindIdentifier:
		return t.Identifier == k.value
	case kindDomain:
		return slices.Contains(t.Domains, k.value)
	case kindAlias:
		return slices.Contains(t.Aliases, k.value)
	}
	return false
}
