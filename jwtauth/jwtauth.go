// Package jwtauth issues and verifies the JSON Web Tokens that name a
// tenant. Verification is pinned to the one configured algorithm, requires
// an expiry, honours not-before, checks issuer and audience when configured,
// and validates the tenant claim with tenancy.ValidateIdentifier; every
// failure wraps tenancy.ErrUnauthenticated, so the problem package answers
// 401 with WWW-Authenticate: Bearer.
package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/golang-jwt/jwt/v5"
)

// Supported algorithms.
const (
	HS256 = "HS256"
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Defaults.
const (
	DefaultTenantClaim = "tenant_id"
	DefaultTTL         = time.Hour
	// MinHMACKeyLen is the shortest HS256 key accepted: RFC 7518 §3.2 asks
	// for a key at least as long as the hash output.
	MinHMACKeyLen = 32
)

// Errors that Verify wraps alongside tenancy.ErrUnauthenticated, so callers
// can tell the tenant claim problems apart. Token problems (expired, bad
// signature, wrong audience...) wrap golang-jwt's sentinel errors instead,
// such as jwt.ErrTokenExpired.
var (
	// ErrTenantClaimMissing: the token has no tenant claim, or it is not a
	// string.
	ErrTenantClaimMissing = errors.New("token has no tenant claim")
	// ErrTenantClaimInvalid: the tenant claim is not a valid identifier.
	ErrTenantClaimInvalid = errors.New("token tenant claim is not a valid identifier")
)

// Config configures a Signer or a Verifier.
type Config struct {
	// Algorithm is HS256, RS256, ES256 or EdDSA. Required: a verifier accepts
	// tokens signed with this algorithm only.
	Algorithm string
	// Key is the key: a []byte of at least MinHMACKeyLen bytes for HS256;
	// for a Signer, an *rsa.PrivateKey (RS256), *ecdsa.PrivateKey on P-256
	// (ES256) or ed25519.PrivateKey (EdDSA); for a Verifier, the matching
	// public key (a private key is accepted too, and its public half used).
	Key any
	// Issuer, when set, is written to the iss claim on Issue and required to
	// match on Verify.
	Issuer string
	// Audience, when set, is written to the aud claim on Issue and required
	// to be among the token's audiences on Verify.
	Audience string
	// TenantClaim names the claim that carries the tenant identifier.
	// Default "tenant_id".
	TenantClaim string
	// TTL is how long an issued token is valid. Default one hour.
	TTL time.Duration
	// Leeway is the clock skew tolerated on exp and nbf. Default zero.
	Leeway time.Duration
	// KeyID names Key: a Signer writes it to the kid header of every token,
	// and a Verifier picks Key for tokens whose kid is KeyID. Empty: tokens
	// carry no kid, and a Verifier verifies tokens without one with Key.
	KeyID string
	// Keys are further keys a Verifier accepts, each by its kid and pinned
	// to its own algorithm, for key rotation: sign with a new Key and KeyID,
	// keep the previous key here until every token it signed has expired,
	// then retire it by removing it. Signers ignore Keys. Default: none.
	Keys []Key

	// now is the clock, for tests; nil means time.Now.
	now func() time.Time
}

// Key is a verification key of a Verifier, named by its key ID.
type Key struct {
	// ID is the kid of the tokens the key verifies. Required.
	ID string
	// Algorithm is the one algorithm the key verifies: HS256, RS256, ES256
	// or EdDSA.
	Algorithm string
	// Key is the key, as Config.Key.
	Key any
}

func (c Config) tenantClaim() string {
	if c.TenantClaim == "" {
		return DefaultTenantClaim
	}
	return c.TenantClaim
}

func (c Config) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func method(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case HS256:
		return jwt.SigningMethodHS256, nil
	case RS256:
		return jwt.SigningMethodRS256, nil
	case ES256:
		return jwt.SigningMethodES256, nil
	case EdDSA:
		return jwt.SigningMethodEdDSA, nil
	case "":
		return nil, errors.New("jwtauth: Config.Algorithm is required")
	}
	return nil, fmt.Errorf("jwtauth: unsupported algorithm %q (want HS256, RS256, ES256 or EdDSA)", alg)
}

// signingKey checks that key fits alg for signing.
func signingKey(alg string, key any) (any, error) {
	switch alg {
	case HS256:
		return hmacKey(key)
	case RS256:
		if k, ok := key.(*rsa.PrivateKey); ok {
			return k, checkRSA(&k.PublicKey)
		}
	case ES256:
		if k, ok := key.(*ecdsa.PrivateKey); ok {
			return k, checkP256(&k.PublicKey)
		}
	case EdDSA:
		if k, ok := key.(ed25519.PrivateKey); ok && len(k) == ed25519.PrivateKeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("jwtauth: key of type %T does not sign %s", key, alg)
}

// verifyingKey checks that key fits alg for verifying, taking the public
// half of a private key.
func verifyingKey(alg string, key any) (any, error) {
	if s, ok := key.(crypto.Signer); ok && alg != HS256 {
		key = s.Public()
	}
	switch alg {
	case HS256:
		return hmacKey(key)
	case RS256:
		if k, ok := key.(*rsa.PublicKey); ok {
			return k, checkRSA(k)
		}
	case ES256:
		if k, ok := key.(*ecdsa.PublicKey); ok {
			return k, checkP256(k)
		}
	case EdDSA:
		if k, ok := key.(ed25519.PublicKey); ok && len(k) == ed25519.PublicKeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("jwtauth: key of type %T does not verify %s", key, alg)
}

func hmacKey(key any) ([]byte, error) {
	k, ok := key.([]byte)
	if !ok {
		return nil, fmt.Errorf("jwtauth: HS256 needs a []byte key, not %T", key)
	}
	if len(k) < MinHMACKeyLen {
		return nil, fmt.Errorf("jwtauth: HS256 key must be at least %d bytes", MinHMACKeyLen)
	}
	return k, nil
}

func checkRSA(k *rsa.PublicKey) error {
	if k.N == nil || k.N.BitLen() < 2048 {
		return errors.New("jwtauth: RS256 key must be at least 2048 bits")
	}
	return nil
}

func checkP256(k *ecdsa.PublicKey) error {
	if k.Curve != elliptic.P256() {
		return errors.New("jwtauth: ES256 key must be on curve P-256")
	}
	return nil
}

// Signer issues tokens. It is safe for concurrent use.
type Signer struct {
	cfg    Config
	method jwt.SigningMethod
	key    any
}

// NewSigner returns a Signer for cfg, or an error when the algorithm is
// missing or unsupported or the key does not fit it.
func NewSigner(cfg Config) (*Signer, error) {
	m, err := method(cfg.Algorithm)
	if err != nil {
		return nil, err
	}
	key, err := signingKey(cfg.Algorithm, cfg.Key)
	if err != nil {
		return nil, err
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	return &Signer{cfg: cfg, method: m, key: key}, nil
}

// TTL returns how long the tokens the Signer issues are valid.
func (s *Signer) TTL() time.Duration { return s.cfg.TTL }

// KeyID returns the kid the Signer writes, or empty.
func (s *Signer) KeyID() string { return s.cfg.KeyID }

// Issue returns a signed token naming the tenant identifier, for subject,
// valid from now for the configured TTL. extra adds claims; it cannot
// override the registered claims (iss, sub, aud, exp, nbf, iat) or the tenant
// claim. The identifier must pass tenancy.ValidateIdentifier.
func (s *Signer) Issue(identifier, subject string, extra map[string]any) (string, error) {
	if err := tenancy.ValidateIdentifier(identifier); err != nil {
		return "", fmt.Errorf("jwtauth: issue token: %w", err)
	}
	now := s.cfg.clock()
	claims := make(jwt.MapClaims, len(extra)+7)
	for k, v := range extra {
		if _, reserved := registered[k]; !reserved && k != s.cfg.tenantClaim() {
			claims[k] = v
		}
	}
	claims[s.cfg.tenantClaim()] = identifier
	if subject != "" {
		claims["sub"] = subject
	}
	if s.cfg.Issuer != "" {
		claims["iss"] = s.cfg.Issuer
	}
	if s.cfg.Audience != "" {
		claims["aud"] = s.cfg.Audience
	}
	claims["iat"] = now.Unix()
	claims["nbf"] = now.Unix()
	claims["exp"] = now.Add(s.cfg.TTL).Unix()
	jt := jwt.NewWithClaims(s.method, claims)
	if s.cfg.KeyID != "" {
		jt.Header["kid"] = s.cfg.KeyID
	}
	tok, err := jt.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("jwtauth: sign token: %w", err)
	}
	return tok, nil
}

// registered are the claims Issue sets itself; extra claims cannot set them.
var registered = map[string]struct{}{"iss": {}, "sub": {}, "aud": {}, "exp": {}, "nbf": {}, "iat": {}}

// Claims are the verified claims of a token.
type Claims struct {
	// Tenant is the tenant identifier from the tenant claim, validated and
	// exactly as written in the token (never case-folded).
	Tenant string
	// Subject is the sub claim, or empty.
	Subject string
	// Raw holds every claim of the token, as decoded JSON.
	Raw map[string]any
}

// Verifier verifies tokens. It is safe for concurrent use.
type Verifier struct {
	cfg     Config
	parser  *jwt.Parser
	key     any
	keys    map[string]verifyKey // by kid, Key's included when KeyID is set
	keyFunc jwt.Keyfunc
}

type verifyKey struct {
	alg string
	key any
}

// NewVerifier returns a Verifier for cfg, or an error when the algorithm is
// missing or unsupported or the key does not fit it.
func NewVerifier(cfg Config) (*Verifier, error) {
	if _, err := method(cfg.Algorithm); err != nil {
		return nil, err
	}
	key, err := verifyingKey(cfg.Algorithm, cfg.Key)
	if err != nil {
		return nil, err
	}
	keys := map[string]verifyKey{}
	algs := []string{cfg.Algorithm}
	if cfg.KeyID != "" {
		keys[cfg.KeyID] = verifyKey{cfg.Algorithm, key}
	}
	for _, k := range cfg.Keys {
		if _, err := method(k.Algorithm); err != nil {
			return nil, fmt.Errorf("jwtauth: key %q: %w", k.ID, err)
		}
		vk, err := verifyingKey(k.Algorithm, k.Key)
		if err != nil {
			return nil, fmt.Errorf("jwtauth: key %q: %w", k.ID, err)
		}
		if _, dup := keys[k.ID]; dup || k.ID == "" {
			return nil, fmt.Errorf("jwtauth: key ID %q is empty or given twice", k.ID)
		}
		keys[k.ID] = verifyKey{k.Algorithm, vk}
		if !slices.Contains(algs, k.Algorithm) {
			algs = append(algs, k.Algorithm)
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.now))
	}
	v := &Verifier{cfg: cfg, parser: jwt.NewParser(opts...), key: key, keys: keys}
	v.keyFunc = v.keyFor
	return v, nil
}

// keyFor hands out the key the token's kid names (Key for a token without
// one), and only for that key's own algorithm. The parser already refuses
// algorithms no key has (WithValidMethods); checking per key keeps an
// HS256 token from ever being verified with an RSA public key, whatever
// its kid says. An unknown kid, a retired key's included, verifies nothing.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	if t.Method == nil {
		return nil, jwt.ErrTokenSignatureInvalid
	}
	want := verifyKey{v.cfg.Algorithm, v.key}
	if kid, present := t.Header["kid"]; present {
		id, _ := kid.(string)
		var ok bool
		if want, ok = v.keys[id]; !ok {
			return nil, jwt.ErrTokenUnverifiable
		}
	}
	if t.Method.Alg() != want.alg {
		return nil, jwt.ErrTokenSignatureInvalid
	}
	return want.key, nil
}

// tokenReasons are the golang-jwt errors Verify keeps in its chain, in the
// order they are checked. Their messages are fixed strings: nothing of the
// token is echoed.
var tokenReasons = []error{
	jwt.ErrTokenMalformed,
	jwt.ErrTokenUnverifiable,
	jwt.ErrTokenSignatureInvalid,
	jwt.ErrTokenRequiredClaimMissing,
	jwt.ErrTokenExpired,
	jwt.ErrTokenNotValidYet,
	jwt.ErrTokenUsedBeforeIssued,
	jwt.ErrTokenInvalidAudience,
	jwt.ErrTokenInvalidIssuer,
	jwt.ErrTokenInvalidClaims,
}

// Verify checks token and returns its claims. Every error wraps
// tenancy.ErrUnauthenticated and one reason: a golang-jwt sentinel such as
// jwt.ErrTokenExpired, or ErrTenantClaimMissing / ErrTenantClaimInvalid.
// Error messages never quote the token.
func (v *Verifier) Verify(token string) (Claims, error) {
	if !wellFormed(token) {
		return Claims{}, fmt.Errorf("jwtauth: %w: %w", tenancy.ErrUnauthenticated, jwt.ErrTokenMalformed)
	}
	var mc jwt.MapClaims
	if _, err := v.parser.ParseWithClaims(token, &mc, v.keyFunc); err != nil {
		// golang-jwt wraps decoding errors that may quote bytes of the token;
		// keep only its fixed sentinel.
		reason := jwt.ErrTokenInvalidClaims
		for _, r := range tokenReasons {
			if errors.Is(err, r) {
				reason = r
				break
			}
		}
		return Claims{}, fmt.Errorf("jwtauth: %w: %w", tenancy.ErrUnauthenticated, reason)
	}
	raw, ok := mc[v.cfg.tenantClaim()]
	if !ok {
		return Claims{}, fmt.Errorf("jwtauth: %w: %w", tenancy.ErrUnauthenticated, ErrTenantClaimMissing)
	}
	ident, ok := raw.(string)
	if !ok {
		return Claims{}, fmt.Errorf("jwtauth: %w: %w", tenancy.ErrUnauthenticated, ErrTenantClaimMissing)
	}
	if tenancy.ValidateIdentifier(ident) != nil {
		return Claims{}, fmt.Errorf("jwtauth: %w: %w", tenancy.ErrUnauthenticated, ErrTenantClaimInvalid)
	}
	sub, _ := mc["sub"].(string)
	return Claims{Tenant: ident, Subject: sub, Raw: mc}, nil
}

// VerifyTenant verifies token as Verify does and returns the tenant
// identifier it names and its claims, as a *Claims. It lets *Verifier serve
// as the verifier of resolve.JWT, which does not depend on this package: the
// middleware puts the claims in the request context, where ClaimsFromContext
// finds them.
func (v *Verifier) VerifyTenant(token string) (identifier string, claims any, err error) {
	c, err := v.Verify(token)
	if err != nil {
		return "", nil, err
	}
	return c.Tenant, &c, nil
}

// wellFormed reports whether token is three non-empty base64url parts. Go's
// base64 decoder skips '\r' and '\n', so without this check "token\n"
// would verify as "token".
func wellFormed(token string) bool {
	dots, part := 0, 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c == '.':
			if part == 0 {
				return false
			}
			dots, part = dots+1, 0
			continue
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		part++
	}
	return dots == 2 && part > 0
}

// WithClaims returns a copy of ctx that carries c, as the middleware does
// for requests resolved from a token (through tenancy.WithClaims).
func WithClaims(ctx context.Context, c *Claims) context.Context {
	if c == nil {
		return ctx
	}
	return tenancy.WithClaims(ctx, c)
}

// ClaimsFromContext returns the claims ctx carries and whether there are
// any: those of the token the request's tenant was resolved from, put there
// by the middleware. It never panics.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	v, _ := tenancy.ClaimsFromContext(ctx)
	c, ok := v.(*Claims)
	return c, ok && c != nil
}
