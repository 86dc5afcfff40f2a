package credential_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/go-tenancy/tenancy/credential"
	"github.com/go-tenancy/tenancy/jwtauth"
	"github.com/go-tenancy/tenancy/store/memstore"
)

func Example() {
	ctx := context.Background()
	store := memstore.New() // or pgstore / sqlitestore: tenants and secrets together
	t, err := store.Create(ctx, &exampleTenant)
	if err != nil {
		log.Fatal(err)
	}
	auth, err := credential.New(credential.Config{Tenants: store, Secrets: store})
	if err != nil {
		log.Fatal(err)
	}
	// An admin command: the secret is printed once and stored hashed.
	plain, s, err := auth.Rotate(ctx, t)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(plain) > 40, s.TenantID == t.ID)

	signer, err := jwtauth.NewSigner(jwtauth.Config{
		Algorithm: jwtauth.EdDSA, Key: ed25519Key, KeyID: "2026-01",
		Issuer: "https://auth.example.com", Audience: "api",
	})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("POST /oauth/token", auth.TokenHandler(signer))
	// Output: true true
}
