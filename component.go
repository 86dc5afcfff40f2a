package tenancy

import "context"

// Component is a part of a service that keeps something of each tenant
// beyond its record and its storage: cache entries, rate-limit budgets,
// migration journal records, per-tenant metrics, queued jobs. Its two
// methods are what purging a tenant needs from it: forget the tenant, and
// report what is left of it.
//
// The lifecycle manager purges a tenant by asking every component of
// lifecycle.Config.Components to forget it, then checking that none reports
// a residue. In this module, the cache (cache.Store), the rate limiter
// (limit.Limiter), the migration runner (migrate.Runner) and the Prometheus
// metrics (promtenancy.Metrics) are components. The tenant store is not: it
// holds the record, which the manager removes last, through Store.Purge.
type Component interface {
	// Forget removes everything the component holds of t. It is
	// idempotent: forgetting a tenant the component holds nothing of
	// succeeds. t is the tenant as it was before the purge; its storage may
	// be gone, and its record too.
	Forget(ctx context.Context, t *Tenant) error
	// Residue describes what the component still holds of t, one item per
	// entry ("redis key tenancy:tenant:id:t-1"); empty when nothing is left.
	// An error means the component could not tell, not that something is
	// left.
	Residue(ctx context.Context, t *Tenant) ([]string, error)
}
