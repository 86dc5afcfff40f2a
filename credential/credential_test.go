package credential_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/credential"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/jwtauth"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/go-tenancy/tenancy/store/pgstore"
	"github.com/go-tenancy/tenancy/store/sqlitestore"
)

// store is a tenant store that also keeps secrets.
type store interface {
	tenancy.Store
	credential.Store
}

// stores open each implementation, empty.
var stores = []struct {
	name string
	open func(t *testing.T) store
}{
	{"memory", func(*testing.T) store { return memstore.New() }},
	{"postgres", func(t *testing.T) store {
		pool := testenv.Pool(t, testenv.NewDatabase(t))
		if err := pgstore.Migrate(t.Context(), pool, pgstore.Config{}); err != nil {
			t.Fatal(err)
		}
		s, err := pgstore.New(t.Context(), pool, pgstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"sqlite", func(t *testing.T) store {
		s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "tenants.db"), sqlitestore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
}

// fastParams keep the tests quick; the costs do not change the logic.
var fastParams = credential.Params{Memory: 64, Time: 1, Threads: 1}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setup(t *testing.T, open func(*testing.T) store) (*credential.Authenticator, store, *tenancy.Tenant, *clock) {
	t.Helper()
	s := open(t)
	tn, err := s.Create(t.Context(), &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme", Tier: "starter"})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now().UTC().Truncate(time.Millisecond)}
	a, err := credential.New(credential.Config{Tenants: s, Secrets: s, Params: fastParams, Grace: time.Hour, Now: c.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return a, s, tn, c
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			a, s, tn, clk := setup(t, st.open)
			auth := func(secret string) error {
				got, err := a.Authenticate(ctx, tn.Identifier, secret)
				if err == nil && got.ID != tn.ID {
					t.Fatalf("authenticated as %s", got.ID)
				}
				return err
			}

			first, rec, err := a.Set(ctx, tn)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(rec.Hash, first) || !strings.HasPrefix(rec.Hash, "$argon2id$v=19$m=64,t=1,p=1$") {
				t.Fatalf("stored hash %q", rec.Hash)
			}
			if err := auth(first); err != nil {
				t.Fatalf("the secret just set: %v", err)
			}
			if err := auth(first + "x"); !errors.Is(err, tenancy.ErrUnauthenticated) {
				t.Fatalf("a wrong secret: %v", err)
			}

			second, _, err := a.Rotate(ctx, tn)
			if err != nil {
				t.Fatal(err)
			}
			if auth(first) != nil || auth(second) != nil {
				t.Fatal("during the grace period both secrets must be valid")
			}
			clk.Add(time.Hour + time.Second)
			if err := auth(first); !errors.Is(err, tenancy.ErrUnauthenticated) {
				t.Fatalf("the rotated secret after its grace: %v", err)
			}
			if err := auth(second); err != nil {
				t.Fatalf("the new secret after the grace: %v", err)
			}

			third, _, err := a.Rotate(ctx, tn)
			if err != nil {
				t.Fatal(err)
			}
			secondID := strings.Split(strings.TrimPrefix(second, credential.Prefix), "_")[0]
			if err := a.Revoke(ctx, tn, secondID); err != nil {
				t.Fatal(err)
			}
			if err := auth(second); !errors.Is(err, tenancy.ErrUnauthenticated) {
				t.Fatalf("a revoked secret: %v", err)
			}
			if err := a.Revoke(ctx, tn, secondID); !errors.Is(err, credential.ErrSecretNotFound) {
				t.Fatalf("revoking twice: %v", err)
			}
			fourth, _, err := a.Set(ctx, tn)
			if err != nil {
				t.Fatal(err)
			}
			if err := auth(third); !errors.Is(err, tenancy.ErrUnauthenticated) {
				t.Fatalf("Set must end every other secret at once: %v", err)
			}
			if err := auth(fourth); err != nil {
				t.Fatal(err)
			}

			if _, err := s.SetStatus(ctx, tn.ID, tenancy.StatusSuspended, "unpaid"); err != nil {
				t.Fatal(err)
			}
			if err := auth(fourth); !errors.Is(err, tenancy.ErrTenantSuspended) {
				t.Fatalf("a suspended tenant's good secret: %v", err)
			}

			if err := a.Forget(ctx, tn); err != nil {
				t.Fatal(err)
			}
			if left, err := a.Residue(ctx, tn); err != nil || len(left) != 0 {
				t.Fatalf("Residue after Forget = %v, %v", left, err)
			}
			// The tenant's record takes its secrets with it.
			if _, _, err := a.Set(ctx, tn); err != nil {
				t.Fatal(err)
			}
			if err := s.Purge(ctx, tn.ID); err != nil {
				t.Fatal(err)
			}
			if left, err := s.ListSecrets(ctx, tn.ID); err != nil || len(left) != 0 {
				t.Fatalf("secrets after the tenant's purge: %v, %v", left, err)
			}
			if _, _, err := a.Set(ctx, tn); !errors.Is(err, tenancy.ErrTenantNotFound) {
				t.Fatalf("a secret for a purged tenant: %v", err)
			}
		})
	}
}

// TestUnknownTenantIndistinguishable checks, through the token endpoint,
// that every way to fail answers alike, each after exactly one argon2id
// verification. Not parallel: it counts verifications process-wide.
func TestUnknownTenantIndistinguishable(t *testing.T) {
	a, s, tn, _ := setup(t, stores[0].open)
	good, _, err := a.Set(t.Context(), tn)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Create(t.Context(), &tenancy.Tenant{Identifier: "globex", Name: "Globex"})
	if err != nil {
		t.Fatal(err)
	}
	otherSecret, _, _ := a.Set(t.Context(), other)
	signer, err := jwtauth.NewSigner(jwtauth.Config{Algorithm: jwtauth.HS256, Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "k1", Issuer: "https://auth.example.com", Audience: "api"})
	if err != nil {
		t.Fatal(err)
	}
	h := a.TokenHandler(signer)
	post := func(id, secret string) *httptest.ResponseRecorder {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	count, stop := credential.CountVerifications()
	defer stop()

	ok := post(tn.Identifier, good)
	if ok.Code != http.StatusOK || count.Load() != 1 {
		t.Fatalf("good credentials: %d %s after %d verifications", ok.Code, ok.Body, count.Load())
	}
	var resp struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(ok.Body.Bytes(), &resp); err != nil || resp.TokenType != "Bearer" || resp.ExpiresIn != 3600 {
		t.Fatalf("token response %s: %v", ok.Body, err)
	}
	v, _ := jwtauth.NewVerifier(jwtauth.Config{Algorithm: jwtauth.HS256, Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "k1", Issuer: "https://auth.example.com", Audience: "api"})
	if c, err := v.Verify(resp.AccessToken); err != nil || c.Tenant != tn.Identifier {
		t.Fatalf("issued token: %v, %v", c, err)
	}

	failures := map[string][2]string{
		"wrong secret":             {tn.Identifier, good[:len(good)-2] + "xx"},
		"unknown tenant":           {"no-such-tenant", good},
		"another tenant's secret":  {tn.Identifier, otherSecret},
		"malformed secret":         {tn.Identifier, "hunter2"},
		"invalid client id":        {"Not An Identifier!", good},
		"unknown secret ID":        {tn.Identifier, credential.Prefix + "0123456789abcdef_" + strings.Repeat("A", 43)},
		"empty credentials":        {"", ""},
		"unknown tenant, no match": {"globex-two", otherSecret},
	}
	var first *httptest.ResponseRecorder
	for name, c := range failures {
		count.Store(0)
		w := post(c[0], c[1])
		if n := count.Load(); n != 1 {
			t.Fatalf("%s: %d hash verifications, want exactly 1", name, n)
		}
		if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != "Bearer" {
			t.Fatalf("%s: %d %v", name, w.Code, w.Header())
		}
		if first == nil {
			first = w
		} else if w.Body.String() != first.Body.String() {
			t.Fatalf("%s answers %s, another failure %s: they must be identical", name, w.Body, first.Body)
		}
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	h := credential.Hash("s3cret", fastParams)
	if !credential.Verify(h, "s3cret") || credential.Verify(h, "s3cre") || credential.Verify("$argon2id$v=19$bogus", "s3cret") {
		t.Fatal("Verify")
	}
	if credential.Hash("s3cret", fastParams) == h {
		t.Fatal("two hashes of one secret are equal: no salt")
	}
	if _, err := credential.New(credential.Config{}); err == nil {
		t.Fatal("New without stores")
	}
}
