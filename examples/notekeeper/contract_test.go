package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy/problem"
	"github.com/google/uuid"
)

// The contract suite is what a client sees of Notekeeper over HTTP. The
// handler tests run it in-process (handlerTransport, no network) and the
// end-to-end tests against the built binary, on PostgreSQL and on SQLite.

// Seeded tenants, as a client knows them.
const (
	acme     = "acme-corp"
	acmeID   = "tenant-acme-001"
	globex   = "globex"
	globexID = "tenant-globex-001"
)

// marker is put into inputs that must never come back in a response.
const marker = "zq-marker"

// apiClient talks to one Notekeeper.
type apiClient struct {
	base string
	hc   *http.Client
}

// handlerTransport serves requests with a handler, in memory.
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; tenant "" sends no X-Tenant-ID, body "" no body.
func (c *apiClient) do(t *testing.T, method, path, tenant, body string) apiResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, c.base+path, rd)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	if tenant != "" {
		req.Header.Set("X-Tenant-ID", tenant)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return apiResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails unless the response has the status.
func (r apiResponse) want(t *testing.T, status int) apiResponse {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

func (r apiResponse) note(t *testing.T) Note {
	t.Helper()
	var n Note
	if err := json.Unmarshal(r.body, &n); err != nil {
		t.Fatalf("decode note: %v; body %s", err, r.body)
	}
	return n
}

func (r apiResponse) notes(t *testing.T) []Note {
	t.Helper()
	var ns []Note
	if err := json.Unmarshal(r.body, &ns); err != nil {
		t.Fatalf("decode notes: %v; body %s", err, r.body)
	}
	return ns
}

// problem checks the response is problem details of the given status and
// type (a slug of the problem package, or "about:blank"), and returns them.
func (r apiResponse) problem(t *testing.T, status int, typ string) problem.Details {
	t.Helper()
	r.want(t, status)
	if ct := r.header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type %q, want %q", ct, problem.ContentType)
	}
	var d problem.Details
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("decode problem: %v; body %s", err, r.body)
	}
	if typ != "about:blank" {
		typ = problem.TypeBase + typ
	}
	if d.Type != typ || d.Status != status || d.Title == "" {
		t.Fatalf("problem %+v, want type %s and status %d", d, typ, status)
	}
	if bytes.Contains(bytes.ToLower(r.body), []byte(marker)) {
		t.Fatalf("response echoes the request: %s", r.body)
	}
	// Messages are readable text: "<=", not JSON's HTML-safe "\u003c=".
	if bytes.Contains(r.body, []byte(`\u003c`)) || bytes.Contains(r.body, []byte(`\u003e`)) || bytes.Contains(r.body, []byte(`\u0026`)) {
		t.Fatalf("problem body escapes text for HTML: %s", r.body)
	}
	return d
}

// createNote creates a note and checks the 201 response.
func (c *apiClient) createNote(t *testing.T, tenant, tenantID, title, body string) Note {
	t.Helper()
	payload, _ := json.Marshal(map[string]string{"title": title, "body": body})
	r := c.do(t, http.MethodPost, "/notes", tenant, string(payload)).want(t, http.StatusCreated)
	n := r.note(t)
	if _, err := uuid.Parse(n.ID); err != nil || len(n.ID) != 36 {
		t.Fatalf("id %q is not a UUID", n.ID)
	}
	if loc := r.header.Get("Location"); loc != "/notes/"+n.ID {
		t.Fatalf("Location %q, want /notes/%s", loc, n.ID)
	}
	if n.TenantID != tenantID || n.Title != strings.TrimSpace(title) || n.Body != body {
		t.Fatalf("created %+v, want tenant %s, title %q, body %q", n, tenantID, strings.TrimSpace(title), body)
	}
	if n.CreatedAt.IsZero() || !n.UpdatedAt.Equal(n.CreatedAt) {
		t.Fatalf("timestamps %v / %v: want set and equal", n.CreatedAt, n.UpdatedAt)
	}
	return n
}

// runContract runs the client-visible behaviour every Notekeeper has,
// whatever its storage. Globex must have no notes when it starts; it never
// gets any.
func runContract(t *testing.T, c *apiClient) {
	t.Run("ReadmeFlow", func(t *testing.T) {
		n := c.createNote(t, acme, acmeID, "Hello", "First note!")
		if got := bytes.TrimSpace(c.do(t, http.MethodGet, "/notes", globex, "").want(t, http.StatusOK).body); string(got) != "[]" {
			t.Fatalf("globex lists %s, want []", got)
		}
		list := c.do(t, http.MethodGet, "/notes", acme, "").want(t, http.StatusOK).notes(t)
		if len(list) == 0 || list[0].ID != n.ID {
			t.Fatalf("acme's newest note is not the new one: %+v", list)
		}
		got := c.do(t, http.MethodGet, "/notes/"+n.ID, acme, "").want(t, http.StatusOK).note(t)
		if got != n {
			t.Fatalf("GET returned %+v, want %+v", got, n)
		}
	})

	t.Run("OtherTenantsNoteIsNotFoundForEveryVerb", func(t *testing.T) {
		n := c.createNote(t, acme, acmeID, "Acme secret", "for Acme only")
		for _, req := range []struct{ method, body string }{
			{http.MethodGet, ""},
			{http.MethodPatch, `{"title":"taken over","body":"by globex"}`},
			{http.MethodDelete, ""},
		} {
			c.do(t, req.method, "/notes/"+n.ID, globex, req.body).problem(t, http.StatusNotFound, "about:blank")
		}
		got := c.do(t, http.MethodGet, "/notes/"+n.ID, acme, "").want(t, http.StatusOK).note(t)
		if got != n {
			t.Fatalf("after globex's attempts acme's note is %+v, want %+v unchanged", got, n)
		}
		if got := c.do(t, http.MethodGet, "/notes", globex, "").want(t, http.StatusOK).notes(t); len(got) != 0 {
			t.Fatalf("globex lists %+v", got)
		}
	})

	t.Run("UpdateAndDelete", func(t *testing.T) {
		n := c.createNote(t, acme, acmeID, "Draft", "body stays")
		time.Sleep(2 * time.Millisecond) // so that updated_at can move
		u := c.do(t, http.MethodPatch, "/notes/"+n.ID, acme, `{"title":"  Final  "}`).want(t, http.StatusOK).note(t)
		if u.Title != "Final" || u.Body != "body stays" || u.ID != n.ID || u.TenantID != acmeID ||
			!u.CreatedAt.Equal(n.CreatedAt) || !u.UpdatedAt.After(n.UpdatedAt) {
			t.Fatalf("patched title: %+v (was %+v)", u, n)
		}
		u2 := c.do(t, http.MethodPatch, "/notes/"+n.ID, acme, `{"body":""}`).want(t, http.StatusOK).note(t)
		if u2.Title != "Final" || u2.Body != "" {
			t.Fatalf("patched body: %+v", u2)
		}
		same := c.do(t, http.MethodPatch, "/notes/"+n.ID, acme, `{}`).want(t, http.StatusOK).note(t)
		if same != u2 {
			t.Fatalf("empty patch changed the note: %+v, was %+v", same, u2)
		}
		r := c.do(t, http.MethodDelete, "/notes/"+n.ID, acme, "").want(t, http.StatusNoContent)
		if len(r.body) != 0 {
			t.Fatalf("204 with body %q", r.body)
		}
		c.do(t, http.MethodGet, "/notes/"+n.ID, acme, "").problem(t, http.StatusNotFound, "about:blank")
		c.do(t, http.MethodDelete, "/notes/"+n.ID, acme, "").problem(t, http.StatusNotFound, "about:blank")
	})

	t.Run("FieldLimits", func(t *testing.T) {
		// Characters, not bytes: 200 two-byte characters, padded with
		// spaces that trimming removes.
		title := "  " + strings.Repeat("é", maxTitleLen) + "  "
		c.createNote(t, acme, acmeID, title, strings.Repeat("ß", maxBodyLen))
	})

	t.Run("ListPaging", func(t *testing.T) {
		for _, title := range []string{"one", "two", "three"} {
			c.createNote(t, acme, acmeID, title, "")
			time.Sleep(2 * time.Millisecond)
		}
		two := c.do(t, http.MethodGet, "/notes?limit=2", acme, "").want(t, http.StatusOK).notes(t)
		if len(two) != 2 || two[0].Title != "three" || two[1].Title != "two" {
			t.Fatalf("limit=2 returned %+v, want three, two", two)
		}
		second := c.do(t, http.MethodGet, "/notes?limit=1&offset=1", acme, "").want(t, http.StatusOK).notes(t)
		if len(second) != 1 || second[0].ID != two[1].ID {
			t.Fatalf("limit=1&offset=1 returned %+v, want %s", second, two[1].ID)
		}
		all := c.do(t, http.MethodGet, "/notes?limit=100", acme, "").want(t, http.StatusOK).notes(t)
		if !slices.IsSortedFunc(all, func(a, b Note) int { return b.CreatedAt.Compare(a.CreatedAt) }) {
			t.Fatalf("notes not newest first: %+v", all)
		}
		for _, n := range all {
			if n.TenantID != acmeID {
				t.Fatalf("acme lists a note of %s", n.TenantID)
			}
		}
	})

	t.Run("Errors", func(t *testing.T) {
		n := c.createNote(t, acme, acmeID, "target", "")
		unknown := "/notes/" + uuid.NewString()
		long := func(n int) string { return strings.Repeat("a", n) }
		cases := []struct {
			name, method, path, tenant, body string
			status                           int
			typ                              string
			fields                           []string // named by the 422's errors
		}{
			{"NoHeader", "GET", "/notes", "", "", 400, problem.SlugTenantMissing, nil},
			{"UppercaseIdentifier", "GET", "/notes", "Acme-Corp", "", 400, problem.SlugTenantInvalid, nil},
			{"MalformedIdentifier", "GET", "/notes", marker + "_x", "", 400, problem.SlugTenantInvalid, nil},
			{"PathInIdentifier", "GET", "/notes", "../etc/passwd", "", 400, problem.SlugTenantInvalid, nil},
			{"UnknownTenant", "GET", "/notes", marker + "-unknown", "", 404, problem.SlugTenantNotFound, nil},
			{"UnknownTenantOnNote", "DELETE", "/notes/" + n.ID, marker + "-unknown", "", 404, problem.SlugTenantNotFound, nil},
			{"UnparseableJSON", "POST", "/notes", acme, `{"title": "` + marker, 400, "about:blank", nil},
			{"UnparseablePatch", "PATCH", "/notes/" + n.ID, acme, `{title: ` + marker + `}`, 400, "about:blank", nil},
			{"MissingBody", "POST", "/notes", acme, "", 400, "about:blank", nil},
			{"MissingTitle", "POST", "/notes", acme, `{"body":"x"}`, 422, problem.SlugInvalidField, []string{"body.title"}},
			{"EmptyTitle", "POST", "/notes", acme, `{"title":""}`, 422, problem.SlugInvalidField, []string{"body.title"}},
			{"BlankTitle", "POST", "/notes", acme, `{"title":" \t\n "}`, 422, problem.SlugInvalidField, []string{"body.title"}},
			{"LongTitle", "POST", "/notes", acme, `{"title":"` + long(201) + `"}`, 422, problem.SlugInvalidField, []string{"body.title"}},
			{"NumberTitle", "POST", "/notes", acme, `{"title":5}`, 422, problem.SlugInvalidField, []string{"body.title"}},
			{"LongBody", "POST", "/notes", acme, `{"title":"t","body":"` + long(10001) + `"}`, 422, problem.SlugInvalidField, []string{"body.body"}},
			{"TwoBadFields", "POST", "/notes", acme, `{"title":"","body":7}`, 422, problem.SlugInvalidField, []string{"body.title", "body.body"}},
			{"UnknownField", "POST", "/notes", acme, `{"title":"t","colour":1}`, 422, problem.SlugInvalidField, []string{"body.colour"}},
			{"UnknownOddField", "POST", "/notes", acme, `{"title":"t","a<b é":1}`, 422, problem.SlugInvalidField, []string{`body["a<b \u00e9"]`}},
			{"TooLargeLimitReadable", "GET", "/notes?limit=1000", acme, "", 422, problem.SlugInvalidField, []string{"query.limit"}},
			{"NotAnObject", "POST", "/notes", acme, `["title"]`, 422, problem.SlugInvalidField, []string{"body"}},
			{"PatchNullTitle", "PATCH", "/notes/" + n.ID, acme, `{"title":null}`, 422, problem.SlugInvalidField, []string{"body.title"}},
			{"PatchBlankTitle", "PATCH", "/notes/" + n.ID, acme, `{"title":"   "}`, 422, problem.SlugInvalidField, []string{"body.title"}},
			{"PatchLongBody", "PATCH", "/notes/" + n.ID, acme, `{"body":"` + long(10001) + `"}`, 422, problem.SlugInvalidField, []string{"body.body"}},
			{"LimitZero", "GET", "/notes?limit=0", acme, "", 422, problem.SlugInvalidField, []string{"query.limit"}},
			{"LimitTooHigh", "GET", "/notes?limit=101", acme, "", 422, problem.SlugInvalidField, []string{"query.limit"}},
			{"LimitNotANumber", "GET", "/notes?limit=" + marker, acme, "", 422, problem.SlugInvalidField, []string{"query.limit"}},
			{"NegativeOffset", "GET", "/notes?offset=-1", acme, "", 422, problem.SlugInvalidField, []string{"query.offset"}},
			{"UnknownNoteGet", "GET", unknown, acme, "", 404, "about:blank", nil},
			{"UnknownNotePatch", "PATCH", unknown, acme, `{"title":"x"}`, 404, "about:blank", nil},
			{"UnknownNoteDelete", "DELETE", unknown, acme, "", 404, "about:blank", nil},
			{"MalformedNoteIDGet", "GET", "/notes/" + marker, acme, "", 404, "about:blank", nil},
			{"MalformedNoteIDPatch", "PATCH", "/notes/" + marker, acme, `{"title":"x"}`, 404, "about:blank", nil},
			{"MalformedNoteIDDelete", "DELETE", "/notes/" + marker, acme, "", 404, "about:blank", nil},
			{"QuotedNoteID", "GET", "/notes/%27%20OR%201=1%20--", acme, "", 404, "about:blank", nil},
			{"UnknownRoute", "GET", "/" + marker, acme, "", 404, "about:blank", nil},
			{"WrongMethod", "PUT", "/notes", acme, "", 405, "about:blank", nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				d := c.do(t, tc.method, tc.path, tc.tenant, tc.body).problem(t, tc.status, tc.typ)
				for _, f := range tc.fields {
					if !slices.ContainsFunc(d.Errors, func(e problem.FieldDetail) bool { return e.Location == f }) {
						t.Errorf("no error names %s: %+v", f, d.Errors)
					}
				}
				if tc.status == http.StatusUnprocessableEntity && len(d.Errors) == 0 {
					t.Errorf("422 without errors")
				}
			})
		}
		// Nothing above changed the note.
		if got := c.do(t, http.MethodGet, "/notes/"+n.ID, acme, "").want(t, http.StatusOK).note(t); got != n {
			t.Fatalf("note changed by refused requests: %+v, want %+v", got, n)
		}
	})

	t.Run("PublicPaths", func(t *testing.T) {
		c.do(t, http.MethodGet, "/healthz", "", "").want(t, http.StatusOK)
		c.do(t, http.MethodGet, "/readyz", "", "").want(t, http.StatusOK)
		spec := c.do(t, http.MethodGet, "/openapi.json", "", "").want(t, http.StatusOK)
		var doc struct {
			OpenAPI    string                    `json:"openapi"`
			Paths      map[string]map[string]any `json:"paths"`
			Components struct {
				SecuritySchemes map[string]map[string]any `json:"securitySchemes"`
			} `json:"components"`
		}
		if err := json.Unmarshal(spec.body, &doc); err != nil {
			t.Fatalf("decode /openapi.json: %v", err)
		}
		if !strings.HasPrefix(doc.OpenAPI, "3.1") || doc.Paths["/notes"]["post"] == nil || doc.Paths["/notes/{id}"]["patch"] == nil ||
			doc.Components.SecuritySchemes[tenantScheme]["name"] != "X-Tenant-ID" {
			t.Fatalf("OpenAPI document lacks the notes API or the tenant header: %s", spec.body)
		}
		docs := c.do(t, http.MethodGet, "/docs", "", "").want(t, http.StatusOK)
		if !strings.HasPrefix(docs.header.Get("Content-Type"), "text/html") {
			t.Fatalf("/docs Content-Type %q", docs.header.Get("Content-Type"))
		}
		c.do(t, http.MethodGet, "/openapi.yaml", "", "").want(t, http.StatusOK)
		metrics := c.do(t, http.MethodGet, "/metrics", "", "").want(t, http.StatusOK)
		for _, name := range []string{"tenancy_resolutions_total", "tenancy_cache_requests_total", "go_goroutines"} {
			if !bytes.Contains(metrics.body, []byte(name)) {
				t.Errorf("/metrics lacks %s", name)
			}
		}
	})
}
