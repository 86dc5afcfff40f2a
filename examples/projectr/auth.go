package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/credential"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/jwtauth"
	"github.com/go-tenancy/tenancy/limit"
	"github.com/go-tenancy/tenancy/problem"
)

// demoSecretID names the record of a secret chosen outside the credential
// package (the seeded "demo"): credential's own secrets name their record
// in their text ("tcs_<id>_..."), so that checking one verifies exactly
// one hash. A secret without that form is checked as the text of the
// record demoSecretID, so it too costs one verification, and an unknown
// tenant, a wrong secret and a malformed one stay indistinguishable.
const demoSecretID = "0000000000000000"

// namedSecret returns the secret as the credential package checks it:
// its own secrets as they are, any other as the demo record's.
func namedSecret(secret string) string {
	if strings.HasPrefix(secret, credential.Prefix) {
		return secret
	}
	return credential.Prefix + demoSecretID + "_" + secret
}

// authAPI is the token endpoint.
type authAPI struct {
	auth    *credential.Authenticator
	signer  *jwtauth.Signer
	limiter *limit.Limiter // nil: no limit
	logger  *slog.Logger
}

type tokenInput struct {
	Body struct {
		TenantID string `json:"tenant_id" minLength:"1" maxLength:"64" doc:"The tenant's identifier, e.g. acme-corp."`
		Secret   string `json:"secret" minLength:"1" maxLength:"256" doc:"The tenant's client secret."`
	}
	// addr is the client's address, for the rate limit.
	addr string
}

// Resolve keeps the client's address: the connection's peer, never a
// header a client could set (put a proxy's address here only by
// configuring it to be trusted, which Projectr does not).
func (in *tokenInput) Resolve(ctx huma.Context) []error {
	in.addr = ctx.RemoteAddr()
	if host, _, err := net.SplitHostPort(in.addr); err == nil {
		in.addr = host
	}
	return nil
}

type tokenOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		AccessToken string `json:"access_token" doc:"A JWT naming the tenant (tenant_id), with exp, iat, iss and aud."`
		TokenType   string `json:"token_type" enum:"bearer" doc:"Always bearer."`
		ExpiresIn   int    `json:"expires_in" doc:"Seconds until the token expires."`
	}
}

func (a *authAPI) register(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "issue-token", Method: http.MethodPost, Path: "/auth/token",
		Summary:     "Exchange a tenant's credentials for an access token",
		Description: "A wrong secret and an unknown tenant get the same 401. Attempts are limited per tenant named and client address.",
		Tags:        []string{"auth"}, Security: service.Public,
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusUnsupportedMediaType,
			http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusServiceUnavailable},
	}, a.token)
}

func (a *authAPI) token(ctx context.Context, in *tokenInput) (*tokenOutput, error) {
	if a.limiter != nil {
		// Keyed by what the client asked for, known tenant or not, so the
		// limit tells nothing about which tenants exist.
		sum := sha256.Sum256([]byte(in.Body.TenantID + "\x00" + in.addr))
		key := &tenancy.Tenant{ID: "auth-" + hex.EncodeToString(sum[:16])}
		ok, retry, err := a.limiter.Allow(ctx, key)
		if err != nil {
			return nil, service.Problem(problem.FromError(err))
		}
		if !ok {
			return nil, service.Problem(problem.FromError(rateLimited(retry)))
		}
	}
	t, err := a.auth.Authenticate(ctx, in.Body.TenantID, namedSecret(in.Body.Secret))
	if err != nil {
		if !errors.Is(err, tenancy.ErrUnauthenticated) && !errors.Is(err, tenancy.ErrTenantSuspended) &&
			!errors.Is(err, tenancy.ErrTenantDeleted) && !errors.Is(err, tenancy.ErrTenantNotReady) {
			a.logger.ErrorContext(ctx, "token endpoint", slog.Any("error", err))
		}
		d := problem.FromError(err)
		if errors.Is(err, tenancy.ErrUnauthenticated) {
			d.Detail = "Unknown tenant or wrong secret."
		}
		return nil, service.Problem(d)
	}
	tok, err := a.signer.Issue(t.Identifier, "client:"+t.Identifier, nil)
	if err != nil {
		return nil, service.Problem(problem.FromError(fmt.Errorf("issue token: %w", err)))
	}
	out := &tokenOutput{CacheControl: "no-store"}
	out.Body.AccessToken, out.Body.TokenType, out.Body.ExpiresIn = tok, "bearer", int(a.signer.TTL()/time.Second)
	return out, nil
}

// rateLimitedError is tenancy.ErrRateLimited with its Retry-After.
type rateLimitedError struct{ after time.Duration }

func rateLimited(after time.Duration) error { return &rateLimitedError{after: after} }

func (e *rateLimitedError) Error() string             { return tenancy.ErrRateLimited.Error() }
func (e *rateLimitedError) Unwrap() error             { return tenancy.ErrRateLimited }
func (e *rateLimitedError) RetryAfter() time.Duration { return e.after }
