package postgres_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy/isolation/postgres"
)

func TestParseServers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want map[string]string
		err  string
	}{
		{in: "postgres://a@h1/db", want: map[string]string{"": "postgres://a@h1/db"}},
		{in: "default=postgres://a@h1/db,eu=postgresql://a@h2/db", want: map[string]string{"": "postgres://a@h1/db", "eu": "postgresql://a@h2/db"}},
		{in: "# servers\ndefault=postgres://a@h1/db\n\n eu-1 = postgres://a@h2,h3/db?target_session_attrs=read-write \n",
			want: map[string]string{"": "postgres://a@h1/db", "eu-1": "postgres://a@h2,h3/db?target_session_attrs=read-write"}},
		{in: "", err: "empty"},
		{in: "eu=postgres://a@h2/db", err: `no "default" server`},
		{in: "default=postgres://s3cret@h1/db,default=postgres://a@h2/db", err: "listed twice"},
		{in: "default=postgres://a@h1/db,EU=postgres://a@h2/db", err: "name=postgres://"},
		{in: "default=mysql://s3cret@h1/db", err: "needs a postgres:// URL"},
		{in: "postgres://a@h1/db,postgres://a@h2/db", err: "name=postgres://"},
	} {
		got, err := postgres.ParseServers(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseServers(%q): error %v, want one saying %q", c.in, err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("ParseServers(%q): error repeats the URL: %v", c.in, err)
			}
			continue
		}
		if err != nil || !maps.Equal(got, c.want) {
			t.Errorf("ParseServers(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}
