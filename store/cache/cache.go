package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// Defaults for Config.
const (
	DefaultSize        = 10_000
	DefaultTTL         = 30 * time.Second
	DefaultNegativeTTL = 2 * time.Second
	DefaultRedisTTL    = 5 * time.Minute
	DefaultPrefix      = "tenancy:"
	DefaultLoadTimeout = 10 * time.Second
)

// clockResolution is how often L1 reads the time. Reading the precise time
// costs as much as the rest of an L1 hit on some machines; L1 lifetimes are
// seconds, so being off by this much does not matter.
const clockResolution = 10 * time.Millisecond

// degradedTTL caps the L1 TTL while Redis is failing: invalidations from
// other instances cannot arrive then, so L1 must not hold entries for long.
const degradedTTL = time.Second

// Config configures a Store. The zero value is valid: an L1-only cache with
// the defaults below. Zero or negative sizes and durations mean the default.
type Config struct {
	// Size is the maximum number of L1 entries. Default DefaultSize (10_000).
	Size int
	// TTL is how long L1 keeps a found tenant. Default DefaultTTL (30s).
	// Invalidation makes writes visible long before that.
	TTL time.Duration
	// NegativeTTL is how long L1 remembers that nothing matched a key.
	// Default DefaultNegativeTTL (2s). Negative results are not kept in Redis.
	NegativeTTL time.Duration
	// Redis is the L2 cache and the invalidation channel. Nil means L1 only,
	// with no L2 and no broadcast: only right for a single instance. Give the
	// client short timeouts and few retries (and ContextTimeoutEnabled):
	// the first failing call of an outage pays them before Redis is skipped.
	Redis redis.UniversalClient
	// RedisTTL is how long Redis keeps a tenant. Default DefaultRedisTTL (5m).
	// It bounds staleness if an invalidation is lost altogether.
	RedisTTL time.Duration
	// Prefix starts every Redis key: Prefix+"tenant:id:"+ID, likewise
	// "tenant:identifier:", "tenant:alias:" and "tenant:domain:", and
	// Prefix+"generation",
	// the invalidation counter. The pub/sub channel is Prefix+"invalidate".
	// Default DefaultPrefix ("tenancy:"). On Redis Cluster include a hash
	// tag, such as "{tenancy}:", so that all keys share one slot.
	Prefix string
	// LoadTimeout bounds a shared load from Redis and the store. A load runs
	// on behalf of every caller waiting for the same key, so it ignores the
	// cancellation of any one of them; each caller still returns when its own
	// context ends. Default DefaultLoadTimeout (10s).
	LoadTimeout time.Duration
	// Logger receives Redis failures (at most one line per 10s, with a count
	// of the ones left out) and recoveries. Default slog.Default(), so that an
	// outage is visible without configuration.
	Logger *slog.Logger
	// Metrics counts lookups and failures; promtenancy.Metrics counts them
	// in Prometheus. Default nil: nothing is counted.
	Metrics Metrics
}

// Store is a tenancy.Store that caches lookups of the store it wraps. It is
// safe for concurrent use; the zero value is not: use New. Call Close when
// done, to stop its background goroutines.
type Store struct {
	store       tenancy.Store
	l1          *otter.Cache[key, *tenancy.Tenant]
	clock       *otter.CoarseClock
	ttl         time.Duration
	negativeTTL time.Duration
	loadTimeout time.Duration
	logger      *slog.Logger
	metrics     Metrics
	flight      singleflight.Group
	prefix      string
	closeOnce   sync.Once

	// gen changes on every L1 invalidation. A load fills L1 only if gen has
	// not changed since the load started, so it never writes back a value
	// read before a concurrent invalidation.
	gen atomic.Uint64

	redis *redisLevel // nil without Redis
}

var _ tenancy.Store = (*Store)(nil)

// New returns a cache in front of store. With cfg.Redis set it starts a
// goroutine that listens for invalidations and one that probes Redis and
// retries failed invalidations; Close stops them. New does no I/O: if Redis
// is down, the cache starts anyway and connects when Redis is back.
//
// New panics if store is nil: that is a programming error.
func New(store tenancy.Store, cfg Config) *Store {
	if store == nil {
		panic("cache: New called with a nil store")
	}
	s := &Store{
		store:       store,
		ttl:         positive(cfg.TTL, DefaultTTL),
		negativeTTL: positive(cfg.NegativeTTL, DefaultNegativeTTL),
		loadTimeout: positive(cfg.LoadTimeout, DefaultLoadTimeout),
		logger:      cfg.Logger,
		metrics:     cfg.Metrics,
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.metrics == nil {
		s.metrics = noMetrics{}
	}
	s.clock = otter.NewCoarseClock(clockResolution)
	s.l1 = otter.Must(&otter.Options[key, *tenancy.Tenant]{
		MaximumSize: positive(cfg.Size, DefaultSize),
		Clock:       s.clock,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[key, *tenancy.Tenant]) time.Duration {
			return s.l1TTL(e.Value)
		}),
	})
	s.prefix = cfg.Prefix
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if cfg.Redis != nil {
		s.redis = newRedisLevel(s, cfg.Redis, positive(cfg.RedisTTL, DefaultRedisTTL))
		s.redis.start()
	}
	return s
}

// positive returns v, or def when v is zero or negative.
func positive[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Close stops the background goroutines. The cache keeps serving afterwards,
// but no longer hears about invalidations from other instances. Close does
// not close the Redis client or the wrapped store.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.redis != nil {
			err = s.redis.stop()
		}
		s.l1.StopAllGoroutines()
		s.clock.Stop()
	})
	return err
}

// l1TTL returns the L1 lifetime of a new entry; nil marks "not found".
func (s *Store) l1TTL(t *tenancy.Tenant) time.Duration {
	d := s.ttl
	if t == nil {
		d = s.negativeTTL
	}
	if s.redis != nil && s.redis.degraded.Load() {
		d = min(d, degradedTTL)
	}
	return d
}

// errInvalidDomain is returned for a domain that is not a host name. Like the
// stores, the cache reports it as not found.
var (
	errInvalidDomain = fmt.Errorf("invalid domain: %w", tenancy.ErrTenantNotFound)
	errInvalidAlias  = fmt.Errorf("invalid alias: %w", tenancy.ErrTenantNotFound)
)

// Get implements tenancy.Store.
func (s *Store) Get(ctx context.Context, id string) (*tenancy.Tenant, error) {
	if err := tenancy.ValidateID(id); err != nil {
		return nil, err
	}
	return s.get(ctx, key{kindID, id})
}

// GetByIdentifier implements tenancy.Store. An L1 hit allocates nothing.
func (s *Store) GetByIdentifier(ctx context.Context, identifier string) (*tenancy.Tenant, error) {
	if err := tenancy.ValidateIdentifier(identifier); err != nil {
		return nil, err
	}
	return s.get(ctx, key{kindIdentifier, identifier})
}

// GetByAlias implements tenancy.Store. The alias is normalized first, so
// "ACME" and "acme" share one entry.
func (s *Store) GetByAlias(ctx context.Context, alias string) (*tenancy.Tenant, error) {
	a, ok := tenancy.NormalizeAlias(alias)
	if !ok {
		return nil, errInvalidAlias
	}
	return s.get(ctx, key{kindAlias, a})
}

// GetByDomain implements tenancy.Store: verified domains only, as the store
// answers. The domain is normalized first, so "ACME.example.com." and
// "acme.example.com" share one entry.
func (s *Store) GetByDomain(ctx context.Context, domain string) (*tenancy.Tenant, error) {
	d, ok := tenancy.NormalizeDomain(domain)
	if !ok {
		return nil, errInvalidDomain
	}
	return s.get(ctx, key{kindDomain, d})
}

func (s *Store) get(ctx context.Context, k key) (*tenancy.Tenant, error) {
	if t, ok := s.l1.GetIfPresent(k); ok {
		if t == nil {
			s.metrics.CacheLookup(ctx, LevelL1, ResultNegativeHit)
			return nil, tenancy.ErrTenantNotFound
		}
		s.metrics.CacheLookup(ctx, LevelL1, ResultHit)
		return t, nil
	}
	s.metrics.CacheLookup(ctx, LevelL1, ResultMiss)
	return s.load(ctx, k)
}

// load collapses concurrent misses of k into one fetch. The flight key holds
// the L1 generation, so a caller arriving after an invalidation starts a new
// fetch instead of sharing one that may have read the old state.
func (s *Store) load(ctx context.Context, k key) (*tenancy.Tenant, error) {
	if ctx.Err() != nil {
		// No one would wait for the load.
		return nil, fmt.Errorf("cache: load tenant %s: %w", k.kind, context.Cause(ctx))
	}
	gen := s.gen.Load()
	fk := strconv.AppendUint(make([]byte, 0, 24+len(k.value)), gen, 10)
	fk = append(fk, ':', byte(k.kind), ':')
	fk = append(fk, k.value...)
	ch := s.flight.DoChan(string(fk), func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.loadTimeout)
		defer cancel()
		return s.fetch(lctx, k, gen)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*tenancy.Tenant), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("cache: load tenant %s: %w", k.kind, context.Cause(ctx))
	}
}

// fetch reads k from Redis, then from the store, and fills both levels.
// Errors of the store are returned unchanged.
func (s *Store) fetch(ctx context.Context, k key, gen uint64) (*tenancy.Tenant, error) {
	var fill fillToken
	if s.redis != nil {
		var t *tenancy.Tenant
		t, fill = s.redis.get(ctx, k)
		if t != nil {
			s.setL1(k, t, gen)
			return t, nil
		}
	}
	t, err := s.lookup(ctx, k)
	if err != nil {
		if errors.Is(err, tenancy.ErrTenantNotFound) {
			s.setL1(k, nil, gen)
		}
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("cache: store returned neither a tenant nor an error for %s", k.kind)
	}
	if fill.ok {
		s.redis.fill(ctx, k, t, fill.gen)
	}
	s.setL1(k, t, gen)
	return t, nil
}

func (s *Store) lookup(ctx context.Context, k key) (*tenancy.Tenant, error) {
	switch k.kind {
	case kindID:
		return s.store.Get(ctx, k.value)
	case kindIdentifier:
		return s.store.GetByIdentifier(ctx, k.value)
	case kindAlias:
		return s.store.GetByAlias(ctx, k.value)
	default:
		return s.store.GetByDomain(ctx, k.value)
	}
}

// setL1 stores t (nil: not found) under k unless an invalidation happened
// since the load began. The second check catches an invalidation that runs
// between the first check and the write.
func (s *Store) setL1(k key, t *tenancy.Tenant, gen uint64) {
	if s.gen.Load() != gen {
		return
	}
	s.l1.Set(k, t)
	if s.gen.Load() != gen {
		s.l1.Invalidate(k)
	}
}

// dropL1 removes keys from L1 and makes loads in flight skip their fill.
func (s *Store) dropL1(keys []key) {
	s.gen.Add(1)
	for _, k := range keys {
		s.l1.Invalidate(k)
	}
}

// flushL1 empties L1 and makes loads in flight skip their fill.
func (s *Store) flushL1() {
	s.gen.Add(1)
	s.l1.InvalidateAll()
}

// Create implements tenancy.Store. A successful create drops any "not found"
// entry for the new tenant's ID, identifier, aliases and domains on every
// instance.
func (s *Store) Create(ctx context.Context, t *tenancy.Tenant) (*tenancy.Tenant, error) {
	if t == nil {
		return nil, &tenancy.FieldError{Field: "tenant", Reason: "missing"}
	}
	c, err := s.store.Create(ctx, t)
	if err == nil {
		s.afterWrite(ctx, nil, c)
	} else {
		// The outcome may be unknown (a timeout after commit): drop what the
		// input names.
		s.afterWrite(ctx, err, t)
	}
	return c, err
}

// Update implements tenancy.Store. Entries of the old and the new aliases are
// dropped, so an old alias stops resolving at once.
func (s *Store) Update(ctx context.Context, id string, u tenancy.Update) (*tenancy.Tenant, error) {
	old := s.current(ctx, id)
	t, err := s.store.Update(ctx, id, u)
	s.afterWrite(ctx, err, append(old, t)...)
	return t, err
}

// SetStatus implements tenancy.Store.
func (s *Store) SetStatus(ctx context.Context, id string, status tenancy.Status, reason string) (*tenancy.Tenant, error) {
	old := s.current(ctx, id)
	t, err := s.store.SetStatus(ctx, id, status, reason)
	s.afterWrite(ctx, err, append(old, t)...)
	return t, err
}

// Delete implements tenancy.Store.
func (s *Store) Delete(ctx context.Context, id string) (*tenancy.Tenant, error) {
	old := s.current(ctx, id)
	t, err := s.store.Delete(ctx, id)
	s.afterWrite(ctx, err, append(old, t)...)
	return t, err
}

// Purge implements tenancy.Store.
func (s *Store) Purge(ctx context.Context, id string) error {
	old := s.current(ctx, id)
	err := s.store.Purge(ctx, id)
	s.afterWrite(ctx, err, old...)
	return err
}

// ListDomains implements tenancy.Store. Domain lists are not cached.
func (s *Store) ListDomains(ctx context.Context, id string) ([]tenancy.Domain, error) {
	return s.store.ListDomains(ctx, id)
}

// AddDomain implements tenancy.Store. The tenant's entries are dropped (its
// Domains changed), and so is the domain's own entry.
func (s *Store) AddDomain(ctx context.Context, id, domain string) (*tenancy.Domain, error) {
	old := s.current(ctx, id)
	d, err := s.store.AddDomain(ctx, id, domain)
	s.afterDomainWrite(ctx, err, old, domain)
	return d, err
}

// VerifyDomain implements tenancy.Store. The domain's "not found" entry is
// dropped on every instance, so that it resolves at once.
func (s *Store) VerifyDomain(ctx context.Context, id, domain string) (*tenancy.Domain, error) {
	old := s.current(ctx, id)
	d, err := s.store.VerifyDomain(ctx, id, domain)
	s.afterDomainWrite(ctx, err, old, domain)
	return d, err
}

// RemoveDomain implements tenancy.Store. The domain's entry is dropped on
// every instance, so that it stops resolving at once.
func (s *Store) RemoveDomain(ctx context.Context, id, domain string) error {
	old := s.current(ctx, id)
	err := s.store.RemoveDomain(ctx, id, domain)
	s.afterDomainWrite(ctx, err, old, domain)
	return err
}

// afterDomainWrite invalidates the tenant's entries and the named domain's,
// whichever tenant the cache may hold under it.
func (s *Store) afterDomainWrite(ctx context.Context, err error, old []*tenancy.Tenant, domain string) {
	s.afterWrite(ctx, err, append(old, &tenancy.Tenant{Domains: []string{domain}})...)
}

// List implements tenancy.Store. Lists are not cached.
func (s *Store) List(ctx context.Context, p tenancy.ListParams) ([]*tenancy.Tenant, error) {
	return s.store.List(ctx, p)
}

// Count implements tenancy.Store. Counts are not cached.
func (s *Store) Count(ctx context.Context, status tenancy.Status) (int, error) {
	return s.store.Count(ctx, status)
}

// current returns what is known of tenant id before a write: the stored
// record, for its aliases and domains, and the L1 entry, in case the store
// read fails or L1 holds an older set of them. A tenant with only an ID is returned when
// nothing else is known.
func (s *Store) current(ctx context.Context, id string) []*tenancy.Tenant {
	if tenancy.ValidateID(id) != nil {
		return nil
	}
	out := []*tenancy.Tenant{{ID: id}}
	if t, err := s.store.Get(ctx, id); err == nil {
		out = append(out, t)
	}
	if t, ok := s.l1.GetIfPresent(key{kindID, id}); ok && t != nil {
		out = append(out, t)
	}
	return out
}

// afterWrite invalidates the tenants' entries unless err says that nothing
// was written. It runs even if ctx is cancelled: the store has changed.
func (s *Store) afterWrite(ctx context.Context, err error, ts ...*tenancy.Tenant) {
	if err != nil && unchanged(err) {
		return
	}
	keys := tenantKeys(ts...)
	if len(keys) == 0 {
		return
	}
	// The error is logged and counted, and the invalidation retried, inside.
	_ = s.invalidate(context.WithoutCancel(ctx), keys)
}

// unchanged reports whether err means that the store wrote nothing.
func unchanged(err error) bool {
	return errors.Is(err, tenancy.ErrTenantNotFound) ||
		errors.Is(err, tenancy.ErrDomainNotFound) ||
		errors.Is(err, tenancy.ErrDuplicate) ||
		errors.Is(err, tenancy.ErrInvalidTenant) ||
		errors.Is(err, tenancy.ErrInvalidID) ||
		errors.Is(err, tenancy.ErrInvalidIdentifier)
}

// Invalidate drops every entry of t (by ID, identifier, each alias and each
// domain) from
// L1, from Redis and from the L1 of every other instance. L1 is always
// dropped; an error means Redis could not be reached, and the Redis part is
// retried in the background until it succeeds (or the process exits). Writes
// through the cache call it themselves; call it after changing tenants
// behind the cache's back.
func (s *Store) Invalidate(ctx context.Context, t *tenancy.Tenant) error {
	keys := tenantKeys(t)
	if len(keys) == 0 {
		return fmt.Errorf("cache: invalidate: %w", tenancy.ErrNoTenant)
	}
	return s.invalidate(ctx, keys)
}

func (s *Store) invalidate(ctx context.Context, keys []key) error {
	s.dropL1(keys)
	if s.redis == nil {
		return nil
	}
	return s.redis.invalidate(ctx, keys)
}
