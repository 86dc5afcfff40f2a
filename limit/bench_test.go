package limit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/limit"
)

// generous never rejects in a benchmark, so every call takes the full path.
var generous = limit.Rate{Limit: 1_000_000_000, Period: time.Second}

func BenchmarkAllowInProcess(b *testing.B) {
	l := limit.New(limit.Config{Default: generous, Logger: quiet})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, _ := l.Allow(ctx, acme); !ok {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkAllowRedis(b *testing.B) {
	rdb := testenv.Redis(b)
	prefix := testenv.RandomName("tenancy:bench:") + ":"
	l := limit.New(limit.Config{Default: generous, Redis: rdb, Prefix: prefix, Logger: quiet})
	b.Cleanup(func() { _ = l.Reset(context.Background(), acme.ID) })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, _ := l.Allow(ctx, acme); !ok {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkMiddlewareInProcess(b *testing.B) {
	l := limit.New(limit.Config{Default: generous, Logger: quiet})
	h := l.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(tenancy.WithTenant(r.Context(), acme))
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
