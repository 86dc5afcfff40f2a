package cache_test

import (
	"testing"

	"github.com/go-tenancy/tenancy/cache"
	"github.com/go-tenancy/tenancy/internal/testenv"
)

func BenchmarkGetHit(b *testing.B) {
	ctx := tenantCtx("bench")
	for _, name := range []string{"in-process", "redis"} {
		b.Run(name, func(b *testing.B) {
			cfg := cache.Config{Logger: quiet}
			if name == "redis" {
				cfg.Redis, cfg.Prefix = testenv.Redis(b), testenv.RandomName("cachebench")
			}
			c, err := cache.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Set(ctx, "user:1:profile", []byte(`{"name":"alice"}`), 0); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, _ := c.Get(ctx, "user:1:profile"); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}
