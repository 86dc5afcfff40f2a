package isolationtest_test

import (
	"context"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation/isolationtest"
	"github.com/go-tenancy/tenancy/isolation/sqlite"
)

// A provider's tests run the suite with a Setup that opens the provider for
// the tenants given, each with an empty notes table.
func ExampleRun() {
	_ = func(t *testing.T) {
		isolationtest.Run(t, func(t *testing.T, tenants []*tenancy.Tenant, maxConns int) isolationtest.Fixture {
			p, err := sqlite.New(sqlite.Config{Dir: t.TempDir(), MaxConnsPerTenant: maxConns})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			for _, tn := range tenants {
				if _, err := p.Exec(context.Background(), tn, isolationtest.NotesSQLite); err != nil {
					t.Fatal(err)
				}
			}
			return isolationtest.Fixture{Provider: p}
		})
	}
}
