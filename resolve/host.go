package resolve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/go-tenancy/tenancy"
)

var (
	errHostAbsent  = fmt.Errorf("resolve: host names no tenant: %w", tenancy.ErrNoTenant)
	errHostInvalid = fmt.Errorf("resolve: tenant subdomain: %w", tenancy.ErrInvalidIdentifier)
	// errForwardedInvalid: a trusted peer sent a Forwarded header that does
	// not parse; no host in it can be believed.
	errForwardedInvalid       = fmt.Errorf("resolve: Forwarded header does not parse: %w", tenancy.ErrNoTenant)
	errProxyHeader            = errors.New("resolve: Host.ProxyHeader must be empty, X-Forwarded-Host or Forwarded")
	errUnknownDomain    error = unknownDomainError{}
)

// unknownDomainError: the host lies outside the base domain and no tenant
// has verified it as a custom domain. Alone it is "not found" (404), like
// any unknown tenant; a Chain counts it as absent, because a host outside
// the base domain need not name a tenant at all (an internal service name,
// say), and lets the other sources decide.
type unknownDomainError struct{}

func (unknownDomainError) Error() string {
	return "resolve: host: no tenant has verified this domain: " + tenancy.ErrTenantNotFound.Error()
}

// Unwrap returns tenancy.ErrTenantNotFound.
func (unknownDomainError) Unwrap() error { return tenancy.ErrTenantNotFound }

// HostLookup finds tenants by identifier, alias and verified custom domain:
// what Host needs. tenancy.Store satisfies it, and so does the cache
// package's Store.
type HostLookup interface {
	Lookup
	// GetByAlias returns the tenant with the given (normalized) alias, or
	// an error wrapping tenancy.ErrTenantNotFound.
	GetByAlias(ctx context.Context, alias string) (*tenancy.Tenant, error)
}

// Host resolves the tenant from the request's host: a subdomain of
// BaseDomain ("acme.example.com") naming the tenant's identifier or one of
// its aliases, or a verified custom domain ("app.acme.com").
//
// The host is lowercased (DNS names are case-insensitive), its port and one
// trailing dot are dropped. Then:
//
//   - A host under BaseDomain is only ever looked up by its label: a single
//     label ("acme.example.com", or "acme.localhost" with BaseDomain
//     "localhost") first as an identifier (when it is a valid one), then as
//     an alias (GetByAlias); neither matching is "not found" (404). The bare
//     base domain and hosts of more than one label under it are absent.
//     Such a host is never looked up as a custom domain, so a tenant that
//     registers "acme.example.com" as its custom domain cannot take acme's
//     subdomain, whatever the store holds.
//   - A host of two labels or more outside BaseDomain is looked up as a
//     custom domain (GetByDomain, which finds verified domains only). No
//     match is "not found" (404) when Host is used alone; in a Chain it
//     counts as absent, so that the other sources decide. An unverified
//     domain answers exactly as an unknown one does.
//
// Anything else is absent: IP literals and single-label hosts outside the
// base domain ("localhost" with another base). A host that is not a valid
// DNS name is absent too, unless it is a single label under BaseDomain,
// which is then invalid (400).
//
// # Behind proxies
//
// The host a proxy passes on is read only when the immediate peer
// (r.RemoteAddr) is in TrustedProxies (none by default): a client cannot
// pick its tenant by sending the header itself. Only the header named by
// ProxyHeader is read, and within it only what trusted proxies added: the
// chain is walked from the right, as for X-Forwarded-For, skipping the
// trusted proxies, and the value added by the outermost one (the proxy the
// client connected to) is used. Values the client sent, on the left, are
// never used.
//
//   - X-Forwarded-Host (the default): the trusted proxies are counted from
//     the right of X-Forwarded-For, and the X-Forwarded-Host value at the
//     same place from the right is used, or its left-most value when it has
//     fewer. So each trusted proxy must append to both headers, or the
//     first one must set X-Forwarded-Host (replacing what the client sent)
//     and the others leave it alone.
//   - Forwarded (RFC 7239): elements are skipped from the right while their
//     for= names a trusted proxy; the host= of the next one is used. A
//     Forwarded header that does not parse names no tenant.
//
// When the header is absent, or the value found is empty, the Host header
// is used. TrustedProxies must list proxies only: a client inside one of
// its prefixes counts as a proxy.
type Host struct {
	// BaseDomain is the domain tenants get subdomains of, such as
	// "example.com" or "localhost". Empty: only custom domains resolve.
	BaseDomain string
	// TrustedProxies are the peers whose proxy header is believed, and the
	// addresses skipped when walking it. Default none: proxy headers are
	// ignored.
	TrustedProxies []netip.Prefix
	// ProxyHeader names the header the trusted proxies report the requested
	// host in: HeaderXForwardedHost (the default) or HeaderForwarded. The
	// other is ignored: a proxy that manages one of them passes the other
	// on from the client untouched, so reading both would let a client
	// choose. Any other value makes Resolve fail.
	ProxyHeader string
	// Lookup finds the tenant. Required.
	Lookup HostLookup
}

// Resolve implements Resolver.
func (h Host) Resolve(r *http.Request) (Result, error) {
	if h.Lookup == nil {
		return Result{}, errNoLookup
	}
	raw := r.Host
	if len(h.TrustedProxies) > 0 && trustedAddr(r.RemoteAddr, h.TrustedProxies) {
		var fwd string
		switch h.ProxyHeader {
		case "", HeaderXForwardedHost:
			fwd = xForwardedHost(r.Header, h.TrustedProxies)
		case HeaderForwarded:
			var ok bool
			if fwd, ok = forwardedHost(r.Header, h.TrustedProxies); !ok {
				return Result{}, errForwardedInvalid
			}
		default:
			return Result{}, errProxyHeader
		}
		if fwd != "" {
			raw = fwd
		}
	}
	host, ok := stripPort(raw)
	if !ok {
		return Result{}, errHostAbsent
	}
	base := strings.Trim(h.BaseDomain, ".")
	norm, ok := tenancy.NormalizeHost(host)
	if !ok {
		// Only a malformed tenant label is the client's error; any other odd
		// host (an internal service name with '_', say) just names no tenant.
		if label, ok := singleLabelUnder(strings.TrimSuffix(host, "."), base); ok && label != "" {
			return Result{}, errHostInvalid
		}
		return Result{}, errHostAbsent
	}
	if _, err := netip.ParseAddr(norm); err == nil {
		return Result{}, errHostAbsent
	}
	ctx := r.Context()
	if base = strings.ToLower(base); base != "" && (norm == base || strings.HasSuffix(norm, "."+base)) {
		label, ok := singleLabelUnder(norm, base)
		if !ok {
			return Result{}, errHostAbsent
		}
		if tenancy.ValidateIdentifier(label) == nil {
			t, err := h.Lookup.GetByIdentifier(ctx, label)
			if !errors.Is(err, tenancy.ErrTenantNotFound) {
				return found(SourceHost, t, err)
			}
		}
		t, err := h.Lookup.GetByAlias(ctx, label)
		return found(SourceHost, t, err)
	}
	if strings.IndexByte(norm, '.') < 0 {
		// A single label is no custom domain.
		return Result{}, errHostAbsent
	}
	t, err := h.Lookup.GetByDomain(ctx, norm)
	if errors.Is(err, tenancy.ErrTenantNotFound) {
		return Result{}, errUnknownDomain
	}
	return found(SourceHost, t, err)
}

// singleLabelUnder returns the label of host when host is exactly one label
// under base ("acme" for "acme.example.com"). The comparison is ASCII
// case-insensitive, so it also serves hosts that are not normalized.
func singleLabelUnder(host, base string) (string, bool) {
	if base == "" || len(host) <= len(base)+1 {
		return "", false
	}
	cut := len(host) - len(base) - 1
	if host[cut] != '.' || !asciiEqualFold(host[cut+1:], base) {
		return "", false
	}
	label := host[:cut]
	if strings.IndexByte(label, '.') >= 0 {
		return "", false
	}
	return label, true
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// stripPort drops the port from a Host value. It reports false for an empty
// host and for IP literals, bracketed or not, which never name a tenant.
func stripPort(hostport string) (string, bool) {
	if hostport == "" || hostport[0] == '[' {
		return "", false
	}
	host := hostport
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		if strings.IndexByte(hostport[:i], ':') >= 0 {
			// More than one colon: a bare IPv6 address, or garbage.
			return "", false
		}
		host = hostport[:i]
		for _, c := range []byte(hostport[i+1:]) {
			if c < '0' || c > '9' {
				return "", false
			}
		}
	}
	if host == "" {
		return "", false
	}
	return host, true
}
