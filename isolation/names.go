package isolation

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/go-tenancy/tenancy"
)

// DefaultPrefix starts every schema and database name derived from an
// identifier.
const DefaultPrefix = "tenant_"

// MaxPrefixLen keeps prefix plus the longest identifier within PostgreSQL's
// 63-byte limit on names.
const MaxPrefixLen = 63 - tenancy.MaxIdentifierLen

// ValidatePrefix checks a name prefix: 1 to 7 bytes of a-z and 0-9, starting
// with a letter and ending with '_'. The '_' keeps derived names apart from
// anything not derived: identifiers hold no '_'.
func ValidatePrefix(prefix string) error {
	n := len(prefix)
	if n < 2 || n > MaxPrefixLen || prefix[n-1] != '_' || prefix[0] < 'a' || prefix[0] > 'z' {
		return fmt.Errorf("isolation: name prefix must be 2 to %d bytes of a-z and 0-9 starting with a letter and ending with '_'", MaxPrefixLen)
	}
	for i := 1; i < n-1; i++ {
		c := prefix[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return fmt.Errorf("isolation: name prefix must be 2 to %d bytes of a-z and 0-9 starting with a letter and ending with '_'", MaxPrefixLen)
		}
	}
	return nil
}

// Name derives the schema or database name of a tenant: prefix followed by
// the identifier with '-' replaced by '_'. Identifiers hold no '_', so the
// mapping is one-to-one ("t-rex" and "t_rex" cannot both exist), and a valid
// prefix plus a valid identifier fit in 63 bytes. Invalid input is refused
// before any name is built.
func Name(prefix, identifier string) (string, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return "", err
	}
	if err := tenancy.ValidateIdentifier(identifier); err != nil {
		return "", err
	}
	return prefix + strings.ReplaceAll(identifier, "-", "_"), nil
}

// FileName derives the SQLite file of a tenant inside dir: dir/<identifier>.db.
// Identifiers are lowercase ASCII without '/', '.' or '\', so the file can
// neither escape dir nor collide with another tenant's, even on
// case-insensitive file systems.
func FileName(dir, identifier string) (string, error) {
	if err := tenancy.ValidateIdentifier(identifier); err != nil {
		return "", err
	}
	base := identifier + ".db"
	if !filepath.IsLocal(base) {
		return "", tenancy.ErrInvalidIdentifier
	}
	return filepath.Join(dir, base), nil
}
