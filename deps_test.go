package tenancy_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps packages free of what they do not need: a service
// that resolves tenants by header links no JWT library, one without metrics
// no Prometheus client, and the seams between packages stay seams. It asks
// the go command (which go test puts on PATH) for each package's
// dependencies.
func TestDependencies(t *testing.T) {
	t.Parallel()
	const mod = "github.com/go-tenancy/tenancy"
	tests := []struct {
		pkg string
		// forbidden are import paths, or prefixes ending in "/".
		forbidden []string
	}{
		{mod + "/resolve", []string{mod + "/jwtauth", "github.com/golang-jwt/", "github.com/prometheus/"}},
		{mod + "/middleware", []string{mod + "/jwtauth", "github.com/golang-jwt/", "github.com/prometheus/"}},
		// Metrics are hooks; Prometheus is one implementation, promtenancy.
		{mod + "/limit", []string{"github.com/prometheus/"}},
		{mod + "/store/cache", []string{"github.com/prometheus/"}},
		// The lifecycle asks components; it knows no Redis.
		{mod + "/lifecycle", []string{"github.com/redis/", "github.com/prometheus/", mod + "/store/cache", mod + "/limit"}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.pkg, mod+"/"), func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command("go", "list", "-deps", tt.pkg).Output()
			if err != nil {
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				t.Fatalf("go list -deps %s: %v\n%s", tt.pkg, err, stderr)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 2 {
				t.Fatalf("go list -deps %s listed %q: expected the package and its dependencies", tt.pkg, deps)
			}
			for _, dep := range deps {
				for _, f := range tt.forbidden {
					if dep == f || strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f) {
						t.Errorf("%s depends on %s", tt.pkg, dep)
					}
				}
			}
		})
	}
}
