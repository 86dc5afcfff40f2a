package credential

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-tenancy/tenancy"
	"golang.org/x/crypto/argon2"
)

// Errors.
var (
	// ErrSecretNotFound: the tenant has no secret of that ID. Stores
	// return it; Authenticate turns it into tenancy.ErrUnauthenticated.
	ErrSecretNotFound = errors.New("credential: no such secret")
)

// Secret is one hashed client secret of a tenant. The plain secret is
// shown once, when it is made, and never stored.
type Secret struct {
	// ID names the secret; it is the plain secret's prefix, so that a
	// presented secret names the one hash to check.
	ID       string
	TenantID string
	// Hash is the argon2id hash, in the PHC string format
	// ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
	Hash      string
	CreatedAt time.Time
	// ExpiresAt is when the secret stops being valid; zero: never. A
	// rotation sets it on the secret it replaces, a grace period ahead.
	ExpiresAt time.Time
}

// Valid reports whether s is valid at now.
func (s Secret) Valid(now time.Time) bool { return s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt) }

// Store keeps tenants' hashed client secrets: in the tenant store's own
// database (pgstore, sqlitestore) or in memory (memstore). One conformance
// test covers the three.
type Store interface {
	// PutSecret stores s, and makes every other secret of s.TenantID that
	// is valid later than othersUntil expire at othersUntil. The two happen
	// atomically.
	PutSecret(ctx context.Context, s Secret, othersUntil time.Time) error
	// GetSecret returns the tenant's secret of that ID, or ErrSecretNotFound.
	GetSecret(ctx context.Context, tenantID, id string) (Secret, error)
	// ListSecrets returns the tenant's secrets, expired ones included, newest
	// first.
	ListSecrets(ctx context.Context, tenantID string) ([]Secret, error)
	// DeleteSecrets deletes the tenant's secret of that ID, or all of its
	// secrets when id is empty; it returns how many it deleted.
	DeleteSecrets(ctx context.Context, tenantID, id string) (int, error)
}

// Params are argon2id's cost parameters.
type Params struct {
	// Memory in KiB.
	Memory uint32
	// Time is the number of passes.
	Time uint32
	// Threads is the parallelism.
	Threads uint8
}

// DefaultParams are OWASP's first recommended argon2id configuration
// (Password Storage Cheat Sheet): 19 MiB of memory, 2 passes, 1 thread, a
// 16-byte salt and a 32-byte hash. A verification costs about 20 ms of one
// core; raise Memory where the token endpoint's rate allows.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// secretLen is the random part of a plain secret: 256 bits.
	secretLen = 32
	// Prefix starts every plain secret, so that secret scanners find them.
	Prefix = "tcs_"
)

// Hash returns the argon2id hash of secret in the PHC string format.
func Hash(secret string, p Params) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(secret), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// verifyHook, when set, is called on every hash verification (tests count
// them).
var verifyHook atomic.Pointer[func()]

// Verify reports whether secret matches hash, comparing in constant time.
// A malformed hash matches nothing, after the same work as a well-formed
// one of DefaultParams.
func Verify(hash, secret string) bool {
	if h := verifyHook.Load(); h != nil {
		(*h)()
	}
	p, salt, want, ok := parseHash(hash)
	if !ok {
		p, salt, want = DefaultParams, make([]byte, saltLen), make([]byte, keyLen)
	}
	got := argon2.IDKey([]byte(secret), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1 && ok
}

func parseHash(h string) (Params, []byte, []byte, bool) {
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return Params{}, nil, nil, false
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || p.Time == 0 || p.Threads == 0 || p.Memory < 8*uint32(p.Threads) || p.Memory > 1<<22 {
		return Params{}, nil, nil, false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return Params{}, nil, nil, false
	}
	return p, salt, key, true
}

// Config configures an Authenticator.
type Config struct {
	// Tenants finds the tenant a client names by its identifier. Required.
	Tenants tenancy.Store
	// Secrets keeps the hashed secrets. Required.
	Secrets Store
	// Params are the argon2id costs of new hashes. Default DefaultParams.
	// Existing hashes keep the parameters they were made with.
	Params Params
	// Grace is how long a rotated secret stays valid beside its successor.
	// Default 24h.
	Grace time.Duration
	// Logger receives secret changes (never the secrets). Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Authenticator checks tenants' client credentials, and sets, rotates and
// revokes their secrets. It is a tenancy.Component: purging a tenant
// deletes its secrets.
type Authenticator struct {
	cfg   Config
	dummy string
}

var _ tenancy.Component = (*Authenticator)(nil)

// New checks cfg and returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Tenants == nil || cfg.Secrets == nil {
		return nil, errors.New("credential: Config.Tenants and Config.Secrets are required")
	}
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// A real hash of a random secret, with the configured parameters: what
	// an unknown client is checked against, so that it costs what a known
	// one does.
	var r [secretLen]byte
	_, _ = rand.Read(r[:])
	return &Authenticator{cfg: cfg, dummy: Hash(hex.EncodeToString(r[:]), cfg.Params)}, nil
}

// Authenticate checks a client's credentials: clientID is the tenant's
// identifier, secret a plain secret of the tenant. It returns the tenant
// when the secret is one of its valid secrets and the tenant is active.
//
// Every failure to authenticate is the same error, tenancy.ErrUnauthenticated
// (401), whatever failed: an unknown or malformed client ID, an unknown,
// expired or revoked secret, a wrong one. Each call verifies exactly one
// argon2id hash (a dummy one when there is no real one to check), so that
// failures also take the same time. A tenant that authenticated but is not
// served gets its status error (tenancy.Tenant.CheckStatus).
func (a *Authenticator) Authenticate(ctx context.Context, clientID, secret string) (*tenancy.Tenant, error) {
	hash, t := a.dummy, (*tenancy.Tenant)(nil)
	id, ok := secretID(secret)
	var found Secret
	if tenancy.ValidateIdentifier(clientID) == nil && ok {
		tn, err := a.cfg.Tenants.GetByIdentifier(ctx, clientID)
		switch {
		case err == nil:
			s, err := a.cfg.Secrets.GetSecret(ctx, tn.ID, id)
			switch {
			case err == nil && s.Valid(a.cfg.Now()):
				hash, t, found = s.Hash, tn, s
			case err != nil && !errors.Is(err, ErrSecretNotFound):
				return nil, fmt.Errorf("credential: %w", err)
			}
		case !errors.Is(err, tenancy.ErrTenantNotFound):
			return nil, fmt.Errorf("credential: %w", err)
		}
	}
	if !Verify(hash, secret) || t == nil || found.ID == "" {
		return nil, fmt.Errorf("credential: %w", tenancy.ErrUnauthenticated)
	}
	if err := t.CheckStatus(); err != nil {
		return nil, err
	}
	return t, nil
}

// secretID returns the ID a plain secret names: Prefix, the ID, '_', the
// random part.
func secretID(secret string) (string, bool) {
	rest, ok := strings.CutPrefix(secret, Prefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 {
		return "", false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return id, true
}

// newSecret returns a plain secret and its record for t.
func (a *Authenticator) newSecret(t *tenancy.Tenant) (string, Secret) {
	var idb [8]byte
	var r [secretLen]byte
	_, _ = rand.Read(idb[:])
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(idb[:])
	plain := Prefix + id + "_" + base64.RawURLEncoding.EncodeToString(r[:])
	return plain, Secret{ID: id, TenantID: t.ID, Hash: Hash(plain, a.cfg.Params), CreatedAt: a.cfg.Now().UTC()}
}

// Set gives t a new secret and revokes every other at once. It returns the
// plain secret, which is shown this once and stored only hashed.
func (a *Authenticator) Set(ctx context.Context, t *tenancy.Tenant) (plain string, s Secret, err error) {
	return a.put(ctx, t, a.cfg.Now())
}

// Rotate gives t a new secret and lets its other valid secrets expire
// after the grace period, so that clients can move to the new one. It
// returns the plain secret, shown this once.
func (a *Authenticator) Rotate(ctx context.Context, t *tenancy.Tenant) (plain string, s Secret, err error) {
	return a.put(ctx, t, a.cfg.Now().Add(a.cfg.Grace))
}

func (a *Authenticator) put(ctx context.Context, t *tenancy.Tenant, othersUntil time.Time) (string, Secret, error) {
	if t == nil {
		return "", Secret{}, tenancy.ErrNoTenant
	}
	plain, s := a.newSecret(t)
	if err := a.cfg.Secrets.PutSecret(ctx, s, othersUntil.UTC()); err != nil {
		return "", Secret{}, fmt.Errorf("credential: store secret of tenant %s: %w", t.ID, err)
	}
	a.cfg.Logger.InfoContext(ctx, "credential: new client secret", "tenant_id", t.ID, "secret_id", s.ID, "others_until", othersUntil)
	return plain, s, nil
}

// Revoke deletes t's secret of that ID at once, or all of t's secrets when
// id is empty. It returns ErrSecretNotFound when there was none.
func (a *Authenticator) Revoke(ctx context.Context, t *tenancy.Tenant, id string) error {
	if t == nil {
		return tenancy.ErrNoTenant
	}
	n, err := a.cfg.Secrets.DeleteSecrets(ctx, t.ID, id)
	if err != nil {
		return fmt.Errorf("credential: revoke: %w", err)
	}
	if n == 0 {
		return ErrSecretNotFound
	}
	a.cfg.Logger.InfoContext(ctx, "credential: client secret revoked", "tenant_id", t.ID, "secret_id", id, "count", n)
	return nil
}

// Secrets lists t's secrets (hashes, never plain secrets), newest first.
func (a *Authenticator) Secrets(ctx context.Context, t *tenancy.Tenant) ([]Secret, error) {
	if t == nil {
		return nil, tenancy.ErrNoTenant
	}
	return a.cfg.Secrets.ListSecrets(ctx, t.ID)
}

// Forget implements tenancy.Component: it deletes t's secrets.
func (a *Authenticator) Forget(ctx context.Context, t *tenancy.Tenant) error {
	if t == nil {
		return tenancy.ErrNoTenant
	}
	_, err := a.cfg.Secrets.DeleteSecrets(ctx, t.ID, "")
	return err
}

// Residue implements tenancy.Component: t's secrets left.
func (a *Authenticator) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	ss, err := a.Secrets(ctx, t)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "client secret " + s.ID + " of tenant " + t.ID
	}
	return out, nil
}
