package resolve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/go-tenancy/tenancy"
)

// Lookup finds tenants by identifier or domain. tenancy.Store satisfies it,
// and so does the cache package's Store.
type Lookup interface {
	// GetByIdentifier returns the tenant with the given (validated)
	// identifier, or an error wrapping tenancy.ErrTenantNotFound.
	GetByIdentifier(ctx context.Context, identifier string) (*tenancy.Tenant, error)
	// GetByDomain returns the tenant that has verified the given
	// (normalized) custom domain, or an error wrapping
	// tenancy.ErrTenantNotFound.
	GetByDomain(ctx context.Context, domain string) (*tenancy.Tenant, error)
}

// Sources, as reported in Result.Source.
const (
	SourceHeader = "header"
	SourceHost   = "host"
	SourcePath   = "path"
	SourceJWT    = "jwt"
)

// Result is a resolved tenant.
type Result struct {
	// Tenant is the tenant found. It may be shared: treat it as read-only.
	Tenant *tenancy.Tenant
	// Source names the resolver that found it: "header", "host", "path" or
	// "jwt".
	Source string
	// Path, when non-empty, is the path the handler must see instead of the
	// request's: the Path resolver strips its prefix and the identifier.
	Path string
	// RawPath is the escaped form of Path when the request carried one
	// (url.URL.RawPath); empty otherwise.
	RawPath string
	// Claims are what the credential that named the tenant says about the
	// caller, when a resolver verified one: for JWT, a *jwtauth.Claims. The
	// value is opaque to this package and to the middleware, which puts it
	// in the request context (tenancy.WithClaims) for the package that made
	// it to read back typed (jwtauth.ClaimsFromContext). Nil when no
	// resolver verified a credential.
	Claims any
}

// Resolver finds the tenant of a request.
type Resolver interface {
	// Resolve returns the tenant r names. An error wrapping
	// tenancy.ErrNoTenant means the resolver's source is absent from r; any
	// other error means the source is present but unusable.
	Resolve(r *http.Request) (Result, error)
}

// Errors built once: the hot paths return them without allocating.
var (
	errNoLookup      = errors.New("resolve: resolver has no Lookup")
	errNilTenant     = errors.New("resolve: lookup returned no tenant and no error")
	errChainAbsent   = fmt.Errorf("resolve: no source names a tenant: %w", tenancy.ErrNoTenant)
	errChainConflict = fmt.Errorf("resolve: sources name different tenants: %w", tenancy.ErrTenantConflict)
)

// found checks a Lookup answer.
func found(source string, t *tenancy.Tenant, err error) (Result, error) {
	if err != nil {
		return Result{}, fmt.Errorf("resolve: %s: %w", source, err)
	}
	if t == nil {
		return Result{}, errNilTenant
	}
	return Result{Tenant: t, Source: source}, nil
}

// Chain returns a Resolver that tries every resolver in order and skips the
// absent ones.
//
// The first present result wins: its tenant and source are returned, with
// the Path of the first result that has one (a Path resolver later in the
// chain still strips its prefix) and the Claims of the JWT resolver, if any
// took part. Every present source must name the same tenant (compared by
// Tenant.ID, so an alias and its identifier agree); otherwise the error
// wraps tenancy.ErrTenantConflict.
//
// An error other than absence stops the chain, with one exception: a source
// naming an unknown tenant while another source names a known one is a
// conflict too, not "not found", so that a client holding a valid token for
// one tenant cannot probe which other identifiers exist. A host outside
// Host's base domain that is no tenant's custom domain is absent in a
// chain, and "not found" only when no other source is present. With no
// present source the error wraps tenancy.ErrNoTenant.
func Chain(resolvers ...Resolver) Resolver {
	return chain(slices.Clone(resolvers))
}

type chain []Resolver

func (c chain) Resolve(r *http.Request) (Result, error) {
	var (
		res           Result
		present       bool
		notFound      error
		unknownDomain error
	)
	for _, x := range c {
		got, err := x.Resolve(r)
		switch {
		case err == nil:
		case errors.Is(err, tenancy.ErrNoTenant):
			continue
		case errors.Is(err, errUnknownDomain):
			unknownDomain = err
			continue
		case errors.Is(err, tenancy.ErrTenantNotFound):
			if present {
				return Result{}, errChainConflict
			}
			if notFound == nil {
				notFound = err
			}
			continue
		default:
			return Result{}, err
		}
		if got.Tenant == nil {
			return Result{}, errNilTenant
		}
		if !present {
			if notFound != nil {
				return Result{}, errChainConflict
			}
			res, present = got, true
			continue
		}
		if got.Tenant.ID != res.Tenant.ID {
			return Result{}, errChainConflict
		}
		if res.Path == "" && got.Path != "" {
			res.Path, res.RawPath = got.Path, got.RawPath
		}
		if res.Claims == nil {
			res.Claims = got.Claims
		}
	}
	switch {
	case present:
		return res, nil
	case notFound != nil:
		return Result{}, notFound
	case unknownDomain != nil:
		return Result{}, unknownDomain
	}
	return Result{}, errChainAbsent
}
