package storetest_test

import (
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/go-tenancy/tenancy/store/storetest"
)

// A store written elsewhere runs the suite from a test of its own; each
// subtest gets a fresh, empty store.
func ExampleRun() {
	// In mystore_test.go:
	testConformance := func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) tenancy.Store {
			return memstore.New() // mystore.New(...), emptied or fresh
		})
	}
	_ = testConformance
}
