package resolve

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/go-tenancy/tenancy"
)

// TokenVerifier verifies a bearer token. *jwtauth.Verifier implements it.
type TokenVerifier interface {
	// VerifyTenant verifies token and returns the tenant identifier it
	// names and its verified claims, which JWT returns in Result.Claims
	// without looking at them. A token that fails verification is an error
	// wrapping tenancy.ErrUnauthenticated.
	VerifyTenant(token string) (identifier string, claims any, err error)
}

var (
	errTokenAbsent   = fmt.Errorf("resolve: no bearer token: %w", tenancy.ErrNoTenant)
	errTokenMissing  = fmt.Errorf("resolve: bearer token required: %w", tenancy.ErrUnauthenticated)
	errTokenMultiple = fmt.Errorf("resolve: more than one Authorization header: %w", tenancy.ErrUnauthenticated)
	errNoVerifier    = fmt.Errorf("resolve: JWT resolver has no Verifier")
)

// JWT resolves the tenant from the tenant claim of a bearer token
// (Authorization: Bearer ...). The claim is an identifier, validated by the
// verifier and looked up; the verified claims are returned in
// Result.Claims.
//
// A request without a bearer token is unauthenticated (401), or absent when
// Optional is set, so that a Chain can resolve it another way. A bad token
// is always unauthenticated.
type JWT struct {
	// Verifier verifies tokens. Required.
	Verifier TokenVerifier
	// Lookup finds the tenant. Required.
	Lookup Lookup
	// Optional makes a missing token absent instead of unauthenticated.
	// Default false.
	Optional bool
}

// Resolve implements Resolver.
func (j JWT) Resolve(r *http.Request) (Result, error) {
	if j.Lookup == nil {
		return Result{}, errNoLookup
	}
	if j.Verifier == nil {
		return Result{}, errNoVerifier
	}
	vals := r.Header["Authorization"]
	if len(vals) > 1 {
		return Result{}, errTokenMultiple
	}
	token, ok := "", false
	if len(vals) == 1 {
		token, ok = bearer(vals[0])
	}
	if !ok {
		if j.Optional {
			return Result{}, errTokenAbsent
		}
		return Result{}, errTokenMissing
	}
	ident, claims, err := j.Verifier.VerifyTenant(token)
	if err != nil {
		return Result{}, fmt.Errorf("resolve: %w", err)
	}
	// The verifier validates the claim; check again so that a custom
	// TokenVerifier cannot hand the Lookup anything else.
	if tenancy.ValidateIdentifier(ident) != nil {
		return Result{}, fmt.Errorf("resolve: token tenant claim: %w", tenancy.ErrUnauthenticated)
	}
	t, err := j.Lookup.GetByIdentifier(r.Context(), ident)
	res, err := found(SourceJWT, t, err)
	if err != nil {
		return Result{}, err
	}
	res.Claims = claims
	return res, nil
}

// bearer returns the token of an "Authorization: Bearer <token>" value. The
// scheme is case-insensitive (RFC 9110 §11.1). A Bearer scheme with no token
// returns "" and true: the token is present but bad.
func bearer(v string) (string, bool) {
	const scheme = "bearer"
	if len(v) < len(scheme) || !asciiEqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	rest := v[len(scheme):]
	if rest != "" && rest[0] != ' ' {
		return "", false // "Bearerx": another scheme
	}
	return strings.TrimLeft(rest, " "), true
}
