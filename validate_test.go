package tenancy_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy"
)

// FuzzValidateIdentifier checks the hand-written validator against
// IdentifierPattern, the regular expression it documents.
func FuzzValidateIdentifier(f *testing.F) {
	for _, s := range []string{
		"", " ", "a", "ab", "abc", "acme-corp", "acme-corp\n", "\nacme", " acme", "acme ", "ACME", "Acme",
		"аcme", "ａｃｍｅ", "acme\u200b", "acme-", "-acme", "1acme", "a1-", "a--b", "acme_corp", "a.b", "../x",
		`a"; drop schema public; --`, "acme\x00", strings.Repeat("a", 55), strings.Repeat("a", 56), strings.Repeat("a", 57),
		strings.Repeat("a", 64), "a" + strings.Repeat("-", 54) + "b",
	} {
		f.Add(s)
	}
	re := regexp.MustCompile(tenancy.IdentifierPattern)
	f.Fuzz(func(t *testing.T, s string) {
		err := tenancy.ValidateIdentifier(s)
		if got, want := err == nil, re.MatchString(s); got != want {
			t.Fatalf("ValidateIdentifier(%q) valid = %v, pattern says %v", s, got, want)
		}
		if err != nil && !errors.Is(err, tenancy.ErrInvalidIdentifier) {
			t.Fatalf("error %v does not wrap ErrInvalidIdentifier", err)
		}
	})
}
