package limit_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/redis/go-redis/v9"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRedisOutage stops a private redis-server mid-test: decisions go on
// in-process without errors, the outage is logged once and counted, and the
// limiter returns to Redis when it answers again.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	logs := &syncBuffer{}
	m := &recordingMetrics{}
	l := limit.New(limit.Config{
		Default:    limit.Rate{Limit: 3, Period: time.Hour},
		Redis:      rdb,
		RetryRedis: 100 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
		Metrics:    m,
	})
	ctx := context.Background()
	fallbacks := m.fallbacks
	inRedis := func(id string) bool {
		n, err := rdb.Exists(ctx, l.Keys(id)...).Result()
		return err == nil && n == 1
	}

	// Healthy: the decision is made in Redis.
	if n, _ := allowN(t, l, acme, 1); n != 1 || !inRedis(acme.ID) || fallbacks() != 0 {
		t.Fatalf("healthy: allowed %d, in Redis %v, fallbacks %v", n, inRedis(acme.ID), fallbacks())
	}

	srv.Stop()
	// Down: no errors, the in-process bucket limits (3 per hour, fresh).
	if n, _ := allowN(t, l, acme, 5); n != 3 {
		t.Fatalf("during the outage %d of 5 allowed, want 3", n)
	}
	if got := fallbacks(); got != 5 {
		t.Fatalf("fallbacks = %v, want 5", got)
	}
	time.Sleep(150 * time.Millisecond) // past RetryRedis: the next call probes and fails again
	allowN(t, l, acme, 3)
	if c := strings.Count(logs.String(), "cannot reach Redis"); c != 1 {
		t.Fatalf("outage logged %d times, want once:\n%s", c, logs)
	}

	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for !inRedis(globex.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("limiter did not return to Redis; logs:\n%s", logs)
		}
		allowN(t, l, globex, 1)
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "reaches Redis again") {
		t.Errorf("recovery not logged:\n%s", logs)
	}
	before := fallbacks()
	// Back on Redis: the restarted server has an empty budget for acme.
	if n, _ := allowN(t, l, acme, 4); n != 3 || fallbacks() != before {
		t.Fatalf("after recovery %d of 4 allowed (want 3 from Redis), fallbacks %v -> %v", n, before, fallbacks())
	}
}
