package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
)

// FenceKey returns the advisory lock that fences one tenant at one place:
// its strategy (IsolationRLS, IsolationSchema or IsolationDatabase) and its
// placement. Every tenant statement takes it shared for its transaction,
// without waiting (a try: it costs no round trip and no measurable time);
// a move of the tenant's data (package move) takes it exclusively, on a
// session of the source server, for the short switch, after which the
// tenant's statements at that place wait (Config.FreezeTimeout) and, with
// Config.Reload, follow the tenant to its new place. The key is a 64-bit
// FNV-1a hash of the place and the tenant ID, split into the two-int form
// of PostgreSQL's advisory locks: those never collide with locks taken on
// one bigint key (as goose and this module's migrations take them).
// Applications should not take two-int advisory locks of their own.
func FenceKey(kind tenancy.Isolation, placement, tenantID string) [2]int32 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("tenancy-fence\x00" + string(kind) + "\x00" + placement + "\x00" + tenantID))
	v := h.Sum64()
	return [2]int32{int32(v >> 32), int32(uint32(v))}
}

// DefaultFreezeTimeout is how long a tenant statement waits on a move's
// fence unless Config.FreezeTimeout says otherwise.
const DefaultFreezeTimeout = 5 * time.Second

// frozenRetryAfter is the Retry-After of a statement that waited out its
// FreezeTimeout.
const frozenRetryAfter = time.Second

// waitFence is called after t's tenant statement found its fence held; start
// is when the statement first found it so, attempt counts the tries. It
// sleeps a little, then returns the tenant to try again with: t, or, when
// Config.Reload shows the tenant moved to another placement under the same
// strategy, its new record. A tenant whose strategy or tier changed is a
// *isolation.MovedError, for a router (isolation.Hybrid) to follow; one
// that stays fenced past FreezeTimeout an *isolation.FrozenError.
func (c *core) waitFence(ctx context.Context, t *tenancy.Tenant, start time.Time, attempt int) (*tenancy.Tenant, error) {
	waited := time.Since(start)
	if waited >= c.cfg.FreezeTimeout {
		return nil, &isolation.FrozenError{TenantID: t.ID, Waited: waited, After: frozenRetryAfter}
	}
	d := min(time.Millisecond<<min(attempt, 6), 25*time.Millisecond, c.cfg.FreezeTimeout-waited)
	timer := time.NewTimer(d)
	select {
	case <-ctx.Done():
		timer.Stop()
		return nil, ctx.Err()
	case <-timer.C:
	}
	if c.cfg.Reload == nil {
		return t, nil
	}
	nt, err := c.cfg.Reload(ctx, t.ID)
	if err != nil {
		return nil, fmt.Errorf("tenancy: reload tenant %s held by a move: %w", t.ID, err)
	}
	if nt.Placement == t.Placement && nt.Isolation == t.Isolation && nt.Tier == t.Tier {
		return t, nil
	}
	if nt.Isolation == t.Isolation && nt.Tier == t.Tier {
		return nt, nil
	}
	return nil, &isolation.MovedError{Tenant: nt}
}

// frozen reports whether err is a tenant statement's failed fence try.
func frozen(err error) bool { return errors.Is(err, errFrozen) }
