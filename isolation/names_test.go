package isolation_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
)

// hostile are identifiers that must never become a name (PITFALLS item 5).
var hostile = []string{
	"", " ", "a", "ab", `a"; DROP SCHEMA public; --`, "../../etc", "../x", "acme\n", "acme ",
	"ACME", "Acme", "acme_corp", "acme.corp", "acme/x", `acme\x`, "аcme", "ａcme", "acme\x00",
	"-acme", "acme-", "1acme", strings.Repeat("a", 57), "t-rex'", "t-rex;",
}

func TestNameRefusesHostileInput(t *testing.T) {
	t.Parallel()
	for _, id := range hostile {
		if name, err := isolation.Name(isolation.DefaultPrefix, id); !errors.Is(err, tenancy.ErrInvalidIdentifier) {
			t.Errorf("Name(%q) = %q, %v; want ErrInvalidIdentifier", id, name, err)
		}
		if path, err := isolation.FileName(t.TempDir(), id); !errors.Is(err, tenancy.ErrInvalidIdentifier) {
			t.Errorf("FileName(%q) = %q, %v; want ErrInvalidIdentifier", id, path, err)
		}
	}
}

func TestNameDerivation(t *testing.T) {
	t.Parallel()
	tests := []struct{ id, want string }{
		{"acme-corp", "tenant_acme_corp"},
		{"rex", "tenant_rex"},
		{"t-rex", "tenant_t_rex"},
		{"trex", "tenant_trex"},
		{strings.Repeat("a", 56), "tenant_" + strings.Repeat("a", 56)},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got, err := isolation.Name(isolation.DefaultPrefix, tt.id)
		if err != nil || got != tt.want {
			t.Errorf("Name(%q) = %q, %v; want %q", tt.id, got, err, tt.want)
		}
		if len(got) > 63 {
			t.Errorf("Name(%q) is %d bytes", tt.id, len(got))
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%q and %q both map to %q", tt.id, other, got)
		}
		seen[got] = tt.id
	}
}

func TestValidatePrefix(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"tenant_", "t_", "app1_"} {
		if err := isolation.ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "_", "tenant", "tenants_", "T_", "1t_", "t-_", `t"_`} {
		if err := isolation.ValidatePrefix(p); err == nil {
			t.Errorf("ValidatePrefix(%q) accepted", p)
		}
	}
}

func TestFileNameStaysInDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	got, err := isolation.FileName(dir, "acme-corp")
	if err != nil || got != filepath.Join(dir, "acme-corp.db") {
		t.Fatalf("FileName = %q, %v", got, err)
	}
}

// FuzzName checks that every name is built only from a valid identifier, is
// a safe unquoted PostgreSQL name within 63 bytes, and is one-to-one: the
// identifier can be recovered from it.
func FuzzName(f *testing.F) {
	for _, s := range append(hostile, "acme-corp", "rex", "t-rex", "a-b-c") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		name, err := isolation.Name(isolation.DefaultPrefix, id)
		valid := tenancy.ValidateIdentifier(id) == nil
		if (err == nil) != valid {
			t.Fatalf("Name(%q) error %v, identifier valid %v", id, err, valid)
		}
		if err != nil {
			return
		}
		if len(name) > 63 || !utf8.ValidString(name) {
			t.Fatalf("Name(%q) = %q: too long or not UTF-8", id, name)
		}
		for _, c := range []byte(name) {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
				t.Fatalf("Name(%q) = %q holds %q", id, name, c)
			}
		}
		back := strings.ReplaceAll(strings.TrimPrefix(name, isolation.DefaultPrefix), "_", "-")
		if back != id {
			t.Fatalf("Name(%q) = %q does not map back (%q)", id, name, back)
		}
		path, err := isolation.FileName("/data", id)
		if err != nil || filepath.Dir(path) != "/data" {
			t.Fatalf("FileName(%q) = %q, %v", id, path, err)
		}
	})
}
