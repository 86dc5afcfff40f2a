package jwtauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/jwtauth"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/go-tenancy/tenancy/store/memstore"
)

// key is an HS256 key: at least 32 bytes, from a secret store in a real
// service.
var key = []byte("0123456789abcdef0123456789abcdef")

func Example() {
	cfg := jwtauth.Config{Algorithm: jwtauth.HS256, Key: key, Audience: "notes-api"}
	signer, err := jwtauth.NewSigner(cfg)
	if err != nil {
		panic(err)
	}
	verifier, err := jwtauth.NewVerifier(cfg)
	if err != nil {
		panic(err)
	}

	token, err := signer.Issue("acme-corp", "user-42", map[string]any{"role": "admin"})
	if err != nil {
		panic(err)
	}
	claims, err := verifier.Verify(token)
	fmt.Println(claims.Tenant, claims.Subject, claims.Raw["role"], err)

	// Every failure is unauthenticated (401), whatever the reason.
	_, err = verifier.Verify(token[:len(token)-2])
	fmt.Println(errors.Is(err, tenancy.ErrUnauthenticated))
	// Output:
	// acme-corp user-42 admin <nil>
	// true
}

// A handler behind the middleware and resolve.JWT reads the token's claims
// from the request context.
func ExampleClaimsFromContext() {
	verifier, _ := jwtauth.NewVerifier(jwtauth.Config{Algorithm: jwtauth.HS256, Key: key})
	signer, _ := jwtauth.NewSigner(jwtauth.Config{Algorithm: jwtauth.HS256, Key: key})
	store := memstore.New()
	_, _ = store.Create(context.Background(), &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme"})

	h := middleware.New(middleware.Config{
		Resolver: resolve.JWT{Verifier: verifier, Lookup: store},
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := tenancy.FromContext(r.Context())
		claims, _ := jwtauth.ClaimsFromContext(r.Context())
		fmt.Println(t.Identifier, claims.Subject)
	}))

	token, _ := signer.Issue("acme-corp", "user-42", nil)
	r := httptest.NewRequest("GET", "/notes", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	h.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// acme-corp user-42
}
