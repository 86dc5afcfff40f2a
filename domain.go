package tenancy

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Domain is a custom domain of a tenant and the state of its ownership
// check. A store creates it unverified, with a new Token, when the domain is
// added (Store.AddDomain, or Create with Tenant.Domains); whoever checks
// that the domain's owner published the token (package customdomain) then
// marks it verified (Store.VerifyDomain). Only verified domains resolve.
type Domain struct {
	// Name is the domain, normalized with NormalizeDomain.
	Name string `json:"name"`
	// TenantID is the ID of the tenant that holds it.
	TenantID string `json:"tenant_id"`
	// Token is the challenge the domain's owner publishes to prove control
	// of it. It is not a secret: it only pairs this claim with a DNS
	// record, and a new claim of the domain gets a new token.
	Token string `json:"token"`
	// CreatedAt is when the domain was added.
	CreatedAt time.Time `json:"created_at"`
	// VerifiedAt is when the domain was verified; zero while it is not.
	VerifiedAt time.Time `json:"verified_at,omitzero"`
}

// Verified reports whether the domain is verified, and so resolves.
func (d *Domain) Verified() bool { return !d.VerifiedAt.IsZero() }

// NewDomainToken returns a new verification token: 32 lowercase hex digits
// (128 random bits). Stores call it when a domain is added.
func NewDomainToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}
