package resolve

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/go-tenancy/tenancy"
)

// DefaultPathPrefix is the Path resolver's default prefix.
const DefaultPathPrefix = "/t/"

var (
	errPathAbsent  = fmt.Errorf("resolve: path has no tenant prefix: %w", tenancy.ErrNoTenant)
	errPathInvalid = fmt.Errorf("resolve: tenant path segment: %w", tenancy.ErrInvalidIdentifier)
)

// Path resolves the tenant from the first path segment after a prefix:
// "/t/{identifier}" and "/t/{identifier}/...". The Result's Path is the rest
// of the path ("/" at least), which the middleware hands to the next
// handler, so routes are written without the prefix.
//
// A path outside the prefix is absent. "/t/" with an empty or invalid
// segment is invalid (400). The segment is validated as the client sent it:
// an identifier with percent-escapes ("/t/%61cme") or an escaped slash is
// invalid.
type Path struct {
	// Prefix is the path prefix before the identifier, starting and ending
	// with '/'. Default "/t/".
	Prefix string
	// Lookup finds the tenant. Required.
	Lookup Lookup
}

// Resolve implements Resolver.
func (p Path) Resolve(r *http.Request) (Result, error) {
	if p.Lookup == nil {
		return Result{}, errNoLookup
	}
	prefix := p.Prefix
	if prefix == "" {
		prefix = DefaultPathPrefix
	}
	if !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	ident, rest, ok := splitTenantPath(r.URL.Path, prefix)
	if !ok {
		return Result{}, errPathAbsent
	}
	if tenancy.ValidateIdentifier(ident) != nil {
		return Result{}, errPathInvalid
	}
	var rawRest string
	if r.URL.RawPath != "" {
		rawIdent, rr, ok := splitTenantPath(r.URL.RawPath, prefix)
		if !ok || rawIdent != ident {
			return Result{}, errPathInvalid
		}
		rawRest = rr
	}
	t, err := p.Lookup.GetByIdentifier(r.Context(), ident)
	res, err := found(SourcePath, t, err)
	if err != nil {
		return Result{}, err
	}
	res.Path, res.RawPath = rest, rawRest
	return res, nil
}

// splitTenantPath splits "/t/ident/rest" into "ident" and "/rest" (or "/"),
// without allocating.
func splitTenantPath(path, prefix string) (ident, rest string, ok bool) {
	if !strings.HasPrefix(path, prefix) {
		return "", "", false
	}
	after := path[len(prefix):]
	if i := strings.IndexByte(after, '/'); i >= 0 {
		return after[:i], after[i:], true
	}
	return after, "/", true
}
