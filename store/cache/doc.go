// Package cache wraps a tenancy.Store with a two-level cache: a bounded
// in-process L1 (otter, per-entry TTL) and an optional shared L2 in Redis.
//
// Every tenant is resolved on every request, so reads must be cheap: an L1 hit
// of GetByIdentifier allocates nothing. Misses go to Redis, then to the store,
// and fill both levels on the way back; concurrent misses for one key make a
// single store call. "Not found" is cached in L1 for a short time, so
// hammering random identifiers does not reach the store on every request.
//
// Writes go to the store and then invalidate the tenant's entries (by ID,
// identifier, every old and new alias and every old and new domain, the one
// a domain write names included) in L1, in Redis and, through a message on a
// Redis pub/sub channel, in the L1 of every other instance. A suspension
// made on one instance is therefore seen by all of them within about a
// second, not after the L1 TTL, and so is a domain that was just verified
// or removed: its "not found" entry, or its tenant, is dropped everywhere.
//
// Redis is an accelerator, never a dependency: when it fails, every operation
// is served from the store, the failure is counted and logged (at most once
// per interval), Redis is skipped for a second after each failure, and L1
// entries live at most a second, because invalidations from other instances
// can no longer arrive. Invalidations that could not reach Redis are retried
// in the background. When Redis is back, the cache uses it again without a
// restart, and L1 is flushed whenever the subscription is (re)established.
//
// Stale fills are refused at both levels: a read that started before an
// invalidation never writes its result into L1 or Redis after it. In Redis
// this uses a generation counter and a Lua script that touches the counter
// and the entry's key; on Redis Cluster, put a hash tag in the prefix (for
// example "{tenancy}:") so that all keys of the cache share one slot.
//
// A Store is also a tenancy.Component: list it in lifecycle.Config.Components
// and purging a tenant drops its entries everywhere, then checks this
// instance's L1 and Redis for any left. Lookups and failures are reported to
// Config.Metrics (promtenancy.Metrics counts them in Prometheus).
package cache
