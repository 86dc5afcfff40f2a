package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/problem"
)

// readmeBlocks returns the fenced code blocks of README.md in the given
// language, in order.
func readmeBlocks(t *testing.T, lang string) []string {
	t.Helper()
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	var blocks []string
	for _, m := range re.FindAllStringSubmatch(string(raw), -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestReadmeQuickStart follows the README's PostgreSQL path as written:
// its SQL block on a fresh server (names made unique to the test), its
// exported URLs, its "tenants create" command, then the server and the
// README's first request, and "tenants list". The README and the test
// cannot drift: both the SQL and the commands are read from README.md.
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel()
	testenv.Redis(t)
	sqlBlocks := readmeBlocks(t, "sql")
	if len(sqlBlocks) != 1 {
		t.Fatalf("README.md has %d sql blocks, want the setup SQL alone", len(sqlBlocks))
	}
	var stmts []string
	for _, l := range strings.Split(sqlBlocks[0], "\n") {
		if l = strings.TrimSpace(l); l != "" {
			stmts = append(stmts, l)
		}
	}
	names := runSetupSQL(t, stmts, map[string]string{"notekeeper_app": "", "notekeeper_owner": "", "notekeeper": ""})

	// The shell block that exports the URLs and creates a tenant.
	var exports map[string]string
	var create []string
	for _, b := range readmeBlocks(t, "sh") {
		if !strings.Contains(b, "export DATABASE_URL=") {
			continue
		}
		exports = map[string]string{}
		for _, l := range strings.Split(b, "\n") {
			if kv, ok := strings.CutPrefix(l, "export "); ok {
				k, v, _ := strings.Cut(kv, "=")
				exports[k] = v
			}
			if args, ok := strings.CutPrefix(l, "go run ./examples/notekeeper tenants create "); ok {
				create = append([]string{"tenants", "create"}, shellWords(args)...)
			}
		}
	}
	if exports["DATABASE_URL"] == "" || exports["MIGRATION_DATABASE_URL"] == "" || create == nil {
		t.Fatalf("README.md's PostgreSQL commands not found: %v %v", exports, create)
	}
	// The documented URLs, pointed at the test's server and unique names.
	pg, err := url.Parse(testenv.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"DATABASE_URL", "MIGRATION_DATABASE_URL"} {
		u, err := url.Parse(exports[k])
		if err != nil {
			t.Fatalf("%s=%s: %v", k, exports[k], err)
		}
		pw, _ := u.User.Password()
		u.User = url.UserPassword(names[u.User.Username()], pw)
		u.Host = pg.Host
		u.Path = "/" + names[strings.TrimPrefix(u.Path, "/")]
		u.RawQuery = "sslmode=disable"
		exports[k] = u.String()
	}
	exports["REDIS_URL"] = testenv.RedisURL()
	exports["REDIS_PREFIX"] = testenv.RandomName("readme-") + ":"

	bin := buildBinary(t)
	// The server's environment, also used by the admin commands.
	s := &server{bin: bin}
	for k, v := range exports {
		s.env = append(s.env, k+"="+v)
	}
	s.env = append(s.env, "HOME="+os.Getenv("HOME"))
	s.admin(t, 0, create...)
	s = startServer(t, bin, exports)

	// The README's first request: Acme writes a note.
	var note struct{ Title, Body string }
	for _, b := range readmeBlocks(t, "sh") {
		if i := strings.Index(b, "-d '"); i >= 0 && strings.Contains(b, "POST http://localhost:8000/notes") {
			body := b[i+4:]
			body = body[:strings.Index(body, "'")]
			if err := json.Unmarshal([]byte(body), &note); err != nil {
				t.Fatalf("README body %s: %v", body, err)
			}
			break
		}
	}
	if note.Title == "" {
		t.Fatal("README.md's POST /notes not found")
	}
	c := s.client()
	r := c.do(t, http.MethodPost, "/notes", acme, `{"title":`+quote(note.Title)+`,"body":`+quote(note.Body)+`}`).want(t, http.StatusCreated)
	n := r.note(t)
	if r.header.Get("Location") != "/notes/"+n.ID || n.Title != note.Title || n.Body != note.Body {
		t.Fatalf("created %+v, Location %q", n, r.header.Get("Location"))
	}
	if got := c.do(t, http.MethodGet, "/notes", acme, "").want(t, http.StatusOK).notes(t); len(got) != 1 || got[0].ID != n.ID {
		t.Fatalf("acme lists %+v", got)
	}
	c.do(t, http.MethodGet, "/notes", globex, "").problem(t, http.StatusNotFound, problem.SlugTenantNotFound)
	if out := s.admin(t, 0, "tenants", "list"); !strings.Contains(out, acme) || !strings.Contains(out, "active") {
		t.Fatalf("tenants list: %s", out)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// shellWords splits a command line's arguments, honouring double quotes.
func shellWords(s string) []string {
	var words []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			words = append(words, s[1:end+1])
			s = s[end+2:]
			continue
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		words = append(words, s[:end])
		s = s[end:]
	}
	return words
}
