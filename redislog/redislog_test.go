package redislog_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/redislog"
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

func TestPrintf(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(tenancy.NewLogHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx := tenancy.WithTenant(context.Background(), &tenancy.Tenant{ID: "t-1", Identifier: "acme-corp"})

	redislog.Logger{Logger: logger}.Printf(ctx, "pubsub: reconnecting to %s\n", "10.0.0.1:6379")
	got := buf.String()
	for _, want := range []string{"level=WARN", `msg="pubsub: reconnecting to 10.0.0.1:6379"`, "component=go-redis", "tenant=acme-corp"} {
		if !strings.Contains(got, want) {
			t.Errorf("line %q lacks %s", got, want)
		}
	}
	if strings.Count(got, "\n") != 1 {
		t.Errorf("one go-redis line made %q", got)
	}

	// A level below the handler's is dropped; the level is configurable.
	buf = syncBuffer{}
	redislog.Logger{Logger: logger, Level: slog.LevelInfo}.Printf(ctx, "quiet")
	redislog.Logger{Logger: logger, Level: slog.LevelError}.Printf(ctx, "loud")
	if got := buf.String(); strings.Contains(got, "quiet") || !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "loud") {
		t.Errorf("levels: %q", got)
	}
}

// TestUse makes go-redis log a line of its own: it truncates an expiry
// below a millisecond, and says so through the process-wide logger, before
// it tries to connect. Not parallel: the logger is the process's.
func TestUse(t *testing.T) {
	var buf syncBuffer
	redislog.Use(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { redislog.Use(slog.New(slog.DiscardHandler)) })

	// No server listens on port 1: the command fails after its log line.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	_ = rdb.Set(context.Background(), "k", "v", 500*time.Microsecond).Err()

	got := buf.String()
	if !strings.Contains(got, "truncating to 1ms") || !strings.Contains(got, "component=go-redis") || !strings.Contains(got, "level=WARN") {
		t.Fatalf("go-redis's line did not reach the slog logger: %q", got)
	}
}
