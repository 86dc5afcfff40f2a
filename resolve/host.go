package resolve

import (
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
)

// Host resolves the tenant from the request's host: a custom domain
// ("app.acme.com"), or a subdomain of BaseDomain ("acme.example.com") naming
// the tenant's identifier or one of its aliases.
//
// The host is lowercased (DNS names are case-insensitive), its port and one
// trailing dot are dropped. Then, in order:
//
//  1. the whole host is looked up as a custom domain (GetByDomain);
//  2. a host that is a single label under BaseDomain ("acme.example.com", or
//     "acme.localhost" with BaseDomain "localhost") is looked up by that
//     label, first as an identifier (when it is a valid one), then as an
//     alias (GetByDomain(label)); neither matching is "not found" (404).
//
// Anything else is absent: IP literals, the bare base domain, hosts of more
// than one label under it and hosts outside it. A host that is not a valid
// DNS name is absent too, unless it is a single label under BaseDomain,
// which is then invalid (400).
//
// X-Forwarded-Host is read only from peers in TrustedProxies (none by
// default): a client cannot pick its tenant by sending it. From a trusted
// peer, its first value replaces the Host header.
type Host struct {
	// BaseDomain is the domain tenants get subdomains of, such as
	// "example.com" or "localhost". Empty: only custom domains resolve.
	BaseDomain string
	// TrustedProxies are the peers (r.RemoteAddr) whose X-Forwarded-Host is
	// believed. Default none: the header is ignored.
	TrustedProxies []netip.Prefix
	// Lookup finds the tenant. Required.
	Lookup Lookup
}

// Resolve implements Resolver.
func (h Host) Resolve(r *http.Request) (Result, error) {
	if h.Lookup == nil {
		return Result{}, errNoLookup
	}
	raw := r.Host
	if len(h.TrustedProxies) > 0 && trustedPeer(r.RemoteAddr, h.TrustedProxies) {
		if fwd := forwardedHost(r.Header); fwd != "" {
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
	t, err := h.Lookup.GetByDomain(ctx, norm)
	if !errors.Is(err, tenancy.ErrTenantNotFound) {
		return found(SourceHost, t, err)
	}
	label, ok := singleLabelUnder(norm, base)
	if !ok {
		return Result{}, errHostAbsent
	}
	if tenancy.ValidateIdentifier(label) == nil {
		t, err = h.Lookup.GetByIdentifier(ctx, label)
		if !errors.Is(err, tenancy.ErrTenantNotFound) {
			return found(SourceHost, t, err)
		}
	}
	t, err = h.Lookup.GetByDomain(ctx, label)
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

// trustedPeer reports whether remoteAddr ("ip:port", as net/http sets it) is
// inside one of the prefixes.
func trustedPeer(remoteAddr string, prefixes []netip.Prefix) bool {
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		addr = ap.Addr()
	} else if a, err := netip.ParseAddr(remoteAddr); err == nil {
		addr = a
	} else {
		return false
	}
	addr = addr.Unmap()
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// forwardedHost returns the first value of X-Forwarded-Host: the host the
// client asked the first proxy for.
func forwardedHost(h http.Header) string {
	vals := h["X-Forwarded-Host"]
	if len(vals) == 0 {
		return ""
	}
	v := vals[0]
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.Trim(v, " \t")
}
