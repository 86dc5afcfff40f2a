package resolve

import (
	"net/http"
	"net/netip"
	"strings"
)

// Proxy headers, for Host.ProxyHeader.
const (
	// HeaderXForwardedHost is X-Forwarded-Host, read together with
	// X-Forwarded-For, which tells the proxies' values from the client's.
	HeaderXForwardedHost = "X-Forwarded-Host"
	// HeaderForwarded is Forwarded (RFC 7239): the host= and for=
	// parameters of its elements.
	HeaderForwarded = "Forwarded"
)

// xForwardedHost returns the X-Forwarded-Host value that the outermost
// trusted proxy added: the chain of proxies is walked from the right through
// X-Forwarded-For, skipping addresses of trusted proxies, and the value at
// the same place from the right of X-Forwarded-Host is taken (the left-most
// one when there are fewer values than proxies, as when the first proxy sets
// the header and the others pass it on). Values left of it came from the
// client. It returns "" when the header is absent or the value is empty.
func xForwardedHost(h http.Header, trusted []netip.Prefix) string {
	hosts := h["X-Forwarded-Host"]
	if len(hosts) == 0 {
		return ""
	}
	// The immediate peer, trusted, appended the right-most values. Each
	// trusted address at the right of X-Forwarded-For is one more trusted
	// proxy before it, which appended the value left of it.
	skip := 0
	listFromRight(h["X-Forwarded-For"], func(v string) bool {
		if !trustedAddr(v, trusted) {
			return false
		}
		skip++
		return true
	})
	host, i := "", 0
	listFromRight(hosts, func(v string) bool {
		host = v
		i++
		return i <= skip
	})
	return host
}

// listFromRight calls f with the elements of a comma-separated header list
// held in lines, right-most first, trimmed of spaces and tabs, until f
// returns false.
func listFromRight(lines []string, f func(string) bool) {
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for {
			j := strings.LastIndexByte(line, ',')
			if !f(strings.Trim(line[j+1:], " \t")) {
				return
			}
			if j < 0 {
				break
			}
			line = line[:j]
		}
	}
}

// forwardedHost returns the host= parameter of the Forwarded element that
// the outermost trusted proxy added: elements are walked from the right,
// skipping those whose for= names a trusted proxy (the left-most element
// when every one does). It returns "" when the header is absent or that
// element has no host, and false when the header does not parse.
func forwardedHost(h http.Header, trusted []netip.Prefix) (string, bool) {
	lines := h["Forwarded"]
	if len(lines) == 0 {
		return "", true
	}
	var elems []forwardedElement
	for _, line := range lines {
		var ok bool
		if elems, ok = parseForwarded(elems, line); !ok {
			return "", false
		}
	}
	if len(elems) == 0 {
		return "", true
	}
	i := len(elems) - 1
	for i > 0 && trustedAddr(elems[i].node, trusted) {
		i--
	}
	return elems[i].host, true
}

// forwardedElement holds the parameters of one Forwarded element that
// resolution needs: the node the proxy received the request from, and the
// Host it received.
type forwardedElement struct {
	node, host string
}

// parseForwarded appends the elements of one Forwarded header line to
// elems. It reports false on any syntax error, including a parameter
// repeated within an element (RFC 7239, section 4). Empty list elements are
// skipped, as RFC 9110 asks of list recipients.
func parseForwarded(elems []forwardedElement, s string) ([]forwardedElement, bool) {
	var (
		cur      forwardedElement
		seen     uint8 // for, host, by, proto
		nonEmpty bool
	)
	i := 0
	for {
		i = skipOWS(s, i)
		if i < len(s) && (s[i] == ',' || s[i] == ';') {
			// An empty pair or element.
		} else if i < len(s) {
			start := i
			for i < len(s) && isTchar(s[i]) {
				i++
			}
			name := s[start:i]
			if name == "" || i >= len(s) || s[i] != '=' {
				return nil, false
			}
			i++
			var value string
			var ok bool
			if value, i, ok = forwardedValue(s, i); !ok {
				return nil, false
			}
			var bit uint8
			switch {
			case strings.EqualFold(name, "for"):
				bit, cur.node = 1, value
			case strings.EqualFold(name, "host"):
				bit, cur.host = 2, value
			case strings.EqualFold(name, "by"):
				bit = 4
			case strings.EqualFold(name, "proto"):
				bit = 8
			}
			if seen&bit != 0 {
				return nil, false
			}
			seen |= bit
			nonEmpty = true
			i = skipOWS(s, i)
		}
		if i >= len(s) || s[i] == ',' {
			if nonEmpty {
				elems = append(elems, cur)
			}
			if i >= len(s) {
				return elems, true
			}
			cur, seen, nonEmpty = forwardedElement{}, 0, false
		} else if s[i] != ';' {
			return nil, false
		}
		i++
	}
}

// forwardedValue reads a token or a quoted string at s[i:] and returns it
// unquoted, with the index after it.
func forwardedValue(s string, i int) (string, int, bool) {
	if i < len(s) && s[i] == '"' {
		var b strings.Builder
		for i++; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '"':
				return b.String(), i + 1, true
			case c == '\\':
				i++
				if i >= len(s) || !isQuotedPairChar(s[i]) {
					return "", i, false
				}
				b.WriteByte(s[i])
			case c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c != 0x7f):
				b.WriteByte(c)
			default:
				return "", i, false
			}
		}
		return "", i, false
	}
	start := i
	for i < len(s) && isTchar(s[i]) {
		i++
	}
	if i == start {
		return "", i, false
	}
	return s[start:i], i, true
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// isTchar reports whether c may appear in an RFC 9110 token.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isQuotedPairChar(c byte) bool {
	return c == '\t' || (c >= 0x20 && c != 0x7f)
}

// trustedAddr reports whether s lies in one of the prefixes. s is an
// address with or without a port and brackets: r.RemoteAddr, an
// X-Forwarded-For value or a Forwarded node ("192.0.2.1:8080",
// "[2001:db8::1]:8080"). Anything else, such as the Forwarded nodes
// "unknown" and "_hidden", is not trusted.
func trustedAddr(s string, prefixes []netip.Prefix) bool {
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		addr = ap.Addr()
	} else if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
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
