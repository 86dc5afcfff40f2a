package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy/problem"
)

// Fuzz targets for the request decoding of every handler, through the
// whole HTTP stack on the fake store: whatever the input, the answer is a
// documented status (never a 5xx), an error is problem+json that does not
// echo the input, and nothing reaches another tenant's note. Their seeds
// (testdata/fuzz) run in every go test; explore further with, e.g.,
//
//	go test -run '^$' -fuzz '^FuzzCreateNote$' -fuzztime 30s ./examples/notekeeper

// fuzzFixture is a handler with one note of acme and one of globex.
type fuzzFixture struct {
	f            *handlerFixture
	acme, globex Note
}

func newFuzzFixture(f *testing.F) *fuzzFixture {
	h := newHandlerFixture(f)
	fx := &fuzzFixture{f: h}
	var err error
	if fx.acme, err = h.notes.Create(f.Context(), &seedTenants[0], NewNote{Title: "acme's", Body: "a"}); err != nil {
		f.Fatal(err)
	}
	if fx.globex, err = h.notes.Create(f.Context(), &seedTenants[1], NewNote{Title: "globex's", Body: "g"}); err != nil {
		f.Fatal(err)
	}
	return fx
}

// send sends a request as acme-corp to a raw path and query, as a client
// parses it.
func (fx *fuzzFixture) send(t *testing.T, method, rawPath string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://notekeeper.test"+rawPath, bytes.NewReader(body))
	if err != nil {
		t.Skip("not a URL a client can send") // the fuzzer learns to avoid it
	}
	req.Header.Set("X-Tenant-ID", acme)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := fx.f.client.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// check is what every fuzzed answer must satisfy.
func (fx *fuzzFixture) check(t *testing.T, status int, h http.Header, body []byte, allowed ...int) {
	t.Helper()
	if !slices.Contains(allowed, status) {
		t.Fatalf("status %d, want one of %v: %s", status, allowed, body)
	}
	if status >= 400 {
		if h.Get("Content-Type") != problem.ContentType {
			t.Fatalf("error %d is not problem+json: %q %s", status, h.Get("Content-Type"), body)
		}
		// Only an unexpected property's name comes back, in its
		// location, escaped and cut short (by design: the client needs to
		// know which); nothing else of the input.
		var d problem.Details
		if err := json.Unmarshal(body, &d); err != nil {
			t.Fatalf("problem body %s: %v", body, err)
		}
		for i := range d.Errors {
			if len(d.Errors[i].Location) > 80 {
				t.Fatalf("location %q is not cut short", d.Errors[i].Location)
			}
			d.Errors[i].Location = ""
		}
		if rest, _ := json.Marshal(d); bytes.Contains(bytes.ToLower(rest), []byte(marker)) {
			t.Fatalf("the error echoes the input: %s", body)
		}
	}
	// Globex's note is untouched, whatever acme sent.
	n, err := fx.f.notes.Get(t.Context(), &seedTenants[1], fx.globex.ID)
	if err != nil || n != fx.globex {
		t.Fatalf("globex's note changed: %+v, %v", n, err)
	}
	if bytes.Contains(body, []byte("globex's")) || bytes.Contains(body, []byte(globexID)) {
		t.Fatalf("acme's answer shows globex's data: %s", body)
	}
}

// checkNote checks a 2xx body is one of acme's notes.
func checkNote(t *testing.T, body []byte) Note {
	t.Helper()
	var n Note
	if err := json.Unmarshal(body, &n); err != nil || n.TenantID != acmeID {
		t.Fatalf("not acme's note: %s (%v)", body, err)
	}
	return n
}

func FuzzCreateNote(f *testing.F) {
	for _, s := range []string{
		`{"title":"Hello","body":"First note!"}`, `{"title":"  padded  "}`, `{"title":""}`, `{"title":"` + strings.Repeat("x", 201) + `"}`,
		`{"title":"x","body":null}`, `{"title":"x","tenant_id":"` + globexID + `"}`, `{"title":"x","` + marker + `":1}`,
		`{"title":"` + marker + `\u0000"}`, `{"Title":"case"}`, `{"title":"a","title":"b"}`, `[]`, `null`, ``, `{`, `"x"`,
		`{"title":1}`, `{"title":"x","body":"` + strings.Repeat("é", 10001) + `"}`,
	} {
		f.Add([]byte(s))
	}
	fx := newFuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		status, h, b := fx.send(t, http.MethodPost, "/notes", body)
		fx.check(t, status, h, b, 201, 400, 413, 422)
		if status == 201 {
			n := checkNote(t, b)
			if n.Title != strings.TrimSpace(n.Title) || n.Title == "" {
				t.Fatalf("stored title %q is not trimmed", n.Title)
			}
			_ = fx.f.notes.Delete(t.Context(), &seedTenants[0], n.ID) // keep the store small
		}
	})
}

func FuzzUpdateNote(f *testing.F) {
	for _, s := range [][2]string{
		{"", `{"title":"new"}`}, {"", `{"body":"new"}`}, {"", `{}`}, {"", `{"title":null}`}, {"", `{"title":"` + marker + `","x":1}`},
		{"globex", `{"title":"mine now"}`}, {"upper", `{"title":"x"}`}, {"00000000-0000-0000-0000-000000000000", `{"title":"x"}`},
		{"not-a-uuid", `{"title":"x"}`}, {"%2e%2e", `{"title":"x"}`}, {"", `{"tenant_id":"` + globexID + `"}`}, {"", `[`},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	fx := newFuzzFixture(f)
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		switch id {
		case "":
			id = fx.acme.ID
		case "globex":
			id = fx.globex.ID
		case "upper":
			id = strings.ToUpper(fx.acme.ID)
		}
		status, h, b := fx.send(t, http.MethodPatch, "/notes/"+url.PathEscape(id), body)
		fx.check(t, status, h, b, 200, 400, 404, 405, 413, 422)
		if status == 200 {
			if n := checkNote(t, b); n.ID != fx.acme.ID {
				t.Fatalf("PATCH %q changed note %s", id, n.ID)
			}
		}
	})
}

func FuzzGetNote(f *testing.F) {
	for _, s := range []string{"", "globex", "upper", "x", "00000000-0000-0000-0000-000000000000", "%00", "..%2f", marker, "a/b", "%zz"} {
		f.Add(s)
	}
	fx := newFuzzFixture(f)
	f.Fuzz(func(t *testing.T, id string) {
		path := "/notes/" + id
		switch id {
		case "":
			path = "/notes/" + fx.acme.ID
		case "globex":
			path = "/notes/" + fx.globex.ID
		case "upper":
			path = "/notes/" + strings.ToUpper(fx.acme.ID)
		}
		if strings.ContainsAny(path, " \t\r\n?#") || !strings.HasPrefix(path, "/") {
			return // not a request line a client can send
		}
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			status, h, b := fx.send(t, method, path, nil)
			fx.check(t, status, h, b, 200, 204, 400, 404, 405)
			if status == 200 {
				checkNote(t, b)
			}
			if status == 204 { // restore acme's note for the next input
				if fx.acme, _ = fx.f.notes.Create(t.Context(), &seedTenants[0], NewNote{Title: "acme's", Body: "a"}); fx.acme.ID == "" {
					t.Fatal("recreate acme's note")
				}
			}
		}
	})
}

func FuzzListQuery(f *testing.F) {
	for _, s := range []string{"", "limit=1", "limit=100", "limit=101", "limit=0", "limit=-1", "offset=-1", "limit=x", "limit=1&limit=2",
		"offset=99999999999999999999", "limit=1e2", marker + "=1", "limit=%00", "tenant=globex"} {
		f.Add(s)
	}
	fx := newFuzzFixture(f)
	f.Fuzz(func(t *testing.T, query string) {
		if strings.ContainsAny(query, " \t\r\n#") {
			return // not a request line a client can send
		}
		status, h, b := fx.send(t, http.MethodGet, "/notes?"+query, nil)
		fx.check(t, status, h, b, 200, 400, 422)
		if status == 200 {
			var ns []Note
			if err := json.Unmarshal(b, &ns); err != nil {
				t.Fatalf("list body %s: %v", b, err)
			}
			for _, n := range ns {
				if n.TenantID != acmeID {
					t.Fatalf("acme lists %+v", n)
				}
			}
		}
	})
}
