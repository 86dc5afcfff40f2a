package credential

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/jwtauth"
	"github.com/go-tenancy/tenancy/problem"
)

// TokenHandler is a token endpoint for the client credentials grant (RFC
// 6749 §4.4): a POST with grant_type=client_credentials and the client's ID
// (the tenant's identifier) and secret, in HTTP Basic authentication or the
// form. It answers {"access_token", "token_type": "Bearer", "expires_in"}
// with a token of signer naming the tenant (and carrying exp, iat, and iss
// and aud when signer has them).
//
// Every failure to authenticate gets the same 401 problem, with the same
// body, after the same work (one argon2id verification): an unknown tenant
// and a wrong secret are indistinguishable. Other errors are problem+json
// too. Put a rate limit in front of it.
func (a *Authenticator) TokenHandler(signer *jwtauth.Signer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			problem.Write(w, problem.New("method-not-allowed", http.StatusMethodNotAllowed, "Method not allowed"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
			d := problem.New("unsupported-grant", http.StatusBadRequest, "Unsupported grant")
			d.Detail = "Send grant_type=client_credentials as a form."
			problem.Write(w, d)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		t, err := a.Authenticate(r.Context(), id, secret)
		if err != nil {
			if !errors.Is(err, tenancy.ErrUnauthenticated) && !errors.Is(err, tenancy.ErrTenantSuspended) &&
				!errors.Is(err, tenancy.ErrTenantDeleted) && !errors.Is(err, tenancy.ErrTenantNotReady) {
				a.cfg.Logger.ErrorContext(r.Context(), "credential: token endpoint", "error", err)
			}
			problem.WriteError(w, err)
			return
		}
		tok, err := signer.Issue(t.Identifier, "client:"+t.Identifier, nil)
		if err != nil {
			problem.WriteError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": tok,
			"token_type":   "Bearer",
			"expires_in":   int(signer.TTL().Seconds()),
		})
	})
}
