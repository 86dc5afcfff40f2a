package cache

import (
	"context"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/redis/go-redis/v9"
)

var _ tenancy.Component = (*Store)(nil)

// Forget implements tenancy.Component: it drops every entry of t, as
// Invalidate does, from L1, from Redis and from the L1 of every other
// instance. It fails when Redis cannot be reached (the deletion is then
// retried in the background).
func (s *Store) Forget(ctx context.Context, t *tenancy.Tenant) error {
	keys := tenantKeys(t)
	if len(keys) == 0 {
		return nil // nothing of t can have been cached
	}
	if err := s.invalidate(ctx, keys); err != nil {
		return fmt.Errorf("cache: forget tenant %s: %w", t.ID, err)
	}
	return nil
}

// Residue implements tenancy.Component: it names the entries of t still in
// this instance's L1 and in Redis. A remembered "not found" is no residue.
// Other instances' L1 is theirs: a Forget reaches it through Redis.
func (s *Store) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	keys := tenantKeys(t)
	var left []string
	for _, k := range keys {
		if e, ok := s.l1.GetIfPresent(k); ok && e != nil && e.ID == t.ID {
			left = append(left, "cache entry by "+k.kind.String()+" "+k.value)
		}
	}
	if s.redis == nil || len(keys) == 0 {
		return left, nil
	}
	cmds := make([]*redis.IntCmd, len(keys))
	_, err := s.redis.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Exists(ctx, s.redisKey(k))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache: check Redis for tenant %s: %w", t.ID, err)
	}
	for i, c := range cmds {
		if c.Val() > 0 {
			left = append(left, "redis key "+s.redisKey(keys[i]))
		}
	}
	return left, nil
}
