package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/redis/go-redis/v9"
)

const (
	// breakerWait is how long Redis is skipped after a failure, so that an
	// outage costs one timeout per second, not one per request.
	breakerWait = time.Second
	// probeInterval is how often Redis is pinged, to notice an outage (and
	// cap L1 lifetimes) even while every read is an L1 hit, and to notice
	// the recovery.
	probeInterval = time.Second
	// logInterval is the least time between two logged Redis failures.
	logInterval = 10 * time.Second
	// maxPending bounds the invalidations kept for retry during an outage.
	maxPending = 10_000
)

// errRedisUnavailable is returned by Invalidate while Redis is skipped.
var errRedisUnavailable = errors.New("cache: redis unavailable, invalidation queued for retry")

// fillScript writes a tenant into L2 only if no invalidation happened since
// the reader saw the generation ARGV[1] (before it read the store). Every
// invalidation increments the generation, so a slow reader can never put
// back a tenant that an invalidation just removed.
//
// KEYS[1] generation key, KEYS[2] entry key; ARGV[1] generation, ARGV[2]
// tenant JSON, ARGV[3] TTL in milliseconds.
var fillScript = redis.NewScript(`
if (redis.call('GET', KEYS[1]) or '') == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`)

// fillToken allows an L2 fill: gen is the generation read before the store.
type fillToken struct {
	gen string
	ok  bool
}

// message is what an invalidation publishes: the keys every instance drops
// from its L1.
type message struct {
	ID         string   `json:"id,omitempty"`
	Identifier string   `json:"identifier,omitempty"`
	Aliases    []string `json:"aliases,omitempty"`
	Domains    []string `json:"domains,omitempty"`
}

// keys returns the L1 keys the message names, leaving out invalid values:
// messages come from the network.
func (m *message) keys() []key {
	t := &tenancy.Tenant{ID: m.ID, Identifier: m.Identifier, Aliases: m.Aliases, Domains: m.Domains}
	return tenantKeys(t)
}

// newMessages groups keys into messages. Keys normally belong to one tenant
// and make one message; more IDs or identifiers make more messages.
func newMessages(keys []key) []message {
	var ids, idents, aliases, domains []string
	for _, k := range keys {
		switch k.kind {
		case kindID:
			ids = append(ids, k.value)
		case kindIdentifier:
			idents = append(idents, k.value)
		case kindAlias:
			aliases = append(aliases, k.value)
		case kindDomain:
			domains = append(domains, k.value)
		}
	}
	msgs := make([]message, max(1, len(ids), len(idents)))
	for i, v := range ids {
		msgs[i].ID = v
	}
	for i, v := range idents {
		msgs[i].Identifier = v
	}
	msgs[0].Aliases = aliases
	msgs[0].Domains = domains
	return msgs
}

// pendingInvalidation is an invalidation that could not reach Redis.
type pendingInvalidation struct {
	keys     []key
	payloads []string
}

// redisLevel is the L2 cache, the invalidation broadcast and the circuit
// breaker around them.
type redisLevel struct {
	s       *Store
	rdb     redis.UniversalClient
	ttl     time.Duration
	channel string
	genKey  string

	// openUntil is the Unix time in nanoseconds until which Redis is skipped.
	openUntil atomic.Int64
	// degraded is set while Redis is failing: L1 lifetimes are capped then.
	degraded atomic.Bool
	// subscriptions counts (re)subscriptions, for tests.
	subscriptions atomic.Int64

	logMu      sync.Mutex
	logNext    time.Time
	suppressed int

	mu      sync.Mutex
	pending map[string]pendingInvalidation
	closed  bool
	ps      *redis.PubSub
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newRedisLevel(s *Store, rdb redis.UniversalClient, ttl time.Duration) *redisLevel {
	ctx, cancel := context.WithCancel(context.Background())
	return &redisLevel{
		s:       s,
		rdb:     rdb,
		ttl:     ttl,
		channel: s.prefix + "invalidate",
		genKey:  s.prefix + "generation",
		pending: make(map[string]pendingInvalidation),
		ctx:     ctx,
		cancel:  cancel,
	}
}

func (r *redisLevel) start() {
	r.wg.Add(2)
	go r.subscribe()
	go r.probe()
}

func (r *redisLevel) stop() error {
	r.mu.Lock()
	r.closed = true
	ps := r.ps
	r.mu.Unlock()
	r.cancel()
	var err error
	if ps != nil {
		if err = ps.Close(); err != nil {
			err = fmt.Errorf("cache: close subscription: %w", err)
		}
	}
	r.wg.Wait()
	return err
}

// allow reports whether Redis may be used, or is being skipped after a
// failure.
func (r *redisLevel) allow() bool {
	u := r.openUntil.Load()
	return u == 0 || time.Now().UnixNano() >= u
}

// failed records a Redis failure: counted, logged at a limited rate, Redis
// skipped for breakerWait, and L1 flushed when the outage begins, because
// this instance may now miss invalidations.
func (r *redisLevel) failed(ctx context.Context, op string, err error) {
	if ctx.Err() != nil {
		// The caller gave up; that says nothing about Redis.
		return
	}
	r.s.metrics.CacheError(ctx, op)
	r.openUntil.Store(time.Now().Add(breakerWait).UnixNano())
	if !r.degraded.Swap(true) {
		r.s.flushL1()
	}
	r.logError("tenancy cache: redis failed, serving from the store", op, err)
}

// recovered closes the breaker after a successful probe.
func (r *redisLevel) recovered() {
	r.openUntil.Store(0)
	if r.degraded.Swap(false) {
		r.s.logger.Info("tenancy cache: redis is available again")
	}
}

func (r *redisLevel) logError(msg, op string, err error) {
	r.logMu.Lock()
	now := time.Now()
	if now.Before(r.logNext) {
		r.suppressed++
		r.logMu.Unlock()
		return
	}
	n := r.suppressed
	r.suppressed = 0
	r.logNext = now.Add(logInterval)
	r.logMu.Unlock()
	r.s.logger.Warn(msg, slog.String("op", op), slog.Any("error", err), slog.Int("suppressed", n))
}

// get reads k from Redis. On a miss it also reads the generation, which
// allows the caller to fill the entry after reading the store.
func (r *redisLevel) get(ctx context.Context, k key) (*tenancy.Tenant, fillToken) {
	if !r.allow() {
		return nil, fillToken{}
	}
	b, err := r.rdb.Get(ctx, r.s.redisKey(k)).Bytes()
	switch {
	case err == nil:
		t, err := decodeTenant(b, k)
		if err == nil {
			r.s.metrics.CacheLookup(ctx, LevelL2, ResultHit)
			return t, fillToken{}
		}
		// Treated as a miss: the fill below overwrites the entry.
		r.s.metrics.CacheError(ctx, OpDecode)
		r.logError("tenancy cache: bad entry in redis", OpDecode, err)
	case errors.Is(err, redis.Nil):
	default:
		r.failed(ctx, OpGet, err)
		return nil, fillToken{}
	}
	r.s.metrics.CacheLookup(ctx, LevelL2, ResultMiss)
	gen, err := r.rdb.Get(ctx, r.genKey).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		r.failed(ctx, OpGet, err)
		return nil, fillToken{}
	}
	return nil, fillToken{gen: gen, ok: true}
}

func decodeTenant(b []byte, k key) (*tenancy.Tenant, error) {
	t := new(tenancy.Tenant)
	if err := json.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("decode tenant by %s: %w", k.kind, err)
	}
	if !k.matches(t) {
		return nil, fmt.Errorf("entry by %s holds another tenant", k.kind)
	}
	return t, nil
}

// fill writes t under k unless the generation moved past gen.
func (r *redisLevel) fill(ctx context.Context, k key, t *tenancy.Tenant, gen string) {
	if !r.allow() {
		return
	}
	b, err := json.Marshal(t)
	if err != nil {
		r.s.metrics.CacheError(ctx, OpSet)
		r.logError("tenancy cache: cannot encode tenant", OpSet, err)
		return
	}
	err = fillScript.Run(ctx, r.rdb, []string{r.genKey, r.s.redisKey(k)}, gen, b, r.ttl.Milliseconds()).Err()
	if err != nil {
		r.failed(ctx, OpSet, err)
	}
}

// invalidate deletes keys from Redis and tells every instance to drop them
// from L1. When Redis cannot be reached the invalidation is kept for retry.
func (r *redisLevel) invalidate(ctx context.Context, keys []key) error {
	msgs := newMessages(keys)
	p := pendingInvalidation{keys: keys, payloads: make([]string, len(msgs))}
	for i := range msgs {
		b, err := json.Marshal(&msgs[i])
		if err != nil {
			return fmt.Errorf("cache: encode invalidation: %w", err)
		}
		p.payloads[i] = string(b)
	}
	if !r.allow() {
		r.addPending(p)
		return errRedisUnavailable
	}
	if err := r.publish(ctx, p); err != nil {
		r.addPending(p)
		r.failed(ctx, OpInvalidate, err)
		return fmt.Errorf("cache: invalidate in redis (queued for retry): %w", err)
	}
	return nil
}

// publish bumps the generation, deletes the keys and publishes the messages
// in one transaction. The generation moves first, so a fill racing with the
// deletion is refused.
func (r *redisLevel) publish(ctx context.Context, p pendingInvalidation) error {
	rks := make([]string, len(p.keys))
	for i, k := range p.keys {
		rks[i] = r.s.redisKey(k)
	}
	_, err := r.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Incr(ctx, r.genKey)
		pipe.Del(ctx, rks...)
		for _, m := range p.payloads {
			pipe.Publish(ctx, r.channel, m)
		}
		return nil
	})
	return err
}

func (r *redisLevel) addPending(p pendingInvalidation) {
	id := strings.Join(p.payloads, "\n")
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[id]; !ok && len(r.pending) >= maxPending {
		r.logError("tenancy cache: too many invalidations waiting for redis, dropping one", OpInvalidate, errRedisUnavailable)
		return
	}
	r.pending[id] = p
}

// replay retries the invalidations that failed, until one fails again.
func (r *redisLevel) replay(ctx context.Context) {
	r.mu.Lock()
	batch := r.pending
	r.pending = make(map[string]pendingInvalidation)
	r.mu.Unlock()
	var err error
	for id, p := range batch {
		if err == nil {
			if err = r.publish(ctx, p); err == nil {
				continue
			}
		}
		r.mu.Lock()
		if _, ok := r.pending[id]; !ok && len(r.pending) < maxPending {
			r.pending[id] = p
		}
		r.mu.Unlock()
	}
	if err != nil {
		r.failed(ctx, OpInvalidate, err)
	}
}

// probe pings Redis every probeInterval: a failure caps L1 lifetimes even
// while every read is an L1 hit, and a success closes the breaker and
// replays the invalidations that failed.
func (r *redisLevel) probe() {
	defer r.wg.Done()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(r.ctx, probeInterval)
		err := r.rdb.Ping(ctx).Err()
		cancel()
		if err != nil {
			r.failed(r.ctx, OpPing, err)
			continue
		}
		r.recovered()
		r.replay(r.ctx)
	}
}

// subscribe listens for invalidations until stop. It flushes L1 on every
// (re)subscription: messages sent while it was disconnected are lost.
func (r *redisLevel) subscribe() {
	defer r.wg.Done()
	// Subscribing here, not in New, keeps New free of I/O. With Redis down
	// the subscription is retried by go-redis until it succeeds.
	ps := r.rdb.Subscribe(r.ctx, r.channel)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = ps.Close()
		return
	}
	r.ps = ps
	r.mu.Unlock()
	for msg := range ps.ChannelWithSubscriptions(redis.WithChannelSize(1000)) {
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				r.s.flushL1()
				r.subscriptions.Add(1)
			}
		case *redis.Message:
			r.onMessage(m.Payload)
		}
	}
}

func (r *redisLevel) onMessage(payload string) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		// Something changed, but we cannot tell what: drop everything.
		r.s.metrics.CacheError(r.ctx, OpMessage)
		r.logError("tenancy cache: bad invalidation message, flushing L1", OpMessage, err)
		r.s.flushL1()
		return
	}
	r.s.dropL1(m.keys())
}
