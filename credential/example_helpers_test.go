package credential_test

import (
	"crypto/ed25519"
	"crypto/rand"

	"github.com/go-tenancy/tenancy"
)

var (
	exampleTenant    = tenancy.Tenant{Identifier: "acme-corp", Name: "Acme"}
	_, ed25519Key, _ = ed25519.GenerateKey(rand.Reader)
)
