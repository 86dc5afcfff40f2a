package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/golang-jwt/jwt/v5"
)

var hmacSecret = []byte("0123456789abcdef0123456789abcdef")

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

// pair returns a signer and a verifier (given only the public key) for alg.
func pair(t testing.TB, alg string, edit func(*Config)) (*Signer, *Verifier) {
	t.Helper()
	testKeys(t)
	var priv, pub any
	switch alg {
	case HS256:
		priv, pub = hmacSecret, hmacSecret
	case RS256:
		priv, pub = rsaKey, &rsaKey.PublicKey
	case ES256:
		priv, pub = ecKey, &ecKey.PublicKey
	case EdDSA:
		priv, pub = edKey, edKey.Public()
	}
	sc := Config{Algorithm: alg, Key: priv, Issuer: "https://auth.test", Audience: "api"}
	vc := sc
	vc.Key = pub
	if edit != nil {
		edit(&vc)
	}
	s, err := NewSigner(sc)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	v, err := NewVerifier(vc)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return s, v
}

func TestIssueVerifyEveryAlgorithm(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{HS256, RS256, ES256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			s, v := pair(t, alg, nil)
			tok, err := s.Issue("acme-corp", "user-1", map[string]any{"role": "admin", "tenant_id": "evil", "exp": 1})
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Tenant != "acme-corp" || c.Subject != "user-1" || c.Raw["role"] != "admin" {
				t.Fatalf("claims = %+v", c)
			}
			if exp, _ := c.Raw["exp"].(float64); exp < float64(time.Now().Unix()) {
				t.Fatalf("extra claims overrode exp: %v", c.Raw["exp"])
			}
		})
	}
}

func TestIssueRefusesInvalidIdentifier(t *testing.T) {
	t.Parallel()
	s, _ := pair(t, HS256, nil)
	for _, id := range []string{"", "ACME", "acme\n", "../x", "аcme"} {
		if _, err := s.Issue(id, "u", nil); !errors.Is(err, tenancy.ErrInvalidIdentifier) {
			t.Errorf("Issue(%q) = %v, want ErrInvalidIdentifier", id, err)
		}
	}
}

// sign signs arbitrary claims, bypassing Signer's checks, as an attacker or
// a misconfigured issuer would.
func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return tok
}

func goodClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"tenant_id": "acme-corp", "sub": "u", "iss": "https://auth.test", "aud": "api",
		"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(),
	}
}

func with(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := goodClaims()
	edit(c)
	return c
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	testKeys(t)
	_, hs := pair(t, HS256, nil)
	_, rs := pair(t, RS256, nil)
	_, es := pair(t, ES256, nil)

	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	noneTok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims())
	b64 := base64.RawURLEncoding.EncodeToString
	good := sign(t, jwt.SigningMethodHS256, hmacSecret, goodClaims())
	parts := strings.Split(good, ".")

	tests := []struct {
		name   string
		v      *Verifier
		token  string
		reason error
	}{
		{"empty", hs, "", jwt.ErrTokenMalformed},
		{"garbage", hs, "not.a.token", jwt.ErrTokenMalformed},
		{"alg none", hs, noneTok, jwt.ErrTokenMalformed},
		{"alg none against RS256", rs, noneTok, jwt.ErrTokenMalformed},
		{"alg none with a signature", hs, b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], jwt.ErrTokenSignatureInvalid},
		{"alg NONE with a signature", hs, b64([]byte(`{"alg":"NONE","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], jwt.ErrTokenUnverifiable},
		{"trailing newline", hs, good + "\n", jwt.ErrTokenMalformed},
		{"newline inside", hs, parts[0] + "." + parts[1][:5] + "\n" + parts[1][5:] + "." + parts[2], jwt.ErrTokenMalformed},
		{"trailing space", hs, good + " ", jwt.ErrTokenMalformed},
		{"padding", hs, good + "=", jwt.ErrTokenMalformed},
		{"four parts", hs, good + ".x", jwt.ErrTokenMalformed},
		{"two parts", hs, parts[0] + "." + parts[1], jwt.ErrTokenMalformed},
		{"HS256 signed with RSA public key PEM", rs, sign(t, jwt.SigningMethodHS256, pubPEM, goodClaims()), jwt.ErrTokenSignatureInvalid},
		{"HS256 signed with RSA public key DER", rs, sign(t, jwt.SigningMethodHS256, pubDER, goodClaims()), jwt.ErrTokenSignatureInvalid},
		{"RS256 against HS256 verifier", hs, sign(t, jwt.SigningMethodRS256, rsaKey, goodClaims()), jwt.ErrTokenSignatureInvalid},
		{"RS256 against ES256 verifier", es, sign(t, jwt.SigningMethodRS256, rsaKey, goodClaims()), jwt.ErrTokenSignatureInvalid},
		{"other HMAC key", hs, sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), goodClaims()), jwt.ErrTokenSignatureInvalid},
		{"tampered payload", hs, parts[0] + "." + b64([]byte(`{"tenant_id":"globex","exp":9999999999,"iss":"https://auth.test","aud":"api"}`)) + "." + parts[2], jwt.ErrTokenSignatureInvalid},
		{"expired", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), jwt.ErrTokenExpired},
		{"no exp", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { delete(c, "exp") })), jwt.ErrTokenRequiredClaimMissing},
		{"not yet valid", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), jwt.ErrTokenNotValidYet},
		{"wrong audience", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { c["aud"] = "other" })), jwt.ErrTokenInvalidAudience},
		{"no audience", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { delete(c, "aud") })), jwt.ErrTokenRequiredClaimMissing},
		{"wrong issuer", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" })), jwt.ErrTokenInvalidIssuer},
		{"no issuer", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { delete(c, "iss") })), jwt.ErrTokenRequiredClaimMissing},
		{"missing tenant claim", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { delete(c, "tenant_id") })), ErrTenantClaimMissing},
		{"numeric tenant claim", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { c["tenant_id"] = 42 })), ErrTenantClaimMissing},
		{"uppercase tenant claim", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { c["tenant_id"] = "ACME-CORP" })), ErrTenantClaimInvalid},
		{"tenant claim with newline", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { c["tenant_id"] = "acme\n" })), ErrTenantClaimInvalid},
		{"tenant claim injection", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { c["tenant_id"] = `a"; drop schema public; --` })), ErrTenantClaimInvalid},
		{"tenant claim look-alike", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { c["tenant_id"] = "аcme-corp" })), ErrTenantClaimInvalid},
		{"tenant claim too long", hs, sign(t, jwt.SigningMethodHS256, hmacSecret, with(func(c jwt.MapClaims) { c["tenant_id"] = strings.Repeat("a", 64) })), ErrTenantClaimInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := tt.v.Verify(tt.token)
			if !errors.Is(err, tenancy.ErrUnauthenticated) {
				t.Fatalf("Verify = %+v, %v; want ErrUnauthenticated", c, err)
			}
			if !errors.Is(err, tt.reason) {
				t.Errorf("Verify error %q does not wrap %q", err, tt.reason)
			}
			if strings.Contains(err.Error(), "acme") || (tt.token != "" && strings.Contains(err.Error(), tt.token)) {
				t.Errorf("error echoes the token: %q", err)
			}
		})
	}
}

func TestSignerClock(t *testing.T) {
	t.Parallel()
	base := time.Now()
	tests := []struct {
		name     string
		signedAt time.Time
		leeway   time.Duration
		reason   error
	}{
		{"fresh", base, 0, nil},
		{"issued two hours ago", base.Add(-2 * time.Hour), 0, jwt.ErrTokenExpired},
		{"expired within leeway", base.Add(-time.Hour - 10*time.Second), time.Minute, nil},
		{"issued in the future", base.Add(time.Hour), 0, jwt.ErrTokenNotValidYet},
		{"nbf within leeway", base.Add(10 * time.Second), time.Minute, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewSigner(Config{Algorithm: HS256, Key: hmacSecret, now: func() time.Time { return tt.signedAt }})
			if err != nil {
				t.Fatal(err)
			}
			v, err := NewVerifier(Config{Algorithm: HS256, Key: hmacSecret, Leeway: tt.leeway})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Issue("acme-corp", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(tok)
			if tt.reason == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.reason != nil && (!errors.Is(err, tt.reason) || !errors.Is(err, tenancy.ErrUnauthenticated)) {
				t.Fatalf("Verify = %v, want %v", err, tt.reason)
			}
		})
	}
}

func TestCustomTenantClaim(t *testing.T) {
	t.Parallel()
	cfg := Config{Algorithm: HS256, Key: hmacSecret, TenantClaim: "org"}
	s, _ := NewSigner(cfg)
	v, _ := NewVerifier(cfg)
	tok, err := s.Issue("acme-corp", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok)
	if err != nil || c.Tenant != "acme-corp" || c.Raw["org"] != "acme-corp" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	if _, ok := c.Raw["tenant_id"]; ok {
		t.Fatal("default claim written too")
	}
	// A verifier expecting the default claim refuses it.
	v2, _ := NewVerifier(Config{Algorithm: HS256, Key: hmacSecret})
	if _, err := v2.Verify(tok); !errors.Is(err, ErrTenantClaimMissing) {
		t.Fatalf("Verify = %v, want ErrTenantClaimMissing", err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no algorithm", Config{Key: hmacSecret}},
		{"none", Config{Algorithm: "none", Key: hmacSecret}},
		{"HS512", Config{Algorithm: "HS512", Key: hmacSecret}},
		{"short HMAC key", Config{Algorithm: HS256, Key: []byte("short")}},
		{"HMAC string key", Config{Algorithm: HS256, Key: string(hmacSecret)}},
		{"RS256 with bytes", Config{Algorithm: RS256, Key: hmacSecret}},
		{"RS256 1024 bits", Config{Algorithm: RS256, Key: small}},
		{"ES256 on P-384", Config{Algorithm: ES256, Key: p384}},
		{"ES256 with RSA key", Config{Algorithm: ES256, Key: rsaKey}},
		{"EdDSA with ECDSA key", Config{Algorithm: EdDSA, Key: ecKey}},
		{"nil key", Config{Algorithm: RS256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewSigner(tt.cfg); err == nil {
				t.Error("NewSigner accepted it")
			}
			if _, err := NewVerifier(tt.cfg); err == nil {
				t.Error("NewVerifier accepted it")
			}
		})
	}
	// A signer needs the private key.
	if _, err := NewSigner(Config{Algorithm: RS256, Key: &rsaKey.PublicKey}); err == nil {
		t.Error("NewSigner accepted a public key")
	}
	// A verifier given the private key uses its public half.
	if _, err := NewVerifier(Config{Algorithm: ES256, Key: ecKey}); err != nil {
		t.Errorf("NewVerifier with a private key: %v", err)
	}
}

func TestClaimsContext(t *testing.T) {
	t.Parallel()
	if c, ok := ClaimsFromContext(context.Background()); ok || c != nil {
		t.Fatal("claims in an empty context")
	}
	if _, ok := ClaimsFromContext(WithClaims(context.Background(), nil)); ok {
		t.Fatal("nil claims reported present")
	}
	want := &Claims{Tenant: "acme-corp"}
	if c, ok := ClaimsFromContext(WithClaims(context.Background(), want)); !ok || c != want {
		t.Fatalf("ClaimsFromContext = %v, %v", c, ok)
	}
	// The middleware stores claims through tenancy.WithClaims, untyped.
	if c, ok := ClaimsFromContext(tenancy.WithClaims(context.Background(), want)); !ok || c != want {
		t.Fatalf("claims stored by tenancy.WithClaims: %v, %v", c, ok)
	}
	// Claims of another kind of credential are not JWT claims.
	if c, ok := ClaimsFromContext(tenancy.WithClaims(context.Background(), "api-key")); ok || c != nil {
		t.Fatalf("foreign claims read as JWT claims: %v", c)
	}
}

// TestVerifyTenant: the method resolve.JWT calls returns what Verify does,
// and fails as it does.
func TestVerifyTenant(t *testing.T) {
	t.Parallel()
	s, v := pair(t, HS256, nil)
	tok, err := s.Issue("acme-corp", "user-1", map[string]any{"role": "admin"})
	if err != nil {
		t.Fatal(err)
	}
	ident, claims, err := v.VerifyTenant(tok)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := claims.(*Claims)
	if ident != "acme-corp" || !ok || c.Tenant != "acme-corp" || c.Subject != "user-1" || c.Raw["role"] != "admin" {
		t.Fatalf("VerifyTenant = %q, %#v", ident, claims)
	}
	ident, claims, err = v.VerifyTenant(tok + "x")
	if !errors.Is(err, tenancy.ErrUnauthenticated) || ident != "" || claims != nil {
		t.Fatalf("bad token: %q, %v, %v", ident, claims, err)
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{HS256, RS256, ES256, EdDSA} {
		b.Run(alg, func(b *testing.B) {
			s, v := pair(b, alg, nil)
			tok, err := s.Issue("acme-corp", "user-1", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey := []byte("old-key-old-key-old-key-old-key-")
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	base := Config{Issuer: "https://auth.example.com", Audience: "api"}
	sign := func(alg, kid string, key any) string {
		cfg := base
		cfg.Algorithm, cfg.KeyID, cfg.Key = alg, kid, key
		s, err := NewSigner(cfg)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.Issue("acme-corp", "client", nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	verifier := func(keys ...Key) *Verifier {
		cfg := base
		cfg.Algorithm, cfg.KeyID, cfg.Key, cfg.Keys = EdDSA, "k2", edKey, keys
		v, err := NewVerifier(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	oldTok := sign(HS256, "k1", oldKey)
	newTok := sign(EdDSA, "k2", edKey)

	during := verifier(Key{ID: "k1", Algorithm: HS256, Key: oldKey})
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		c, err := during.Verify(tok)
		if err != nil || c.Tenant != "acme-corp" {
			t.Fatalf("%s token during the rotation: %v", name, err)
		}
		for _, claim := range []string{"tenant_id", "exp", "iat", "iss", "aud"} {
			if _, ok := c.Raw[claim]; !ok {
				t.Fatalf("%s token lacks %s: %v", name, claim, c.Raw)
			}
		}
	}
	after := verifier()
	if _, err := after.Verify(oldTok); !errors.Is(err, tenancy.ErrUnauthenticated) {
		t.Fatalf("old token after its key retired: %v, want refused", err)
	}
	if _, err := after.Verify(newTok); err != nil {
		t.Fatalf("new token after the rotation: %v", err)
	}
	// A token signed with the old HMAC key but naming the EdDSA key's kid,
	// or no kid at all, is refused: each key verifies its own algorithm.
	for name, tok := range map[string]string{"kid of another algorithm": sign(HS256, "k2", oldKey), "no kid": sign(HS256, "", oldKey), "unknown kid": sign(HS256, "k9", oldKey)} {
		if _, err := during.Verify(tok); !errors.Is(err, tenancy.ErrUnauthenticated) {
			t.Fatalf("%s: %v, want refused", name, err)
		}
	}
	if _, err := NewVerifier(Config{Algorithm: HS256, Key: oldKey, Keys: []Key{{ID: "", Algorithm: HS256, Key: oldKey}}}); err == nil {
		t.Fatal("a key without an ID accepted")
	}
}
