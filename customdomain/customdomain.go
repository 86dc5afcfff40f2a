// Package customdomain adds custom domains to tenants and proves that each
// tenant controls its domains before they resolve.
//
// A domain is added unverified, with a token the store generates
// (tenancy.Store.AddDomain). The domain's owner publishes the token in a
// DNS TXT record named ChallengeName(domain):
//
//	_tenancy-challenge.app.acme.com.  300  IN  TXT  "3f1c9a0e5b7d4c2a8e6f1b3d5a7c9e0f"
//
// Verify looks the record up and, when it holds the token, marks the
// domain verified (tenancy.Store.VerifyDomain); from then on the host
// resolver answers for it. Until then the domain resolves no more than an
// unknown one does.
//
// A Manager knows the service's base domain, the one tenants get
// subdomains of, and refuses custom domains equal to it or under it: those
// names belong to tenants' identifiers and aliases. The host resolver
// refuses them too (resolve.Host never looks up a host under its base
// domain as a custom domain), so a domain written to the store by another
// path still cannot take a tenant's subdomain; the Manager's check makes
// the mistake an error when the domain is added, rather than a domain that
// silently never resolves.
package customdomain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/go-tenancy/tenancy"
)

// ChallengeLabel is the label under a custom domain at which its
// verification TXT record is published.
const ChallengeLabel = "_tenancy-challenge"

// ChallengeName returns the name of the TXT record that verifies domain:
// "_tenancy-challenge." followed by the domain.
func ChallengeName(domain string) string { return ChallengeLabel + "." + domain }

// Resolver looks up TXT records. *net.Resolver satisfies it; tests pass a
// fake.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Store is the part of tenancy.Store a Manager uses.
type Store interface {
	AddDomain(ctx context.Context, id, domain string) (*tenancy.Domain, error)
	ListDomains(ctx context.Context, id string) ([]tenancy.Domain, error)
	VerifyDomain(ctx context.Context, id, domain string) (*tenancy.Domain, error)
}

// Manager adds custom domains to tenants and verifies them. The zero value
// is not usable: Store and BaseDomain are required.
type Manager struct {
	// Store keeps the domains. Pass the cache decorator when there is one,
	// so that a verified domain resolves at once on every instance.
	Store Store
	// BaseDomain is the domain tenants get subdomains of, as configured on
	// resolve.Host, such as "example.com". Required: Add refuses custom
	// domains equal to it or under it.
	BaseDomain string
	// Resolver looks up the challenge records. Default net.DefaultResolver.
	// Verification is only as good as the resolver: use one that validates
	// DNSSEC, or at least one you trust, not one a tenant controls.
	Resolver Resolver
}

var errNoBaseDomain = errors.New("customdomain: Manager.BaseDomain is not set: it is needed to refuse custom domains under it")

// CheckDomain normalizes domain (tenancy.NormalizeDomain) and returns it,
// or a *tenancy.FieldError for "domain" when it is not a valid custom
// domain or when it is baseDomain itself or a name under it.
func CheckDomain(baseDomain, domain string) (string, error) {
	d, ok := tenancy.NormalizeDomain(domain)
	if !ok {
		return "", &tenancy.FieldError{Field: "domain", Reason: "a custom domain is a host name of two labels or more, not an IP address"}
	}
	if base := normalizeBase(baseDomain); base != "" && (d == base || strings.HasSuffix(d, "."+base)) {
		return "", &tenancy.FieldError{Field: "domain", Reason: "a custom domain cannot be the base domain or a name under it: those are tenants' subdomains (use an alias)"}
	}
	return d, nil
}

func normalizeBase(base string) string {
	return strings.ToLower(strings.Trim(base, "."))
}

func (m Manager) check() error {
	if m.Store == nil {
		return errors.New("customdomain: Manager.Store is not set")
	}
	if normalizeBase(m.BaseDomain) == "" {
		return errNoBaseDomain
	}
	return nil
}

// Add adds domain to tenant id, unverified, after checking it against the
// base domain. Publish the returned Token at ChallengeName(Name), then call
// Verify. Adding a domain the tenant already holds returns it unchanged.
func (m Manager) Add(ctx context.Context, id, domain string) (*tenancy.Domain, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	d, err := CheckDomain(m.BaseDomain, domain)
	if err != nil {
		return nil, err
	}
	return m.Store.AddDomain(ctx, id, d)
}

// Verify checks that the TXT record ChallengeName(domain) holds the token
// of tenant id's domain and, if it does, marks the domain verified. The
// check runs even when the domain is verified already, which keeps it so
// either way. It returns an error wrapping tenancy.ErrDomainNotVerified
// when the record is missing or holds no matching value,
// tenancy.ErrDomainNotFound when the tenant does not hold the domain, a
// *tenancy.FieldError when the domain lies under the base domain (it could
// never resolve), and the resolver's error when DNS cannot be asked.
func (m Manager) Verify(ctx context.Context, id, domain string) (*tenancy.Domain, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	name, ok := tenancy.NormalizeDomain(domain)
	if !ok {
		return nil, fmt.Errorf("customdomain: verify: %w", tenancy.ErrDomainNotFound)
	}
	held, err := m.Store.ListDomains(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("customdomain: verify: %w", err)
	}
	var d *tenancy.Domain
	for i := range held {
		if held[i].Name == name {
			d = &held[i]
		}
	}
	if d == nil {
		return nil, fmt.Errorf("customdomain: verify %s: %w", name, tenancy.ErrDomainNotFound)
	}
	// Held from before this check existed, or written past it: never
	// verified, since it could never resolve.
	if _, err := CheckDomain(m.BaseDomain, name); err != nil {
		return nil, err
	}
	if err := m.lookup(ctx, d); err != nil {
		return nil, err
	}
	return m.Store.VerifyDomain(ctx, id, name)
}

// lookup checks the challenge record of d.
func (m Manager) lookup(ctx context.Context, d *tenancy.Domain) error {
	r := m.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	record := ChallengeName(d.Name)
	values, err := r.LookupTXT(ctx, record)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return fmt.Errorf("customdomain: verify %s: no TXT record at %s: %w", d.Name, record, tenancy.ErrDomainNotVerified)
		}
		return fmt.Errorf("customdomain: verify %s: look up TXT %s: %w", d.Name, record, err)
	}
	for _, v := range values {
		if strings.TrimSpace(v) == d.Token {
			return nil
		}
	}
	if len(values) == 0 {
		return fmt.Errorf("customdomain: verify %s: no TXT record at %s: %w", d.Name, record, tenancy.ErrDomainNotVerified)
	}
	// The values came from DNS: not repeated here.
	return fmt.Errorf("customdomain: verify %s: the TXT record at %s holds %d value(s), none of them the domain's token: %w",
		d.Name, record, len(values), tenancy.ErrDomainNotVerified)
}
