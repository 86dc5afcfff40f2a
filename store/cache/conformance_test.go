package cache

import (
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/go-tenancy/tenancy/store/pgstore"
	"github.com/go-tenancy/tenancy/store/storetest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The cache is a tenancy.Store, and passes the stores' conformance suite
// in front of each kind of store, with and without Redis.

func TestConformanceMemory(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) tenancy.Store {
		c, _ := newCache(t, memstore.New(), Config{})
		return c
	})
}

func TestConformanceMemoryRedis(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) tenancy.Store {
		c, _ := newCache(t, memstore.New(), sharedRedis(t).config())
		return c
	})
}

func TestConformancePostgresRedis(t *testing.T) {
	t.Parallel()
	pool := testenv.Pool(t, testenv.NewDatabase(t), func(c *pgxpool.Config) { c.MaxConns = 8 })
	storetest.Run(t, func(t *testing.T) tenancy.Store {
		cfg := pgstore.Config{Schema: testenv.RandomName("ts_")}
		if err := pgstore.Migrate(t.Context(), pool, cfg); err != nil {
			t.Fatalf("migrate the tenant store: %v", err)
		}
		durable, err := pgstore.New(t.Context(), pool, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := newCache(t, durable, sharedRedis(t).config())
		return c
	})
}
