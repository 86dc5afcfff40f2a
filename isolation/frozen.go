package isolation

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-tenancy/tenancy"
)

// FrozenError reports that a tenant's statements were held by a move of its
// data (package move) for longer than the provider waits. It wraps
// tenancy.ErrTenantMoving; the problem package answers 503 with Retry-After.
type FrozenError struct {
	// TenantID is the tenant being moved.
	TenantID string
	// Waited is how long the statement waited before giving up.
	Waited time.Duration
	// After is when to try again.
	After time.Duration
}

func (e *FrozenError) Error() string {
	return fmt.Sprintf("tenant %s is being moved: its statements are held (waited %s)", e.TenantID, e.Waited.Round(time.Millisecond))
}

// Unwrap returns tenancy.ErrTenantMoving.
func (e *FrozenError) Unwrap() error { return tenancy.ErrTenantMoving }

// RetryAfter returns when to try again.
func (e *FrozenError) RetryAfter() time.Duration { return e.After }

// MovedError reports that a tenant's record changed while one of its
// statements waited on a move: Tenant is the record as it is now. Nothing of
// the statement ran. Providers that route tenants (Hybrid) retry the
// statement with the new record; it wraps tenancy.ErrTenantMoving, so one
// that reaches the HTTP layer is a 503 with Retry-After, after which the
// client's retry resolves the tenant afresh.
type MovedError struct {
	Tenant *tenancy.Tenant
}

func (e *MovedError) Error() string {
	return fmt.Sprintf("tenant %s has moved (strategy %q, tier %q, placement %q)", e.Tenant.ID, e.Tenant.Isolation, e.Tenant.Tier, e.Tenant.Placement)
}

// Unwrap returns tenancy.ErrTenantMoving.
func (e *MovedError) Unwrap() error { return tenancy.ErrTenantMoving }

// RetryAfter returns one second.
func (e *MovedError) RetryAfter() time.Duration { return time.Second }

// movedTo returns the tenant's new record when err is a MovedError.
func movedTo(err error) (*tenancy.Tenant, bool) {
	var m *MovedError
	if errors.As(err, &m) && m.Tenant != nil {
		return m.Tenant, true
	}
	return nil, false
}
