package credential_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/credential"
	"github.com/go-tenancy/tenancy/store/memstore"
)

// BenchmarkAuthenticateFailure times the two failures a client must not
// tell apart, with the default argon2id parameters.
func BenchmarkAuthenticateFailure(b *testing.B) {
	ctx := context.Background()
	s := memstore.New()
	tn, _ := s.Create(ctx, &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme"})
	a, _ := credential.New(credential.Config{Tenants: s, Secrets: s, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	good, _, _ := a.Set(ctx, tn)
	wrong := good[:len(good)-2] + "xx"
	b.Run("wrong-secret", func(b *testing.B) {
		for b.Loop() {
			_, _ = a.Authenticate(ctx, "acme-corp", wrong)
		}
	})
	b.Run("unknown-tenant", func(b *testing.B) {
		for b.Loop() {
			_, _ = a.Authenticate(ctx, "no-such-tenant", wrong)
		}
	})
}
