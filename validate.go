package tenancy

import "strings"

// Identifier length bounds. 56 keeps "tenant_" plus the identifier within
// PostgreSQL's 63-byte limit on names.
const (
	MinIdentifierLen = 3
	MaxIdentifierLen = 56
)

// IdentifierPattern is the regular expression that ValidateIdentifier
// implements, documented here and checked against it by a fuzz test.
const IdentifierPattern = `^[a-z][a-z0-9-]{1,54}[a-z0-9]$`

// ValidateIdentifier reports whether s is a valid tenant identifier: 3 to 56
// bytes of lowercase ASCII letters, digits and '-', starting with a letter and
// not ending with '-' (IdentifierPattern). Nothing is trimmed or case-folded:
// "ACME-CORP", " acme" and "acme\n" are refused, so every resolver, store and
// name derivation sees exactly what was validated.
//
// The error wraps ErrInvalidIdentifier and never quotes s, which may be
// hostile.
func ValidateIdentifier(s string) error {
	if !validIdentifier(s) {
		return ErrInvalidIdentifier
	}
	return nil
}

func validIdentifier(s string) bool {
	n := len(s)
	if n < MinIdentifierLen || n > MaxIdentifierLen || !isLower(s[0]) || s[n-1] == '-' {
		return false
	}
	for i := 1; i < n; i++ {
		c := s[i]
		if !isLower(c) && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

// MaxIDLen bounds tenant IDs.
const MaxIDLen = 64

// ValidateID reports whether s is a valid tenant ID: 1 to 64 bytes of ASCII
// letters, digits, '-' and '_', starting with a letter or digit. UUIDs and
// slugs such as "tenant-acme-001" qualify. The error wraps ErrInvalidID.
func ValidateID(s string) error {
	if len(s) == 0 || len(s) > MaxIDLen || !isAlnum(s[0]) {
		return ErrInvalidID
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' {
			return ErrInvalidID
		}
	}
	return nil
}

// NormalizeHost lowercases a DNS host name, drops one trailing dot and
// reports whether the result is a valid host name: ASCII labels of 1 to 63
// bytes of letters, digits and '-', not starting or ending with '-', at most
// 253 bytes in all. It takes no port; strip it first. IP addresses are not
// host names here: "127.0.0.1" passes the syntax check, so resolvers that
// must tell them apart do so before calling it.
func NormalizeHost(host string) (string, bool) {
	host = strings.TrimSuffix(host, ".")
	if len(host) == 0 || len(host) > 253 {
		return "", false
	}
	lower := true
	label := 0
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c == '.':
			if label == 0 || host[i-1] == '-' {
				return "", false
			}
			label = 0
			continue
		case c >= 'A' && c <= 'Z':
			lower = false
		case isLower(c) || isDigit(c):
		case c == '-':
			if label == 0 {
				return "", false
			}
		default:
			return "", false
		}
		label++
		if label > 63 {
			return "", false
		}
	}
	if label == 0 || host[len(host)-1] == '-' {
		return "", false
	}
	if !lower {
		host = strings.ToLower(host)
	}
	return host, true
}

// NormalizeAlias lowercases an alias, drops one trailing dot and reports
// whether the result is a valid alias: a single DNS label, 1 to 63 bytes of
// letters, digits and '-', not starting or ending with '-'.
func NormalizeAlias(alias string) (string, bool) {
	n, ok := NormalizeHost(alias)
	if !ok || strings.IndexByte(n, '.') >= 0 {
		return "", false
	}
	return n, true
}

// NormalizeDomain lowercases a custom domain, drops one trailing dot and
// reports whether the result is a valid custom domain: a host name
// (NormalizeHost) of two labels or more whose last label is not all digits,
// so that no IPv4 address passes. A single label is an alias, not a custom
// domain. Whether the domain lies under a base domain is for the caller
// that knows the base (the host resolver, package customdomain) to check.
func NormalizeDomain(domain string) (string, bool) {
	n, ok := NormalizeHost(domain)
	if !ok {
		return "", false
	}
	dot := strings.LastIndexByte(n, '.')
	if dot < 0 {
		return "", false
	}
	for i := dot + 1; i < len(n); i++ {
		if !isDigit(n[i]) {
			return n, true
		}
	}
	return "", false
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isLower(c) || isDigit(c) || (c >= 'A' && c <= 'Z') }
