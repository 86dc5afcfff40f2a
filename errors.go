package tenancy

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Test for them with errors.Is; the problem package maps
// each to its HTTP status in one place.
var (
	// ErrNoTenant: the request or call names no tenant (HTTP 400).
	ErrNoTenant = errors.New("no tenant given")
	// ErrInvalidIdentifier: a tenant identifier fails ValidateIdentifier (400).
	ErrInvalidIdentifier = errors.New("invalid tenant identifier")
	// ErrInvalidID: a tenant ID fails ValidateID (400).
	ErrInvalidID = errors.New("invalid tenant ID")
	// ErrInvalidTenant: a tenant record has an invalid field; the error is a
	// *FieldError naming it (422).
	ErrInvalidTenant = errors.New("invalid tenant")
	// ErrTenantNotFound: no tenant has that ID, identifier or domain (404).
	ErrTenantNotFound = errors.New("tenant not found")
	// ErrTenantSuspended: the tenant is suspended (403).
	ErrTenantSuspended = errors.New("tenant is suspended")
	// ErrTenantDeleted: the tenant is deleted (403).
	ErrTenantDeleted = errors.New("tenant is deleted")
	// ErrTenantNotReady: the tenant is provisioning or failed (503).
	ErrTenantNotReady = errors.New("tenant is not ready")
	// ErrTenantConflict: two sources in one request name different tenants
	// (403).
	ErrTenantConflict = errors.New("request names more than one tenant")
	// ErrUnauthenticated: a required token is missing or invalid (401).
	ErrUnauthenticated = errors.New("missing or invalid token")
	// ErrDuplicate: an ID, identifier, alias or domain is already taken; the
	// error is a *DuplicateError naming it (409).
	ErrDuplicate = errors.New("tenant already exists")
	// ErrRateLimited: the tenant is over its request rate (429); the error
	// implements RetryAfter() time.Duration.
	ErrRateLimited = errors.New("rate limit exceeded")
	// ErrDomainNotFound: the tenant holds no such custom domain (404).
	ErrDomainNotFound = errors.New("domain not found")
	// ErrDomainNotVerified: a custom domain's ownership check failed: its
	// challenge record is missing or holds another token (409). Publish the
	// record and try again.
	ErrDomainNotVerified = errors.New("domain not verified")
	// ErrQuotaExceeded: the tenant's tier allows no more of a resource (403 or
	// 409 at the application's choice; the problem package uses 403). The
	// quota package's error is a *QuotaError naming the resource.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrTenantMoving: the tenant's data is being moved (a move between
	// servers or strategies, or an import) and its statements are held for
	// the short switch; one that waited longer than the provider allows
	// gets this error (503 with Retry-After).
	ErrTenantMoving = errors.New("tenant is being moved")
)

// FieldError reports an invalid field of a tenant record. It wraps
// ErrInvalidTenant.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid tenant %s: %s", e.Field, e.Reason)
}

// Unwrap returns ErrInvalidTenant.
func (e *FieldError) Unwrap() error { return ErrInvalidTenant }

// DuplicateError reports that a unique field is already taken. It wraps
// ErrDuplicate.
type DuplicateError struct {
	// Field is the field of the write that collides: "id", "identifier",
	// "alias" or "domain". Identifiers and aliases share one namespace, so
	// "identifier" may collide with another tenant's alias and "alias" with
	// another tenant's identifier.
	Field string
	// Value is the taken value, already validated by the store.
	Value string
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("tenant %s %q is already taken", e.Field, e.Value)
}

// Unwrap returns ErrDuplicate.
func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// QuotaError reports that a tenant has used all of a resource its tier (or
// its own override) allows. It wraps ErrQuotaExceeded; the problem package
// names its fields in the response.
type QuotaError struct {
	// Resource is the counted resource, such as "projects".
	Resource string
	// Limit is what the tenant may have.
	Limit int64
	// Usage is what it has.
	Usage int64
	// Tier is the tenant's tier.
	Tier string
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("quota exceeded: %s %d of %d (tier %q)", e.Resource, e.Usage, e.Limit, e.Tier)
}

// Unwrap returns ErrQuotaExceeded.
func (e *QuotaError) Unwrap() error { return ErrQuotaExceeded }

// RetryAfterError is an error that tells the client when to try again, such as
// a rate limit or a tenant that is still provisioning.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns how long the client should wait.
func (e *RetryAfterError) RetryAfter() time.Duration { return e.After }
