// Package poolcache keeps per-tenant resources open by key: connection pools
// of a database per tenant, handles on a SQLite file per tenant. Entries are
// reference-counted, bounded in total weight (connections or files), closed
// when idle, and never closed while in use; an acquire that finds no room
// waits for an entry to become idle, honouring its context.
package poolcache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed is returned by Acquire after Close.
var ErrClosed = errors.New("poolcache: closed")

// Config configures a Cache.
type Config[V any] struct {
	// MaxWeight bounds the total weight of open entries. Required.
	MaxWeight int
	// IdleTimeout closes entries unused for that long. Zero keeps idle
	// entries open until room is needed.
	IdleTimeout time.Duration
	// Close releases an entry's value. It runs without the cache's lock and
	// may block until the value's own users are done.
	Close func(V)
}

// Cache holds open values by key.
type Cache[K comparable, V any] struct {
	cfg     Config[V]
	mu      sync.Mutex
	entries map[K]*entry[K, V]
	lru     list.List // of *entry, most recently used first
	weight  int
	// freed is closed and replaced whenever an entry is released or
	// removed, waking acquirers that wait for room.
	freed  chan struct{}
	closed bool
	stop   chan struct{}
	done   sync.WaitGroup
}

type entry[K comparable, V any] struct {
	key      K
	value    V
	weight   int
	refs     int
	lastUsed time.Time
	el       *list.Element
}

// Handle is an acquired value; Release gives it back.
type Handle[K comparable, V any] struct {
	c *Cache[K, V]
	e *entry[K, V]
}

// Value returns the acquired value.
func (h *Handle[K, V]) Value() V { return h.e.value }

// Release gives the value back to the cache. Call it once.
func (h *Handle[K, V]) Release() { h.c.release(h.e) }

// New returns an empty cache.
func New[K comparable, V any](cfg Config[V]) (*Cache[K, V], error) {
	if cfg.MaxWeight <= 0 {
		return nil, fmt.Errorf("poolcache: MaxWeight must be positive, got %d", cfg.MaxWeight)
	}
	c := &Cache[K, V]{
		cfg:     cfg,
		entries: make(map[K]*entry[K, V]),
		freed:   make(chan struct{}),
		stop:    make(chan struct{}),
	}
	if cfg.IdleTimeout > 0 {
		c.done.Add(1)
		go c.evictIdle()
	}
	return c, nil
}

// Acquire returns the value under key, opening it with open (which must not
// block: it runs under the cache's lock) when it is not open. A new entry of
// weight that does not fit closes least recently used idle entries first; if
// there is still no room, Acquire waits until there is or ctx is done.
func (c *Cache[K, V]) Acquire(ctx context.Context, key K, weight int, open func() (V, error)) (*Handle[K, V], error) {
	if weight > c.cfg.MaxWeight {
		return nil, fmt.Errorf("poolcache: weight %d exceeds the total bound %d", weight, c.cfg.MaxWeight)
	}
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if e, ok := c.entries[key]; ok {
			e.refs++
			c.lru.MoveToFront(e.el)
			c.mu.Unlock()
			return &Handle[K, V]{c: c, e: e}, nil
		}
		var evicted []V
		for c.weight+weight > c.cfg.MaxWeight {
			victim := c.idleVictim()
			if victim == nil {
				break
			}
			evicted = append(evicted, victim.value)
			c.remove(victim)
		}
		if c.weight+weight <= c.cfg.MaxWeight {
			v, err := open()
			var h *Handle[K, V]
			if err == nil {
				e := &entry[K, V]{key: key, value: v, weight: weight, refs: 1}
				e.el = c.lru.PushFront(e)
				c.entries[key] = e
				c.weight += weight
				h = &Handle[K, V]{c: c, e: e}
			}
			c.mu.Unlock()
			c.closeAll(evicted)
			return h, err
		}
		freed := c.freed
		c.mu.Unlock()
		c.closeAll(evicted)
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for room among %d open tenant resources: %w", c.cfg.MaxWeight, ctx.Err())
		}
	}
}

// Remove forgets key's entry and closes its value, even when in use (Close
// decides how to treat its users). It reports whether there was one.
func (c *Cache[K, V]) Remove(key K) bool {
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok {
		c.remove(e)
	}
	c.mu.Unlock()
	if ok {
		c.cfg.Close(e.value)
	}
	return ok
}

// Stats reports how many entries are open and their total weight.
func (c *Cache[K, V]) Stats() (entries, weight int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.weight
}

// Close closes every entry and refuses further acquires. It is idempotent.
func (c *Cache[K, V]) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.stop)
	var values []V
	for _, e := range c.entries {
		values = append(values, e.value)
		c.remove(e)
	}
	c.mu.Unlock()
	c.closeAll(values)
	c.done.Wait()
}

func (c *Cache[K, V]) closeAll(values []V) {
	for _, v := range values {
		c.cfg.Close(v)
	}
}

func (c *Cache[K, V]) release(e *entry[K, V]) {
	c.mu.Lock()
	e.refs--
	e.lastUsed = time.Now()
	if e.refs == 0 {
		c.wake()
	}
	c.mu.Unlock()
}

// idleVictim returns the least recently used entry nobody holds; c.mu is
// held.
func (c *Cache[K, V]) idleVictim() *entry[K, V] {
	for el := c.lru.Back(); el != nil; el = el.Prev() {
		if e := el.Value.(*entry[K, V]); e.refs == 0 {
			return e
		}
	}
	return nil
}

// remove forgets e and wakes waiters; c.mu is held and the caller closes
// e's value.
func (c *Cache[K, V]) remove(e *entry[K, V]) {
	if c.entries[e.key] != e {
		return
	}
	delete(c.entries, e.key)
	c.lru.Remove(e.el)
	c.weight -= e.weight
	c.wake()
}

func (c *Cache[K, V]) wake() {
	close(c.freed)
	c.freed = make(chan struct{})
}

// evictIdle closes entries left unused for IdleTimeout.
func (c *Cache[K, V]) evictIdle() {
	defer c.done.Done()
	tick := time.NewTicker(max(c.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-tick.C:
			var idle []V
			c.mu.Lock()
			for el := c.lru.Back(); el != nil; {
				e := el.Value.(*entry[K, V])
				el = el.Prev()
				if e.refs == 0 && now.Sub(e.lastUsed) >= c.cfg.IdleTimeout {
					idle = append(idle, e.value)
					c.remove(e)
				}
			}
			c.mu.Unlock()
			c.closeAll(idle)
		}
	}
}
