// Package problem writes errors as RFC 9457 problem details
// (application/problem+json), and maps the tenancy errors to their HTTP
// status in one place, so that every middleware and handler answers the same
// failure the same way.
package problem

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/go-tenancy/tenancy"
)

// ContentType is the media type of a problem details body.
const ContentType = "application/problem+json"

// TypeBase prefixes every problem type URI; the fragment names the problem,
// and docs/problems.md documents each.
const TypeBase = "https://github.com/go-tenancy/tenancy/blob/main/docs/problems.md#"

// Details is a problem details object. Detail and the Errors messages must
// never carry raw request input: they are written by this package or by the
// application, never copied from the request.
type Details struct {
	Type     string        `json:"type"`
	Title    string        `json:"title"`
	Status   int           `json:"status"`
	Detail   string        `json:"detail,omitempty"`
	Instance string        `json:"instance,omitempty"`
	Errors   []FieldDetail `json:"errors,omitempty"`

	// Quota describes an exceeded quota (quota-exceeded): the resource, the
	// limit, the usage and the tier, as extension members.
	*Quota

	// Header holds response headers to set, such as Retry-After.
	Header http.Header `json:"-"`
}

// Quota holds the extension members of a quota-exceeded problem.
type Quota struct {
	Resource string `json:"resource"`
	Limit    int64  `json:"limit"`
	Usage    int64  `json:"usage"`
	Tier     string `json:"tier"`
}

// FieldDetail names one invalid field of a request (for 422 responses). Its
// shape matches huma's ErrorDetail, so the examples' own validation errors and
// these read alike.
type FieldDetail struct {
	Message  string `json:"message"`
	Location string `json:"location,omitempty"`
}

// New returns Details of the given type slug, status and title.
func New(slug string, status int, title string) Details {
	return Details{Type: TypeBase + slug, Title: title, Status: status}
}

// Problem slugs, stable: clients may match on the type URI.
const (
	SlugTenantMissing    = "tenant-missing"
	SlugTenantInvalid    = "tenant-invalid"
	SlugTenantNotFound   = "tenant-not-found"
	SlugTenantSuspended  = "tenant-suspended"
	SlugTenantDeleted    = "tenant-deleted"
	SlugTenantNotReady   = "tenant-not-ready"
	SlugTenantMoving     = "tenant-moving"
	SlugTenantConflict   = "tenant-conflict"
	SlugUnauthenticated  = "unauthenticated"
	SlugRateLimited      = "rate-limited"
	SlugQuotaExceeded    = "quota-exceeded"
	SlugDuplicate        = "duplicate"
	SlugDomainNotFound   = "domain-not-found"
	SlugDomainUnverified = "domain-not-verified"
	SlugInvalidField     = "invalid-field"
	SlugUnavailable      = "unavailable"
	SlugTimeout          = "timeout"
	SlugInternal         = "internal"
)

// DefaultRetryAfter is the Retry-After sent for a tenant that is not ready
// when the error does not say how long to wait.
const DefaultRetryAfter = 30 * time.Second

// UnavailableRetryAfter is the Retry-After sent with unavailable (503) and
// timeout (504): a database that restarts or a pool that reconnects is back
// within seconds.
const UnavailableRetryAfter = 2 * time.Second

// FromError maps err to problem details: tenancy sentinel errors to their
// status (400, 401, 403, 404, 409, 422, 429, 503), a backing service that
// cannot be reached to 503 (see Unavailable), one that did not answer in
// time to 504 (see Timeout), both with Retry-After, and anything else to
// 500. The detail of 500, 503 and 504 is withheld.
func FromError(err error) Details {
	var d Details
	switch {
	case errors.Is(err, tenancy.ErrNoTenant):
		d = New(SlugTenantMissing, http.StatusBadRequest, "Tenant missing")
		d.Detail = "The request does not name a tenant."
	case errors.Is(err, tenancy.ErrInvalidIdentifier), errors.Is(err, tenancy.ErrInvalidID):
		d = New(SlugTenantInvalid, http.StatusBadRequest, "Tenant identifier invalid")
		d.Detail = "A tenant identifier is 3 to 56 characters of a-z, 0-9 and '-', starting with a letter."
	case errors.Is(err, tenancy.ErrTenantNotFound):
		d = New(SlugTenantNotFound, http.StatusNotFound, "Tenant not found")
		d.Detail = "No tenant matches the request."
	case errors.Is(err, tenancy.ErrTenantSuspended):
		d = New(SlugTenantSuspended, http.StatusForbidden, "Tenant suspended")
		d.Detail = "The tenant is suspended."
	case errors.Is(err, tenancy.ErrTenantDeleted):
		d = New(SlugTenantDeleted, http.StatusForbidden, "Tenant deleted")
		d.Detail = "The tenant is deleted."
	case errors.Is(err, tenancy.ErrTenantNotReady):
		d = New(SlugTenantNotReady, http.StatusServiceUnavailable, "Tenant not ready")
		d.Detail = "The tenant is not available yet."
		d.setRetryAfter(retryAfter(err, DefaultRetryAfter))
	case errors.Is(err, tenancy.ErrTenantMoving):
		d = New(SlugTenantMoving, http.StatusServiceUnavailable, "Tenant moving")
		d.Detail = "The tenant's data is being moved; try again shortly."
		d.setRetryAfter(retryAfter(err, time.Second))
	case errors.Is(err, tenancy.ErrTenantConflict):
		d = New(SlugTenantConflict, http.StatusForbidden, "Conflicting tenants")
		d.Detail = "The request names more than one tenant."
	case errors.Is(err, tenancy.ErrUnauthenticated):
		d = New(SlugUnauthenticated, http.StatusUnauthorized, "Unauthenticated")
		d.Detail = "A valid bearer token is required."
		d.header().Set("WWW-Authenticate", "Bearer")
	case errors.Is(err, tenancy.ErrRateLimited):
		d = New(SlugRateLimited, http.StatusTooManyRequests, "Too many requests")
		d.Detail = "The tenant's request rate limit is exceeded."
		d.setRetryAfter(retryAfter(err, time.Second))
	case errors.Is(err, tenancy.ErrDomainNotFound):
		d = New(SlugDomainNotFound, http.StatusNotFound, "Domain not found")
		d.Detail = "The tenant has no such custom domain."
	case errors.Is(err, tenancy.ErrDomainNotVerified):
		d = New(SlugDomainUnverified, http.StatusConflict, "Domain not verified")
		d.Detail = "The domain's verification record is missing or holds another token; publish it and try again."
	case errors.Is(err, tenancy.ErrQuotaExceeded):
		d = New(SlugQuotaExceeded, http.StatusForbidden, "Quota exceeded")
		d.Detail = "The tenant's plan allows no more of this resource."
		var qe *tenancy.QuotaError
		if errors.As(err, &qe) {
			d.Quota = &Quota{Resource: qe.Resource, Limit: qe.Limit, Usage: qe.Usage, Tier: qe.Tier}
		}
	case errors.Is(err, tenancy.ErrDuplicate):
		d = New(SlugDuplicate, http.StatusConflict, "Already exists")
		var de *tenancy.DuplicateError
		if errors.As(err, &de) {
			d.Errors = []FieldDetail{{Message: "is already taken", Location: "body." + de.Field}}
		}
	case errors.Is(err, tenancy.ErrInvalidTenant):
		d = New(SlugInvalidField, http.StatusUnprocessableEntity, "Invalid field")
		var fe *tenancy.FieldError
		if errors.As(err, &fe) {
			d.Errors = []FieldDetail{{Message: fe.Reason, Location: "body." + fe.Field}}
		}
	case Timeout(err):
		d = New(SlugTimeout, http.StatusGatewayTimeout, "Timeout")
		d.Detail = "A backing service did not answer in time; try again."
		d.setRetryAfter(UnavailableRetryAfter)
	case Unavailable(err):
		d = New(SlugUnavailable, http.StatusServiceUnavailable, "Service unavailable")
		d.Detail = "A backing service cannot be reached right now; try again."
		d.setRetryAfter(UnavailableRetryAfter)
	default:
		d = New(SlugInternal, http.StatusInternalServerError, "Internal error")
	}
	return d
}

// Timeout reports whether err says that an operation ran out of time: a
// context deadline (the request's, or a statement's), a network timeout,
// or PostgreSQL's query_canceled (SQLSTATE 57014, which statement_timeout
// raises). The request itself was sound; the same one may succeed later.
func Timeout(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return sqlState(err) == "57014"
}

// Unavailable reports whether err is a connection-level failure: the
// backing service could not be reached, or dropped the connection, and the
// request itself was sound. It is one of these:
//
//   - a PostgreSQL error of class 08 (connection exception, which PgBouncer
//     sends too when it loses its server), 57P01 to 57P03 (the server is
//     shutting down, crashed or starting up) or 53300 (too many
//     connections), recognised by the SQLState method of pgconn.PgError;
//   - an error that says it is safe to retry (pgx's SafeToRetry: the
//     statement never reached the server, as with a closed connection);
//   - a network operation that failed (*net.OpError), a refused, reset or
//     aborted connection, a broken pipe, a closed connection or an
//     unexpected EOF.
//
// An error in the statement itself (a syntax error, a constraint) carries
// another SQLSTATE and stays a 500.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	switch state := sqlState(err); {
	case len(state) == 5 && state[:2] == "08", state == "57P01", state == "57P02", state == "57P03", state == "53300":
		return true
	case state != "":
		return false
	}
	var retry interface{ SafeToRetry() bool }
	if errors.As(err, &retry) && retry.SafeToRetry() {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return true
	}
	for _, target := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE, net.ErrClosed, io.ErrUnexpectedEOF} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// sqlState returns the SQLSTATE of the first error in err's chain that has
// one (pgconn.PgError does), or "".
func sqlState(err error) string {
	var pe interface{ SQLState() string }
	if errors.As(err, &pe) {
		return pe.SQLState()
	}
	return ""
}

func retryAfter(err error, fallback time.Duration) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		return ra.RetryAfter()
	}
	return fallback
}

func (d *Details) header() http.Header {
	if d.Header == nil {
		d.Header = make(http.Header, 1)
	}
	return d.Header
}

// setRetryAfter sets Retry-After in whole seconds, rounded up, at least 1.
func (d *Details) setRetryAfter(after time.Duration) {
	secs := max(1, int64(math.Ceil(after.Seconds())))
	d.header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

// Write sends d as the response.
func Write(w http.ResponseWriter, d Details) {
	h := w.Header()
	for k, v := range d.Header {
		h[k] = v
	}
	h.Set("Content-Type", ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(d.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(d)
}

// MarshalJSON encodes d as the body Write sends: readable text, with '<',
// '>' and '&' as they are rather than \u003c and the like (the body is
// never HTML; Write sends it with X-Content-Type-Options: nosniff).
func (d Details) MarshalJSON() ([]byte, error) {
	type details Details // without this method
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(details(d)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// WriteError maps err with FromError and writes it. The request path is not
// echoed as Instance: it is raw client input.
func WriteError(w http.ResponseWriter, err error) {
	Write(w, FromError(err))
}
