package tenancy

import (
	"context"
	"log/slog"
)

type contextKey struct{}

// WithTenant returns a copy of ctx that carries t. Middleware and job workers
// call it; application code reads the tenant back with FromContext.
func WithTenant(ctx context.Context, t *Tenant) context.Context {
	return context.WithValue(ctx, contextKey{}, t)
}

// FromContext returns the tenant ctx carries and whether there is one. It
// never panics: code that needs a tenant treats absence as ErrNoTenant.
func FromContext(ctx context.Context) (*Tenant, bool) {
	t, ok := ctx.Value(contextKey{}).(*Tenant)
	return t, ok && t != nil
}

type claimsKey struct{}

// WithClaims returns a copy of ctx that carries claims: what the credential
// that named the request's tenant said about the caller (the verified claims
// of a token, for one). The middleware calls it with the Claims of a
// resolve.Result.
//
// The value is opaque to this package and to the middleware, so that
// neither depends on how it was verified: the package that produced it
// reads it back with a typed getter (jwtauth.ClaimsFromContext for
// resolve.JWT). A nil claims value is not stored.
func WithClaims(ctx context.Context, claims any) context.Context {
	if claims == nil {
		return ctx
	}
	return context.WithValue(ctx, claimsKey{}, claims)
}

// ClaimsFromContext returns the claims ctx carries and whether there are
// any. Prefer the getter of the package that produced them, which returns
// them typed.
func ClaimsFromContext(ctx context.Context) (any, bool) {
	c := ctx.Value(claimsKey{})
	return c, c != nil
}

// LogHandler wraps an slog.Handler so that every record logged with a context
// that carries a tenant gets tenant_id and tenant attributes (the ID and the
// identifier). It costs nothing on requests that do not log.
type LogHandler struct {
	slog.Handler
}

// NewLogHandler returns h wrapped in a LogHandler.
func NewLogHandler(h slog.Handler) *LogHandler { return &LogHandler{Handler: h} }

// Handle adds the tenant attributes, when ctx carries a tenant, and passes the
// record on.
func (h *LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if t, ok := FromContext(ctx); ok {
		r = r.Clone()
		r.AddAttrs(slog.String("tenant_id", t.ID), slog.String("tenant", t.Identifier))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs returns a LogHandler around the wrapped handler's WithAttrs.
func (h *LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &LogHandler{Handler: h.Handler.WithAttrs(attrs)}
}

// WithGroup returns a LogHandler around the wrapped handler's WithGroup.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	return &LogHandler{Handler: h.Handler.WithGroup(name)}
}
