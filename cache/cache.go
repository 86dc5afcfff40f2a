package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// Defaults.
const (
	DefaultPrefix     = "tenancy:app"
	DefaultTTL        = 5 * time.Minute
	DefaultMaxEntries = 100_000
)

// ErrUnavailable wraps the error of a write or invalidation that could not
// reach Redis. Reads never fail for it: they miss.
var ErrUnavailable = errors.New("cache: unavailable")

// Metrics receives the cache's lookups and failures. It is called on every
// lookup, so implementations must be cheap and safe for concurrent use.
type Metrics interface {
	// CacheLookup is called once per Get: result is ResultHit or ResultMiss.
	CacheLookup(ctx context.Context, result string)
	// CacheError is called once per Redis failure, with the operation (OpGet,
	// OpSet, OpDelete, OpInvalidate): a failed read is served as a miss.
	CacheError(ctx context.Context, op string)
}

// Lookup results and operations, as passed to Metrics.
const (
	ResultHit    = "hit"
	ResultMiss   = "miss"
	OpGet        = "get"
	OpSet        = "set"
	OpDelete     = "delete"
	OpInvalidate = "invalidate"
)

type noMetrics struct{}

func (noMetrics) CacheLookup(context.Context, string) {}
func (noMetrics) CacheError(context.Context, string)  {}

// Config configures a Cache.
type Config struct {
	// Redis, when set, holds the entries, shared by every instance. Nil:
	// an in-process cache, for one instance.
	Redis redis.UniversalClient
	// Prefix starts every Redis key. Default DefaultPrefix.
	Prefix string
	// TTL is the time to live of entries Set with a zero TTL. Default
	// DefaultTTL.
	TTL time.Duration
	// MaxEntries bounds the in-process cache. Default DefaultMaxEntries.
	MaxEntries int
	// MaxTTL caps every entry's TTL, and is how long Redis keeps a key's
	// or a prefix's generation after it was last moved. Default 24h.
	MaxTTL time.Duration
	// Timeout bounds each Redis call, so that a slow Redis costs a miss,
	// not a request. Default 100ms.
	Timeout time.Duration
	// Metrics counts lookups and Redis failures. Default: none.
	Metrics Metrics
	// Logger receives Redis failures, at most one line a second. Default
	// slog.Default().
	Logger *slog.Logger
}

// Cache is a cache of application data scoped by tenant: every key is built
// from the tenant the context carries (tenancy.FromContext), and a call
// whose context carries none fails with tenancy.ErrNoTenant. One tenant's
// keys can therefore never be read or overwritten in another's.
//
// On Redis, every entry's key holds its tenant's generation, a counter that
// InvalidateTenant increments atomically: once it has returned, no instance
// builds a key of the old generation, so none serves a value it
// invalidated. Entries are never kept in process on top of Redis, so a
// Delete or invalidation that returned is seen by every instance at once.
// When Redis fails, reads miss (and GetOrLoad loads), writes are skipped,
// and the failure is counted and logged: requests still succeed.
type Cache struct {
	cfg     Config
	local   *otter.Cache[string, entry]
	gens    sync.Map // tenant ID -> *genCounter, in process
	flight  singleflight.Group
	logMu   sync.Mutex
	lastLog time.Time
}

type entry struct {
	v   []byte
	ttl time.Duration
}

type genCounter struct {
	mu sync.Mutex
	n  int64
}

var _ tenancy.Component = (*Cache)(nil)

// New returns a Cache.
func New(cfg Config) (*Cache, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}*?[]") {
		return nil, fmt.Errorf("cache: prefix %q must not hold {, }, *, ?, [ or ]", cfg.Prefix)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = 24 * time.Hour
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 100 * time.Millisecond
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Cache{cfg: cfg}
	if cfg.Redis == nil {
		c.local = otter.Must(&otter.Options[string, entry]{
			MaximumSize: cfg.MaxEntries,
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, entry]) time.Duration {
				return e.Value.ttl
			}),
		})
	}
	return c, nil
}

func tenantOf(ctx context.Context) (*tenancy.Tenant, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok || t == nil || t.ID == "" {
		return nil, fmt.Errorf("cache: key without a tenant: %w", tenancy.ErrNoTenant)
	}
	return t, nil
}

// base is the start of every key of tenant id: the prefix and the ID in a
// Redis Cluster hash tag, so that a tenant's keys share a slot.
func (c *Cache) base(id string) string { return c.cfg.Prefix + ":{" + id + "}:" }

func (c *Cache) genKey(id string) string { return c.base(id) + "gen" }

func (c *Cache) entryKey(id string, gen int64, key string) string {
	return c.base(id) + "v" + strconv.FormatInt(gen, 10) + ":" + key
}

func (c *Cache) fail(ctx context.Context, op string, err error) {
	c.cfg.Metrics.CacheError(ctx, op)
	c.logMu.Lock()
	defer c.logMu.Unlock()
	if time.Since(c.lastLog) > time.Second {
		c.lastLog = time.Now()
		c.cfg.Logger.WarnContext(ctx, "cache: Redis failed; bypassing the cache", "op", op, "error", err)
	}
}

func (c *Cache) redisCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// composeLua builds the Redis key of an entry from the generations that
// guard it: the tenant's, one per ':'-ended prefix of the key, and the
// key's own. Bumping any of them (InvalidateTenant, InvalidatePrefix,
// Delete) moves the key atomically: no instance reads the old entry again.
const composeLua = `
local function compose(base, key)
  local parts = {redis.call('GET', base .. 'gen') or '0'}
  local counters = {}
  local i = 0
  while true do
    local j = string.find(key, ':', i + 1, true)
    if not j then break end
    local c = base .. 'p:' .. string.sub(key, 1, j)
    table.insert(counters, c)
    table.insert(parts, redis.call('GET', c) or '0')
    i = j
  end
  local c = base .. 'k:' .. key
  table.insert(counters, c)
  table.insert(parts, redis.call('GET', c) or '0')
  return base .. 'v' .. table.concat(parts, '.') .. ':' .. key, counters
end
`

// getScript returns the entry's current key and value in one round trip.
var getScript = redis.NewScript(composeLua + `
local k = compose(ARGV[1], ARGV[2])
return {k, redis.call('GET', k)}`)

// setScript writes the entry only if its key is still the one the value
// was read under (ARGV[4]; empty: no condition): a load that raced an
// invalidation never stores what the invalidation removed. Counters that
// expire are kept alive at least as long as the entry.
var setScript = redis.NewScript(composeLua + `
local k, counters = compose(ARGV[1], ARGV[2])
if ARGV[4] ~= '' and k ~= ARGV[4] then return 0 end
local ttl = tonumber(ARGV[5])
redis.call('SET', k, ARGV[3], 'PX', ttl)
for _, c in ipairs(counters) do
  local left = redis.call('PTTL', c)
  if left >= 0 and left < ttl + 60000 then redis.call('PEXPIRE', c, ttl + 60000) end
end
return 1`)

// bumpScript moves a counter to its next generation and keeps it for at
// least ARGV[1] ms (the longest TTL an entry may have).
var bumpScript = redis.NewScript(`
redis.call('INCR', KEYS[1])
if tonumber(ARGV[1]) > 0 and redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1`)

// Get returns the value of key for the context's tenant, and whether there
// was one.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, ok, _, err := c.get(ctx, key)
	return v, ok, err
}

// get also returns the generation the lookup ran under ("" in process).
func (c *Cache) get(ctx context.Context, key string) ([]byte, bool, string, error) {
	t, err := tenantOf(ctx)
	if err != nil {
		return nil, false, "", err
	}
	if c.local != nil {
		e, ok := c.local.GetIfPresent(c.entryKey(t.ID, c.localGen(t.ID), key))
		c.lookup(ctx, ok)
		return e.v, ok, "", nil
	}
	rctx, cancel := c.redisCtx(ctx)
	defer cancel()
	res, err := getScript.Run(rctx, c.cfg.Redis, []string{c.genKey(t.ID)}, c.base(t.ID), key).Slice()
	if err != nil || len(res) != 2 {
		c.fail(ctx, OpGet, err)
		c.lookup(ctx, false)
		return nil, false, "", nil
	}
	gen, _ := res[0].(string) // the entry's key, naming its generations
	s, ok := res[1].(string)
	c.lookup(ctx, ok)
	return []byte(s), ok, gen, nil
}

func (c *Cache) lookup(ctx context.Context, hit bool) {
	if hit {
		c.cfg.Metrics.CacheLookup(ctx, ResultHit)
	} else {
		c.cfg.Metrics.CacheLookup(ctx, ResultMiss)
	}
}

// Set stores value under key for the context's tenant for ttl (Config.TTL
// when zero). A Redis failure is counted and returned wrapping
// ErrUnavailable; callers that cache best-effort ignore it.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return c.set(ctx, key, value, ttl, "")
}

func (c *Cache) set(ctx context.Context, key string, value []byte, ttl time.Duration, gen string) error {
	t, err := tenantOf(ctx)
	if err != nil {
		return err
	}
	if ttl <= 0 {
		ttl = c.cfg.TTL
	}
	ttl = min(ttl, c.cfg.MaxTTL)
	if c.local != nil {
		c.local.Set(c.entryKey(t.ID, c.localGen(t.ID), key), entry{v: value, ttl: ttl})
		return nil
	}
	rctx, cancel := c.redisCtx(ctx)
	defer cancel()
	if err := setScript.Run(rctx, c.cfg.Redis, []string{c.genKey(t.ID)}, c.base(t.ID), key, value, gen, ttl.Milliseconds()).Err(); err != nil {
		c.fail(ctx, OpSet, err)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Delete removes key for the context's tenant. Once it has returned, no
// instance serves the value: on Redis the key moves to its next generation,
// and a load that read the data before the delete cannot store it after.
func (c *Cache) Delete(ctx context.Context, key string) error {
	t, err := tenantOf(ctx)
	if err != nil {
		return err
	}
	if c.local != nil {
		c.local.Invalidate(c.entryKey(t.ID, c.localGen(t.ID), key))
		return nil
	}
	return c.bump(ctx, OpDelete, c.base(t.ID)+"k:"+key)
}

func (c *Cache) bump(ctx context.Context, op, counter string) error {
	rctx, cancel := c.redisCtx(ctx)
	defer cancel()
	if err := bumpScript.Run(rctx, c.cfg.Redis, []string{counter}, (c.cfg.MaxTTL + time.Minute).Milliseconds()).Err(); err != nil {
		c.fail(ctx, op, err)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// InvalidateTenant drops every entry of the context's tenant, on every
// instance, by moving the tenant to a new generation (one atomic INCR):
// entries of the old one are never read again and expire on their TTL.
func (c *Cache) InvalidateTenant(ctx context.Context) error {
	t, err := tenantOf(ctx)
	if err != nil {
		return err
	}
	if c.local != nil {
		g := c.localCounter(t.ID)
		g.mu.Lock()
		g.n++
		g.mu.Unlock()
		return nil
	}
	rctx, cancel := c.redisCtx(ctx)
	defer cancel()
	if err := c.cfg.Redis.Incr(rctx, c.genKey(t.ID)).Err(); err != nil {
		c.fail(ctx, OpInvalidate, err)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// InvalidatePrefix drops the context's tenant's entries whose keys start
// with prefix, on every instance, atomically: prefix must end with ':', and
// each ':'-ended prefix of a key has a generation of its own that the
// key's entry is stored under ("user:42:profile" under "user:" and
// "user:42:"), which this moves on.
func (c *Cache) InvalidatePrefix(ctx context.Context, prefix string) error {
	t, err := tenantOf(ctx)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(prefix, ":") {
		return fmt.Errorf("cache: prefix %q must end with ':'", prefix)
	}
	if c.local != nil {
		start := c.entryKey(t.ID, c.localGen(t.ID), prefix)
		for k := range c.local.Keys() {
			if strings.HasPrefix(k, start) {
				c.local.Invalidate(k)
			}
		}
		return nil
	}
	return c.bump(ctx, OpInvalidate, c.base(t.ID)+"p:"+prefix)
}

func escapeGlob(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(s)
}

func (c *Cache) deleteMatching(ctx context.Context, pattern string) error {
	iter := c.cfg.Redis.Scan(ctx, 0, pattern, 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := c.cfg.Redis.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return c.cfg.Redis.Unlink(ctx, batch...).Err()
	}
	return nil
}

func (c *Cache) localCounter(id string) *genCounter {
	v, _ := c.gens.LoadOrStore(id, &genCounter{})
	return v.(*genCounter)
}

func (c *Cache) localGen(id string) int64 {
	g := c.localCounter(id)
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// GetOrLoad returns the value of key for the context's tenant, decoded from
// JSON, or calls load, stores its result for ttl (Config.TTL when zero) and
// returns it. Concurrent misses of one key in one process share one load.
// A value loaded while the tenant was invalidated is returned but not
// stored. A Redis failure only costs the load.
func GetOrLoad[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, load func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	raw, ok, gen, err := c.get(ctx, key)
	if err != nil {
		return zero, err
	}
	if ok {
		var v T
		if err := json.Unmarshal(raw, &v); err == nil {
			return v, nil
		}
	}
	t, _ := tenancy.FromContext(ctx)
	v, err, _ := c.flight.Do(t.ID+"\x00"+gen+"\x00"+key, func() (any, error) {
		v, err := load(ctx)
		if err != nil {
			return nil, err
		}
		// On Redis, gen is empty only when the lookup failed: then the
		// generation is unknown and nothing is stored.
		if raw, err := json.Marshal(v); err == nil && (gen != "" || c.local != nil) {
			_ = c.set(ctx, key, raw, ttl, gen)
		}
		return v, nil
	})
	if err != nil {
		return zero, err
	}
	return v.(T), nil
}

// Forget implements tenancy.Component: it deletes every key of t, of every
// generation, and its generation counter.
func (c *Cache) Forget(ctx context.Context, t *tenancy.Tenant) error {
	if t == nil {
		return tenancy.ErrNoTenant
	}
	if c.local != nil {
		start := c.base(t.ID)
		for k := range c.local.Keys() {
			if strings.HasPrefix(k, start) {
				c.local.Invalidate(k)
			}
		}
		c.gens.Delete(t.ID)
		return nil
	}
	if err := c.deleteMatching(ctx, escapeGlob(c.base(t.ID))+"*"); err != nil {
		return fmt.Errorf("cache: forget tenant %s: %w", t.ID, err)
	}
	return nil
}

// Residue implements tenancy.Component: t's keys left.
func (c *Cache) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	if t == nil {
		return nil, tenancy.ErrNoTenant
	}
	var out []string
	if c.local != nil {
		start := c.base(t.ID)
		for k := range c.local.Keys() {
			if strings.HasPrefix(k, start) {
				out = append(out, "in-process key "+k)
			}
		}
		return out, nil
	}
	iter := c.cfg.Redis.Scan(ctx, 0, escapeGlob(c.base(t.ID))+"*", 500).Iterator()
	for iter.Next(ctx) {
		out = append(out, "redis key "+iter.Val())
	}
	return out, iter.Err()
}
