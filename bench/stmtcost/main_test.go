package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy/internal/testenv"
)

// TestRun runs every variant briefly on a scratch database: each request's
// rows are counted (the tenant statement's, and exactly the one note asked
// for, which only the note's own tenant sees), so a variant that does not
// scope its read to the right tenant fails here.
func TestRun(t *testing.T) {
	t.Parallel()
	testenv.Admin(t) // skips, or fails under CI=true, without PostgreSQL
	var out bytes.Buffer
	if err := run(context.Background(), config{dsn: testenv.DatabaseURL(), tenants: 5, n: 20, reps: 1}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, v := range variants() {
		if !strings.Contains(out.String(), "  "+v.name) {
			t.Errorf("no median for %q:\n%s", v.name, out.String())
		}
	}
}

func TestRunRefusesBadCounts(t *testing.T) {
	t.Parallel()
	if err := run(context.Background(), config{tenants: 5, n: 0, reps: 1}, &bytes.Buffer{}); err == nil {
		t.Fatal("n = 0 accepted")
	}
}
