// Package limit enforces per-tenant request rates. It is off unless
// configured: a zero Rate means unlimited.
//
// With Redis, every instance shares one budget per tenant: a GCRA (generic
// cell rate algorithm) decision made atomically in Redis by the Lua script
// of github.com/go-redis/redis_rate. Without Redis, or while Redis is
// failing, each process keeps a token bucket per tenant
// (golang.org/x/time/rate) in a bounded cache. Redis failures never fail a
// request: the limiter falls back to the in-process buckets, logs the
// outage once, reports every decision made that way to Config.Metrics as a
// fallback, and tries Redis again after a short pause. During an outage
// each instance enforces the full rate on its own, so the fleet admits up
// to N times the rate.
//
// Keys and buckets are per tenant ID, never per identifier or domain, so
// one tenant exhausting its rate never limits another. A Limiter is a
// tenancy.Component: purging a tenant (package lifecycle) forgets its budget
// and checks that its key is gone.
//
// The middleware advertises the tenant's quota on every limited response,
// allowed or refused, in the structured fields of the IETF draft "RateLimit
// header fields for HTTP" (draft-ietf-httpapi-ratelimit-headers-09):
//
//	RateLimit-Policy: "default";q=100;w=60
//	RateLimit: "default";r=0;t=20
//
// The policy is named for the tenant's tier ("default" for the default
// rate); q is the quota per window of w seconds, r what remains of it and
// t the seconds until it is whole again. A refused request (429) carries
// Retry-After too.
package limit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Defaults.
const (
	DefaultPrefix     = "tenancy:ratelimit:"
	DefaultMaxTenants = 100_000
	DefaultRetryRedis = time.Second
	// redisRatePrefix is what redis_rate puts before every key it is given.
	redisRatePrefix = "rate:"
)

// Rate is a request rate: Limit requests per Period, with bursts of up to
// Burst requests.
type Rate struct {
	// Limit is the number of requests per Period. Zero (or less) means
	// unlimited.
	Limit int
	// Period is the window Limit applies to. Default one second.
	Period time.Duration
	// Burst is how many requests may arrive at once. Default Limit.
	Burst int
}

func (r Rate) normalized() Rate {
	if r.Period <= 0 {
		r.Period = time.Second
	}
	if r.Burst <= 0 {
		r.Burst = r.Limit
	}
	return r
}

// Config configures a Limiter.
type Config struct {
	// Default is the rate of tenants whose tier is not in Tiers. Zero:
	// unlimited.
	Default Rate
	// Tiers maps a tenant tier to its rate; a zero Rate makes the tier
	// unlimited. Tiers not listed get Default.
	Tiers map[string]Rate
	// Redis, when set, holds the shared budgets. Nil: in-process limits
	// only, per instance. Give the client short timeouts and few retries:
	// the request that first meets an outage waits for them.
	Redis redis.UniversalClient
	// Prefix starts every Redis key, followed by the tenant ID (redis_rate
	// puts "rate:" before it; see Keys). Default "tenancy:ratelimit:".
	Prefix string
	// MaxTenants bounds the in-process buckets kept; the least used are
	// dropped first (a dropped bucket starts full again). Default 100000.
	MaxTenants int
	// RetryRedis is how long the limiter stays on its in-process buckets
	// after a Redis failure before trying Redis again. Default one second.
	RetryRedis time.Duration
	// Logger receives the start and end of Redis outages. Default
	// slog.Default().
	Logger *slog.Logger
	// Metrics counts decisions; promtenancy.Metrics counts them in
	// Prometheus. Default nil: nothing is counted.
	Metrics Metrics
	// ErrorHandler writes a rejection (an error wrapping
	// tenancy.ErrRateLimited that implements RetryAfter) or a failure.
	// Default problem.WriteError: 429 with Retry-After.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// Metrics receives every decision of a Limiter. It is called on every
// limited request, so implementations must be safe for concurrent use and
// cheap: count, never block.
type Metrics interface {
	// RateLimitDecision is called once per decision on a request of a
	// limited tenant t: whether it was allowed, and whether it was a
	// fallback, made in-process because Redis, configured, failed.
	RateLimitDecision(ctx context.Context, t *tenancy.Tenant, allowed, fallback bool)
}

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) RateLimitDecision(context.Context, *tenancy.Tenant, bool, bool) {}

var errNilTenant = errors.New("limit: allow: nil tenant")

// Limiter limits request rates per tenant. It is safe for concurrent use.
type Limiter struct {
	def        Rate
	tiers      map[string]Rate
	prefix     string
	redis      *redis_rate.Limiter
	rdb        redis.UniversalClient
	retryRedis time.Duration
	logger     *slog.Logger
	onError    func(http.ResponseWriter, *http.Request, error)
	local      *otter.Cache[string, *bucket]
	metrics    Metrics

	// downUntil is zero while Redis is healthy; otherwise the UnixNano time
	// until which decisions stay in-process.
	downUntil atomic.Int64
}

// bucket is one tenant's in-process token bucket, for one rate. A tenant
// whose rate changes (a new tier) gets a new bucket.
type bucket struct {
	rate Rate
	lim  *rate.Limiter
}

// New returns a Limiter for cfg.
func New(cfg Config) *Limiter {
	l := &Limiter{
		def:        cfg.Default.normalized(),
		tiers:      make(map[string]Rate, len(cfg.Tiers)),
		prefix:     cfg.Prefix,
		rdb:        cfg.Redis,
		retryRedis: cfg.RetryRedis,
		logger:     cfg.Logger,
		onError:    cfg.ErrorHandler,
		metrics:    cfg.Metrics,
	}
	if l.metrics == nil {
		l.metrics = noMetrics{}
	}
	for k, v := range cfg.Tiers {
		l.tiers[k] = v.normalized()
	}
	if l.prefix == "" {
		l.prefix = DefaultPrefix
	}
	if l.retryRedis <= 0 {
		l.retryRedis = DefaultRetryRedis
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if l.onError == nil {
		l.onError = func(w http.ResponseWriter, _ *http.Request, err error) { problem.WriteError(w, err) }
	}
	if cfg.Redis != nil {
		l.redis = redis_rate.NewLimiter(cfg.Redis)
	}
	size := cfg.MaxTenants
	if size <= 0 {
		size = DefaultMaxTenants
	}
	l.local = otter.Must(&otter.Options[string, *bucket]{
		MaximumSize: size,
		// An idle bucket is full again after Burst/rate; dropping it then
		// changes nothing.
		ExpiryCalculator: otter.ExpiryAccessingFunc(func(e otter.Entry[string, *bucket]) time.Duration {
			r := e.Value.rate
			return max(time.Second, r.Period*time.Duration(r.Burst)/time.Duration(r.Limit))
		}),
	})
	return l
}

// rateFor returns the tenant's rate and whether it is limited at all.
func (l *Limiter) rateFor(t *tenancy.Tenant) (Rate, bool) {
	r, ok := l.tiers[t.Tier]
	if !ok {
		r = l.def
	}
	return r, r.Limit > 0
}

// Allow reports whether the tenant may make one more request now and, when
// not, how long until it may. Redis failures are not errors: the decision is
// then made in-process. The error is non-nil only when ctx ended or t is
// nil.
func (l *Limiter) Allow(ctx context.Context, t *tenancy.Tenant) (allowed bool, retryAfter time.Duration, err error) {
	d, err := l.Decide(ctx, t)
	return d.Allowed, d.RetryAfter, err
}

// Decision is the outcome of one request against its tenant's quota.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limited is false for a tenant without a limit; the other fields are
	// then zero.
	Limited bool
	// Policy names the quota: the tenant's tier when Config.Tiers has a
	// rate for it, otherwise "default".
	Policy string
	// Rate is the quota.
	Rate Rate
	// Remaining is how many more requests the tenant may make now.
	Remaining int
	// RetryAfter is how long until a refused request may be made again;
	// zero when allowed.
	RetryAfter time.Duration
	// Reset is how long until the quota is whole again.
	Reset time.Duration
}

// Decide is Allow with the whole decision: what remains of the quota and
// when it is whole again, as the middleware's RateLimit fields report it.
func (l *Limiter) Decide(ctx context.Context, t *tenancy.Tenant) (Decision, error) {
	if t == nil {
		return Decision{}, errNilTenant
	}
	r, limited := l.rateFor(t)
	if !limited {
		return Decision{Allowed: true}, nil
	}
	d := Decision{Limited: true, Policy: "default", Rate: r}
	if _, ok := l.tiers[t.Tier]; ok && t.Tier != "" {
		d.Policy = t.Tier
	}
	fallback := false
	if l.redis != nil {
		if l.useRedis() {
			res, err := l.redis.Allow(ctx, l.prefix+t.ID, redis_rate.Limit{Rate: r.Limit, Burst: r.Burst, Period: r.Period})
			if err == nil {
				l.redisUp()
				d.Allowed = res.Allowed > 0
				d.Remaining = max(res.Remaining, 0)
				d.Reset = max(res.ResetAfter, 0)
				if !d.Allowed {
					d.RetryAfter = max(res.RetryAfter, time.Millisecond)
				}
				l.metrics.RateLimitDecision(ctx, t, d.Allowed, false)
				return d, nil
			}
			if ctx.Err() != nil {
				// The caller is gone; that says nothing about Redis.
				return Decision{}, fmt.Errorf("limit: allow: %w", ctx.Err())
			}
			l.redisDown(err)
		}
		fallback = true
	}
	l.allowLocal(t.ID, r, time.Now(), &d)
	l.metrics.RateLimitDecision(ctx, t, d.Allowed, fallback)
	return d, nil
}

func (l *Limiter) allowLocal(id string, r Rate, now time.Time, d *Decision) {
	b, ok := l.local.GetIfPresent(id)
	if !ok || b.rate != r {
		nb := &bucket{rate: r, lim: rate.NewLimiter(rate.Limit(float64(r.Limit)/r.Period.Seconds()), r.Burst)}
		if ok {
			l.local.Set(id, nb)
			b = nb
		} else {
			b, _ = l.local.SetIfAbsent(id, nb)
		}
	}
	perToken := float64(r.Period) / float64(r.Limit)
	d.Allowed = b.lim.AllowN(now, 1)
	tokens := b.lim.TokensAt(now)
	if !d.Allowed {
		d.RetryAfter = max(time.Duration((1-tokens)*perToken), time.Millisecond)
	}
	d.Remaining = max(int(tokens), 0)
	d.Reset = max(time.Duration((float64(r.Burst)-tokens)*perToken), 0)
}

// setHeaders writes d's RateLimit-Policy and RateLimit fields.
func setHeaders(h http.Header, d Decision) {
	if !d.Limited {
		return
	}
	name := strconv.Quote(d.Policy) // a structured-field string: the tier is [a-z0-9-]
	h.Set("RateLimit-Policy", name+";q="+strconv.Itoa(d.Rate.Limit)+";w="+strconv.FormatInt(ceilSeconds(d.Rate.Period), 10))
	h.Set("RateLimit", name+";r="+strconv.Itoa(d.Remaining)+";t="+strconv.FormatInt(ceilSeconds(d.Reset), 10))
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// useRedis reports whether to ask Redis: always while it is healthy; after
// an outage, once RetryRedis has passed, for one request at a time (the
// others stay in-process until that probe succeeds).
func (l *Limiter) useRedis() bool {
	until := l.downUntil.Load()
	if until == 0 {
		return true
	}
	now := time.Now().UnixNano()
	return now >= until && l.downUntil.CompareAndSwap(until, now+int64(l.retryRedis))
}

func (l *Limiter) redisDown(err error) {
	if l.downUntil.Swap(time.Now().Add(l.retryRedis).UnixNano()) == 0 {
		l.logger.Warn("tenancy: rate limiter cannot reach Redis; limiting in-process until it answers", slog.Any("error", err))
	}
}

func (l *Limiter) redisUp() {
	if l.downUntil.Load() != 0 && l.downUntil.Swap(0) != 0 {
		l.logger.Info("tenancy: rate limiter reaches Redis again")
	}
}

// Middleware limits the rate of requests whose context carries a tenant: run
// it after the tenancy middleware. Requests without a tenant pass through.
// Every limited response carries the RateLimit-Policy and RateLimit fields
// (see the package documentation); a rejected request gets 429 with
// Retry-After.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := tenancy.FromContext(r.Context())
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		d, err := l.Decide(r.Context(), t)
		if err != nil {
			l.onError(w, r, err)
			return
		}
		setHeaders(w.Header(), d)
		if !d.Allowed {
			l.onError(w, r, &tenancy.RetryAfterError{Err: tenancy.ErrRateLimited, After: d.RetryAfter})
			return
		}
		next.ServeHTTP(w, r)
	})
}

var _ tenancy.Component = (*Limiter)(nil)

// Forget implements tenancy.Component: it forgets t's budget, as Reset does.
func (l *Limiter) Forget(ctx context.Context, t *tenancy.Tenant) error {
	if t == nil {
		return errNilTenant
	}
	return l.Reset(ctx, t.ID)
}

// Residue implements tenancy.Component: it names t's in-process bucket and
// its Redis key, when they exist. Other instances' buckets are theirs;
// they refill within seconds.
func (l *Limiter) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	if t == nil {
		return nil, errNilTenant
	}
	var left []string
	if _, ok := l.local.GetIfPresent(t.ID); ok {
		left = append(left, "in-process rate-limit bucket")
	}
	for _, k := range l.Keys(t.ID) {
		n, err := l.rdb.Exists(ctx, k).Result()
		if err != nil {
			return nil, fmt.Errorf("limit: check Redis for tenant %s: %w", t.ID, err)
		}
		if n > 0 {
			left = append(left, "redis key "+k)
		}
	}
	return left, nil
}

// Keys returns the Redis keys that hold the tenant's budget:
// "rate:" + Prefix + tenantID. It returns nil without Redis or for an
// invalid ID.
func (l *Limiter) Keys(tenantID string) []string {
	if l.redis == nil || tenancy.ValidateID(tenantID) != nil {
		return nil
	}
	return []string{redisRatePrefix + l.prefix + tenantID}
}

// Reset forgets the tenant's budget, in-process and in Redis, so that its
// next request starts with a full burst.
func (l *Limiter) Reset(ctx context.Context, tenantID string) error {
	if err := tenancy.ValidateID(tenantID); err != nil {
		return fmt.Errorf("limit: reset: %w", err)
	}
	l.local.Invalidate(tenantID)
	if l.redis != nil {
		if err := l.redis.Reset(ctx, l.prefix+tenantID); err != nil {
			return fmt.Errorf("limit: reset tenant %s in Redis: %w", tenantID, err)
		}
	}
	return nil
}
