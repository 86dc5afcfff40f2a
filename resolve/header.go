package resolve

import (
	"fmt"
	"net/http"
	"net/textproto"

	"github.com/go-tenancy/tenancy"
)

// DefaultHeader is the header the Header resolver reads by default.
const DefaultHeader = "X-Tenant-ID"

// canonicalDefaultHeader is DefaultHeader as net/http stores it, so the
// default needs no canonicalization per request.
const canonicalDefaultHeader = "X-Tenant-Id"

var (
	errHeaderAbsent   = fmt.Errorf("resolve: tenant header absent: %w", tenancy.ErrNoTenant)
	errHeaderInvalid  = fmt.Errorf("resolve: tenant header: %w", tenancy.ErrInvalidIdentifier)
	errHeaderConflict = fmt.Errorf("resolve: tenant header repeated with different values: %w", tenancy.ErrTenantConflict)
)

// Header resolves the tenant from a request header holding its identifier.
//
// The value must pass tenancy.ValidateIdentifier exactly as sent: " acme",
// "ACME" and "acme\n" are refused (400), never trimmed or folded. A header
// that is present but empty is invalid, not absent. A header repeated with
// different values is a conflict (403).
type Header struct {
	// Name is the header name. Default "X-Tenant-ID".
	Name string
	// Lookup finds the tenant. Required.
	Lookup Lookup
}

// Resolve implements Resolver.
func (h Header) Resolve(r *http.Request) (Result, error) {
	if h.Lookup == nil {
		return Result{}, errNoLookup
	}
	name := h.Name
	if name == "" {
		name = canonicalDefaultHeader
	}
	vals, ok := r.Header[name]
	if !ok {
		if cn := textproto.CanonicalMIMEHeaderKey(name); cn != name {
			vals = r.Header[cn]
		}
	}
	if len(vals) == 0 {
		return Result{}, errHeaderAbsent
	}
	v := vals[0]
	for _, o := range vals[1:] {
		if o != v {
			return Result{}, errHeaderConflict
		}
	}
	if tenancy.ValidateIdentifier(v) != nil {
		return Result{}, errHeaderInvalid
	}
	t, err := h.Lookup.GetByIdentifier(r.Context(), v)
	return found(SourceHeader, t, err)
}
