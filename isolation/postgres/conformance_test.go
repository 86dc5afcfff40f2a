package postgres_test

import (
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
)

// TestConformance runs the provider conformance suite on every strategy, as
// the application role, the table owner and a superuser.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for _, kind := range dsnKinds {
				t.Run(kind, func(t *testing.T) {
					isolationtest.Run(t, func(t *testing.T, tenants []*tenancy.Tenant, maxConns int) isolationtest.Fixture {
						return suiteFixture(t, s, e, e.dsn(kind), tenants, maxConns)
					})
				})
			}
		})
	}
}
