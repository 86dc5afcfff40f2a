package poolcache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type res struct {
	key    string
	closed atomic.Bool
}

func newCache(t *testing.T, maxWeight int, idle time.Duration) (*Cache[string, *res], *atomic.Int64) {
	t.Helper()
	var open atomic.Int64
	c, err := New[string](Config[*res]{MaxWeight: maxWeight, IdleTimeout: idle, Close: func(r *res) {
		if r.closed.Swap(true) {
			t.Errorf("%s closed twice", r.key)
		}
		open.Add(-1)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, &open
}

func opener(key string, open *atomic.Int64) func() (*res, error) {
	return func() (*res, error) {
		open.Add(1)
		return &res{key: key}, nil
	}
}

func TestBoundUnderConcurrency(t *testing.T) {
	t.Parallel()
	c, open := newCache(t, 4, 0)
	var wg sync.WaitGroup
	var over atomic.Bool
	for i := range 200 {
		wg.Go(func() {
			key := string(rune('a' + i%10))
			h, err := c.Acquire(context.Background(), key, 2, opener(key, open))
			if err != nil {
				t.Error(err)
				return
			}
			if h.Value().closed.Load() {
				t.Error("acquired a closed value")
			}
			if _, w := c.Stats(); w > 4 {
				over.Store(true)
			}
			time.Sleep(time.Millisecond)
			h.Release()
		})
	}
	wg.Wait()
	if over.Load() {
		t.Fatal("total weight went over the bound")
	}
	if n := open.Load(); n > 2 {
		t.Fatalf("%d values open, bound allows 2", n)
	}
}

func TestReuseAndInUseNeverEvicted(t *testing.T) {
	t.Parallel()
	c, open := newCache(t, 2, 0)
	ctx := context.Background()
	a, _ := c.Acquire(ctx, "a", 1, opener("a", open))
	a2, _ := c.Acquire(ctx, "a", 1, opener("a", open))
	if a.Value() != a2.Value() {
		t.Fatal("the same key opened twice")
	}
	b, _ := c.Acquire(ctx, "b", 1, opener("b", open))
	// No room for c while a and b are held: the acquire waits and gives up
	// with its context.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.Acquire(short, "c", 1, opener("c", open)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
	// Releasing b lets a waiting acquire of c in, evicting b, never a.
	got := make(chan *Handle[string, *res])
	go func() {
		h, err := c.Acquire(ctx, "c", 1, opener("c", open))
		if err != nil {
			t.Error(err)
		}
		got <- h
	}()
	time.Sleep(20 * time.Millisecond)
	b.Release()
	h := <-got
	if !b.Value().closed.Load() || a.Value().closed.Load() {
		t.Fatalf("evicted b %v, a %v; want b only", b.Value().closed.Load(), a.Value().closed.Load())
	}
	h.Release()
	a.Release()
	a2.Release()
}

func TestIdleEviction(t *testing.T) {
	t.Parallel()
	c, open := newCache(t, 10, 50*time.Millisecond)
	h, _ := c.Acquire(context.Background(), "a", 1, opener("a", open))
	time.Sleep(150 * time.Millisecond)
	if n, _ := c.Stats(); n != 1 {
		t.Fatal("an entry in use was evicted")
	}
	h.Release()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if n, _ := c.Stats(); n == 0 && open.Load() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("idle entry was not closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRemoveAndClose(t *testing.T) {
	t.Parallel()
	c, open := newCache(t, 10, 0)
	ctx := context.Background()
	h, _ := c.Acquire(ctx, "a", 1, opener("a", open))
	if !c.Remove("a") || !h.Value().closed.Load() {
		t.Fatal("Remove did not close the entry")
	}
	h.Release() // releasing a removed entry is harmless
	if c.Remove("a") {
		t.Fatal("second Remove found an entry")
	}
	if _, err := c.Acquire(ctx, "b", 1, opener("b", open)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if open.Load() != 0 {
		t.Fatal("Close left values open")
	}
	if _, err := c.Acquire(ctx, "b", 1, opener("b", open)); !errors.Is(err, ErrClosed) {
		t.Fatalf("acquire after Close: %v", err)
	}
	if _, err := c.Acquire(ctx, "big", 11, opener("big", open)); err == nil {
		t.Fatal("an entry heavier than the bound was accepted")
	}
}
