package resolve_test

import (
	"errors"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/resolve"
)

// TestHostBehindProxies drives Host through chains of proxies that append
// to X-Forwarded-For and X-Forwarded-Host (or to Forwarded), with a client
// that sends its own values first to pick another tenant.
func TestHostBehindProxies(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	// The edge proxy 10.0.0.1 receives the client; the internal proxy
	// 10.0.0.2 receives the edge and connects to the service.
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00::/8")}
	const (
		client = "203.0.113.9"
		edge   = "10.0.0.1"
		inner  = "10.0.0.2:4444"
	)
	type header struct{ name, value string }
	tests := []struct {
		name    string
		mode    string
		host    string
		peer    string
		headers []header
		w       want
	}{
		// X-Forwarded-Host.
		{"one proxy, client spoofs a first value", "", "internal", edge + ":1", []header{
			{"X-Forwarded-Host", "globex.example.com, acme-corp.example.com"},
			{"X-Forwarded-For", client},
		}, ok("t-acme")},
		{"two proxies, client spoofs a first value", "", "internal", inner, []header{
			{"X-Forwarded-Host", "globex.example.com, acme-corp.example.com, acme-corp.example.com"},
			{"X-Forwarded-For", client + ", " + edge},
		}, ok("t-acme")},
		{"two proxies, the edge rewrites Host", "", "internal", inner, []header{
			{"X-Forwarded-Host", "globex.example.com, acme-corp.example.com, backend.internal"},
			{"X-Forwarded-For", client + ", " + edge},
		}, ok("t-acme")},
		{"two proxies, values on separate lines", "", "internal", inner, []header{
			{"X-Forwarded-Host", "globex.example.com"},
			{"X-Forwarded-Host", "acme-corp.example.com"},
			{"X-Forwarded-Host", "backend.internal"},
			{"X-Forwarded-For", client},
			{"X-Forwarded-For", edge},
		}, ok("t-acme")},
		{"two proxies, client spoofs a trusted address first", "", "internal", inner, []header{
			{"X-Forwarded-Host", "globex.example.com, acme-corp.example.com, backend.internal"},
			{"X-Forwarded-For", "10.0.0.7, " + client + ", " + edge},
		}, ok("t-acme")},
		{"two proxies, the edge sets the header and the inner passes it on", "", "internal", inner, []header{
			{"X-Forwarded-Host", "acme-corp.example.com"},
			{"X-Forwarded-For", client + ", " + edge},
		}, ok("t-acme")},
		{"no X-Forwarded-For: the peer's value", "", "internal", inner, []header{
			{"X-Forwarded-Host", "globex.example.com,acme-corp.example.com"},
		}, ok("t-acme")},
		{"X-Forwarded-For with ports and IPv6", "", "internal", inner, []header{
			{"X-Forwarded-Host", "globex.example.com, acme-corp.example.com, backend.internal, backend.internal"},
			{"X-Forwarded-For", client + ":5555, " + edge + ":1, [fd00::3]:2"},
		}, ok("t-acme")},
		{"untrusted peer: every proxy header ignored", "", "globex.example.com", client + ":1", []header{
			{"X-Forwarded-Host", "acme-corp.example.com"},
			{"X-Forwarded-For", edge},
		}, ok("t-globex")},
		{"X-Forwarded-Host mode ignores Forwarded", "", "globex.example.com", inner, []header{
			{"Forwarded", "for=" + client + ";host=acme-corp.example.com"},
		}, ok("t-globex")},

		// Forwarded.
		{"Forwarded, one proxy, client spoofs an element", resolve.HeaderForwarded, "internal", edge + ":1", []header{
			{"Forwarded", "for=198.51.100.1;host=globex.example.com, for=" + client + ";host=acme-corp.example.com"},
		}, ok("t-acme")},
		{"Forwarded, two proxies, quoted values", resolve.HeaderForwarded, "internal", inner, []header{
			{"Forwarded", `for="198.51.100.1";host="globex.example.com", for="203.0.113.9:5555";host="acme-corp.example.com:443";proto=https, for="10.0.0.1:1";host=backend.internal`},
		}, ok("t-acme")},
		{"Forwarded, two proxies, elements on separate lines", resolve.HeaderForwarded, "internal", inner, []header{
			{"Forwarded", `host=globex.example.com;for=198.51.100.1`},
			{"Forwarded", `For=` + client + `;Host=acme-corp.example.com`},
			{"Forwarded", `for="[fd00::9]:80";host=backend.internal`},
		}, ok("t-acme")},
		{"Forwarded, IPv6 client and quoted-pair", resolve.HeaderForwarded, "internal", inner, []header{
			{"Forwarded", `for="[2001:db8::1]:1";host="acme-corp.exam\ple.com", for=10.0.0.1;host=backend.internal`},
		}, ok("t-acme")},
		{"Forwarded, a comma inside a quoted value", resolve.HeaderForwarded, "internal", inner, []header{
			{"Forwarded", `for=` + client + `;host=acme-corp.example.com;by="x, y", for=10.0.0.1;host=backend.internal`},
		}, ok("t-acme")},
		{"Forwarded, obfuscated client node", resolve.HeaderForwarded, "internal", inner, []header{
			{"Forwarded", `for=_hidden;host=acme-corp.example.com, for=10.0.0.1;host=backend.internal`},
		}, ok("t-acme")},
		{"Forwarded, empty elements skipped", resolve.HeaderForwarded, "internal", inner, []header{
			{"Forwarded", `, for=` + client + `;host=acme-corp.example.com,, for=10.0.0.1;host=backend.internal,`},
		}, ok("t-acme")},
		{"Forwarded, every node trusted: the left-most element", resolve.HeaderForwarded, "internal", inner, []header{
			{"Forwarded", `for=10.0.0.5;host=acme-corp.example.com, for=10.0.0.1;host=backend.internal`},
		}, ok("t-acme")},
		{"Forwarded, element without host: the Host header", resolve.HeaderForwarded, "globex.example.com", inner, []header{
			{"Forwarded", `for=` + client + `;host=acme-corp.example.com, for=198.51.100.1, for=10.0.0.1;host=backend.internal`},
		}, ok("t-globex")},
		{"Forwarded mode ignores X-Forwarded-Host", resolve.HeaderForwarded, "globex.example.com", inner, []header{
			{"X-Forwarded-Host", "acme-corp.example.com"},
		}, ok("t-globex")},
		{"Forwarded from an untrusted peer ignored", resolve.HeaderForwarded, "globex.example.com", client + ":1", []header{
			{"Forwarded", "for=" + client + ";host=acme-corp.example.com"},
		}, ok("t-globex")},
		{"Forwarded, unterminated quote", resolve.HeaderForwarded, "globex.example.com", inner, []header{
			{"Forwarded", `for="` + client + `;host=acme-corp.example.com`},
		}, fails(tenancy.ErrNoTenant)},
		{"Forwarded, repeated parameter", resolve.HeaderForwarded, "globex.example.com", inner, []header{
			{"Forwarded", `for=` + client + `;host=acme-corp.example.com;host=globex.example.com`},
		}, fails(tenancy.ErrNoTenant)},
		{"Forwarded, space around '='", resolve.HeaderForwarded, "globex.example.com", inner, []header{
			{"Forwarded", `for = ` + client},
		}, fails(tenancy.ErrNoTenant)},
		{"Forwarded, pair without value", resolve.HeaderForwarded, "globex.example.com", inner, []header{
			{"Forwarded", `for=;host=acme-corp.example.com`},
		}, fails(tenancy.ErrNoTenant)},
		{"Forwarded, control byte in quotes", resolve.HeaderForwarded, "globex.example.com", inner, []header{
			{"Forwarded", "host=\"acme-corp.example.com\x01\""},
		}, fails(tenancy.ErrNoTenant)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.Host, r.RemoteAddr = tt.host, tt.peer
			for _, h := range tt.headers {
				r.Header[h.name] = append(r.Header[h.name], h.value)
			}
			h := resolve.Host{BaseDomain: "example.com", TrustedProxies: trusted, ProxyHeader: tt.mode, Lookup: strictLookup{t, store}}
			res, err := h.Resolve(r)
			check(t, res, err, tt.w)
		})
	}
}

func TestHostProxyHeaderMisconfigured(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	h := resolve.Host{
		BaseDomain: "example.com", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		ProxyHeader: "X-Real-Host", Lookup: store,
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Host, r.RemoteAddr = "acme-corp.example.com", "10.0.0.1:1"
	_, err := h.Resolve(r)
	if err == nil {
		t.Fatal("Resolve with an unknown ProxyHeader succeeded")
	}
	for _, s := range []error{tenancy.ErrNoTenant, tenancy.ErrTenantNotFound, tenancy.ErrInvalidIdentifier} {
		if errors.Is(err, s) {
			t.Fatalf("error %v wraps %v: a configuration error must not look like a client's", err, s)
		}
	}
}
