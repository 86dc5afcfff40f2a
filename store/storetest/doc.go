// Package storetest is the conformance suite for tenancy.Store
// implementations. Every store in this module (memory, PostgreSQL, SQLite)
// runs it, and a store written elsewhere can run it too:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tenancy.Store {
//			return mystore.New(...) // a fresh, empty store
//		})
//	}
//
// The suite covers the whole contract documented on tenancy.Store: defaults
// filled by Create, lookups by ID, identifier, alias and verified domain,
// validation before any query, duplicate and field errors, partial updates,
// alias moves, the one namespace of aliases and identifiers (collisions
// both ways, and under concurrency), custom domains (unique, unverified
// ones never found by GetByDomain, verification flipping that, removal),
// soft delete and purge, ordered keyset listing, counts, metadata round
// trips, copy semantics and concurrent creates.
//
// Copy semantics are those tenancy.Store documents: a store keeps no
// reference to its arguments, and a tenant it returned never changes
// afterwards. Returned tenants may be shared between callers (the cache
// hands the same one to every request), so the suite never modifies one,
// and it accepts a store that returns the same pointer twice.
package storetest
