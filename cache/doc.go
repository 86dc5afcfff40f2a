// Package cache caches application data per tenant (the tenant records
// themselves are store/cache's): Get, Set, Delete, invalidation of a whole
// tenant or of a key prefix, TTLs, and GetOrLoad, which coalesces
// concurrent misses of a key into one load. Entries live in Redis, shared by
// every instance, or in process for a single instance.
//
// Every key is built from the tenant the context carries; a call without
// one fails with tenancy.ErrNoTenant, so no key can be built without a
// tenant. On Redis each entry is stored under generations (the tenant's,
// each ':'-ended prefix of its key, and the key's own) read with it in one
// round trip; Delete, InvalidatePrefix and InvalidateTenant move one of
// them on atomically, so that once they return no instance serves the old
// value, and a load that read the data before them cannot store it after.
//
// When Redis fails, reads miss, GetOrLoad loads, writes report
// ErrUnavailable, and every failure is counted (Metrics) and logged:
// requests still succeed. A Cache is a tenancy.Component: purging a tenant
// deletes all of its keys.
package cache
