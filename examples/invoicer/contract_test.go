package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-tenancy/tenancy/examples/invoicer/billing"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/google/uuid"
)

// The contract suite is what a client sees of Invoicer over HTTP. The
// handler tests run it in-process on the fake store (handlerTransport, no
// network) and the end-to-end tests against the built binary, on
// PostgreSQL (a schema per tenant) and on SQLite (a file per tenant). It
// expects the demo tenants freshly seeded, without data.

// Seeded tenants, as a client knows them.
const (
	acme      = "acme-corp"
	acmeAlias = "acme"
	acmeID    = "tenant-acme-001"
	globex    = "globex"
	globexID  = "tenant-globex-001"
)

// via says how a request names its tenant: the X-Tenant-ID header, the
// Host header, or both, and any other headers.
type via struct {
	tenant string // X-Tenant-ID; "" sends none
	host   string // Host; "" keeps the server's address
	header map[string]string
}

func hdr(tenant string) via { return via{tenant: tenant} }
func host(h string) via     { return via{host: h} }

// apiClient talks to one Invoicer.
type apiClient struct {
	base string
	hc   *http.Client
}

// handlerTransport serves requests with a handler, in memory, as if from
// the peer 192.0.2.10.
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	r = r.Clone(r.Context())
	r.RemoteAddr = "192.0.2.10:40000"
	ht.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

type apiResponse struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

// do sends a request; body "" sends none.
func (c *apiClient) do(t *testing.T, method, path string, v via, body string) apiResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, c.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if v.tenant != "" {
		req.Header.Set("X-Tenant-ID", v.tenant)
	}
	if v.host != "" {
		req.Host = v.host
	}
	for k, val := range v.header {
		req.Header.Set(k, val)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apiResponse{method: method, path: path, status: resp.StatusCode, header: resp.Header, body: b}
}

func (r apiResponse) want(t *testing.T, status int) apiResponse {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s %s: %d, want %d: %s", r.method, r.path, r.status, status, r.body)
	}
	return r
}

// problem checks r is a problem of the status and, when slug is not "",
// of that type; it returns the problem.
func (r apiResponse) problem(t *testing.T, status int, slug string) problem.Details {
	t.Helper()
	r.want(t, status)
	if ct := r.header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("%s %s: Content-Type %q, want %q", r.method, r.path, ct, problem.ContentType)
	}
	var d problem.Details
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("%s %s: %v: %s", r.method, r.path, err, r.body)
	}
	if slug != "" && d.Type != problem.TypeBase+slug {
		t.Fatalf("%s %s: type %q, want slug %q", r.method, r.path, d.Type, slug)
	}
	if d.Status != status {
		t.Fatalf("%s %s: status member %d", r.method, r.path, d.Status)
	}
	return d
}

func (r apiResponse) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%s %s: %v: %s", r.method, r.path, err, r.body)
	}
}

func (c *apiClient) createCustomer(t *testing.T, v via, name, email string) billing.Customer {
	t.Helper()
	r := c.do(t, "POST", "/customers", v, fmt.Sprintf(`{"name":%q,"email":%q}`, name, email)).want(t, http.StatusCreated)
	var cu billing.Customer
	r.decode(t, &cu)
	if cu.Name != name || cu.Email != email || r.header.Get("Location") != "/customers/"+cu.ID {
		t.Fatalf("created %+v, Location %q", cu, r.header.Get("Location"))
	}
	return cu
}

func (c *apiClient) customers(t *testing.T, v via) []billing.Customer {
	t.Helper()
	var cs []billing.Customer
	c.do(t, "GET", "/customers", v, "").want(t, http.StatusOK).decode(t, &cs)
	return cs
}

func invoiceBody(customerID string, items ...string) string {
	if len(items) == 0 {
		items = []string{`{"description":"Widget","quantity":1,"unit_price_cents":1000}`}
	}
	return fmt.Sprintf(`{"customer_id":%q,"due_date":"2026-06-30","line_items":[%s]}`, customerID, strings.Join(items, ","))
}

func (c *apiClient) createInvoice(t *testing.T, v via, body string) billing.Invoice {
	t.Helper()
	r := c.do(t, "POST", "/invoices", v, body).want(t, http.StatusCreated)
	var inv billing.Invoice
	r.decode(t, &inv)
	if r.header.Get("Location") != "/invoices/"+inv.ID {
		t.Fatalf("Location %q for %s", r.header.Get("Location"), inv.ID)
	}
	return inv
}

func (c *apiClient) invoice(t *testing.T, v via, id string) billing.Invoice {
	t.Helper()
	var inv billing.Invoice
	c.do(t, "GET", "/invoices/"+id, v, "").want(t, http.StatusOK).decode(t, &inv)
	return inv
}

func emails(cs []billing.Customer) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Email)
	}
	return out
}

// runContract runs the whole contract, in order: its parts share the
// tenants' data.
func runContract(t *testing.T, c *apiClient) {
	bob := contractSeedFlow(t, c)
	contractResolution(t, c)
	inv := contractInvoices(t, c, bob)
	contractCrossTenant(t, c, bob, inv)
	contractNumbering(t, c)
}

// contractSeedFlow is the seed's flow: a customer of acme-corp, which
// globex does not see. It returns the customer.
func contractSeedFlow(t *testing.T, c *apiClient) billing.Customer {
	if got := c.customers(t, hdr(globex)); len(got) != 0 {
		t.Fatalf("globex starts with customers: %+v", got)
	}
	bob := c.createCustomer(t, hdr(acme), "Bob Smith", "bob@example.com")
	if got := c.customers(t, hdr(globex)); len(got) != 0 {
		t.Fatalf("globex sees acme's customers: %+v", got)
	}
	if got := c.customers(t, hdr(acme)); len(got) != 1 || got[0].ID != bob.ID {
		t.Fatalf("acme lists %+v", got)
	}
	// One email per customer within a tenant, ignoring case; another
	// tenant may have it too.
	c.do(t, "POST", "/customers", hdr(acme), `{"name":"Bobby","email":"BOB@example.com"}`).problem(t, http.StatusConflict, "")
	c.createCustomer(t, hdr(globex), "Bob at Globex", "bob@example.com")

	for _, tc := range []struct{ body, field string }{
		{`{"name":"X","email":"not-an-email"}`, "body.email"},
		{`{"name":"X","email":"Bob <bob2@example.com>"}`, "body.email"},
		{`{"name":"","email":"x@example.com"}`, "body.name"},
		{`{"name":"   ","email":"x@example.com"}`, "body.name"},
		{`{"email":"x@example.com"}`, "body.name"},
		{`{"name":"X","email":"x@example.com","tenant_id":"globex"}`, "body.tenant_id"},
	} {
		d := c.do(t, "POST", "/customers", hdr(acme), tc.body).problem(t, http.StatusUnprocessableEntity, problem.SlugInvalidField)
		if !slices.ContainsFunc(d.Errors, func(e problem.FieldDetail) bool { return e.Location == tc.field }) {
			t.Errorf("%s: errors %+v do not name %s", tc.body, d.Errors, tc.field)
		}
	}
	c.do(t, "POST", "/customers", hdr(acme), `{"name":`).problem(t, http.StatusBadRequest, "")
	if got := c.customers(t, hdr(acme)); len(got) != 1 {
		t.Fatalf("refused creates stored customers: %+v", got)
	}
	return bob
}

// contractResolution: the tenant by subdomain and alias, the header as
// fallback, disagreement refused, spoofing ignored.
func contractResolution(t *testing.T, c *apiClient) {
	for _, v := range []via{
		host("acme.localhost"), host("acme.localhost:8000"), host("acme-corp.localhost"), host("ACME.LocalHost."),
		hdr(acme), {tenant: acme, host: "acme.localhost"}, {tenant: acme, host: "localhost:8000"}, {tenant: acme, host: "127.0.0.1:8000"},
		// A proxy header from a peer that is not a trusted proxy is the
		// client's own: ignored.
		{host: "acme.localhost", header: map[string]string{"X-Forwarded-Host": "globex.localhost"}},
		{tenant: acme, header: map[string]string{"X-Forwarded-Host": "globex.localhost", "Forwarded": "host=globex.localhost"}},
		// A host outside the base domain that is no verified custom
		// domain names nobody: the header decides.
		{tenant: acme, host: "globex.localhost.attacker.example"},
	} {
		if got := emails(c.customers(t, v)); !slices.Equal(got, []string{"bob@example.com"}) || len(got) != 1 {
			t.Fatalf("%+v: lists %v, want acme's Bob", v, got)
		}
	}
	if got := c.customers(t, host("globex.localhost")); len(got) != 1 || got[0].Name != "Bob at Globex" {
		t.Fatalf("globex.localhost lists %+v", got)
	}
	// Host and header disagree: refused, neither wins.
	for _, v := range []via{{tenant: acme, host: "globex.localhost"}, {tenant: globex, host: "acme.localhost"}, {tenant: "initech-unknown", host: "acme.localhost"}} {
		c.do(t, "GET", "/customers", v, "").problem(t, http.StatusForbidden, problem.SlugTenantConflict)
	}
	c.do(t, "GET", "/customers", host("initech-unknown.localhost"), "").problem(t, http.StatusNotFound, problem.SlugTenantNotFound)
	c.do(t, "GET", "/customers", hdr("initech-unknown"), "").problem(t, http.StatusNotFound, problem.SlugTenantNotFound)
	c.do(t, "GET", "/customers", via{host: "127.0.0.1"}, "").problem(t, http.StatusBadRequest, problem.SlugTenantMissing)
	c.do(t, "GET", "/customers", via{host: "bad_label.localhost"}, "").problem(t, http.StatusBadRequest, "")
	c.do(t, "GET", "/customers", hdr("Acme-Corp"), "").problem(t, http.StatusBadRequest, problem.SlugTenantInvalid)
	// Public paths need no tenant.
	c.do(t, "GET", "/healthz", via{}, "").want(t, http.StatusOK)
	c.do(t, "GET", "/openapi.json", via{}, "").want(t, http.StatusOK)
}

// contractInvoices: an invoice from draft to paid, every other transition
// refused, and deletion rules. It returns acme's paid invoice.
func contractInvoices(t *testing.T, c *apiClient, bob billing.Customer) billing.Invoice {
	v := host("acme.localhost")
	inv := c.createInvoice(t, v, invoiceBody(bob.ID,
		`{"description":"Anvil","quantity":2,"unit_price_cents":12500}`,
		`{"description":"Delivery","quantity":1,"unit_price_cents":4999}`))
	if inv.Number != "INV-0001" || inv.Status != billing.StatusDraft || inv.Currency != "USD" || inv.SubtotalCents != 29999 ||
		inv.TotalCents != 29999 || len(inv.LineItems) != 2 || inv.LineItems[0].AmountCents != 25000 || inv.CustomerID != bob.ID {
		t.Fatalf("created %+v", inv)
	}
	got := c.invoice(t, v, inv.ID)
	if got.Number != inv.Number || len(got.LineItems) != 2 || got.LineItems[1].Description != "Delivery" {
		t.Fatalf("GET returns %+v", got)
	}

	// Validation names the field.
	for _, tc := range []struct{ body, field string }{
		{fmt.Sprintf(`{"customer_id":%q,"currency":"usd","due_date":"2026-06-30","line_items":[{"description":"x","quantity":1,"unit_price_cents":1}]}`, bob.ID), "body.currency"},
		{fmt.Sprintf(`{"customer_id":%q,"due_date":"2026-02-30","line_items":[{"description":"x","quantity":1,"unit_price_cents":1}]}`, bob.ID), "body.due_date"},
		{fmt.Sprintf(`{"customer_id":%q,"due_date":"2026-06-30","line_items":[]}`, bob.ID), "body.line_items"},
		{invoiceBody(bob.ID, `{"description":"x","quantity":0,"unit_price_cents":1}`), "body.line_items[0].quantity"},
		{invoiceBody(bob.ID, `{"description":"x","quantity":1.5,"unit_price_cents":1}`), "body.line_items[0].quantity"},
		{invoiceBody(bob.ID, `{"description":"x","quantity":1,"unit_price_cents":-1}`), "body.line_items[0].unit_price_cents"},
		{invoiceBody(uuid.NewString()), "body.customer_id"},
		{invoiceBody("not-a-uuid"), "body.customer_id"},
	} {
		d := c.do(t, "POST", "/invoices", v, tc.body).problem(t, http.StatusUnprocessableEntity, "")
		if !slices.ContainsFunc(d.Errors, func(e problem.FieldDetail) bool { return e.Location == tc.field }) {
			t.Errorf("%s: errors %+v do not name %s", tc.body, d.Errors, tc.field)
		}
	}

	// A draft may change; the totals follow its line items.
	var patched billing.Invoice
	c.do(t, "PATCH", "/invoices/"+inv.ID, v, `{"due_date":"2026-07-31","line_items":[{"description":"Anvil","quantity":3,"unit_price_cents":12500}]}`).
		want(t, http.StatusOK).decode(t, &patched)
	if patched.DueDate != "2026-07-31" || patched.TotalCents != 37500 || len(patched.LineItems) != 1 || patched.Number != inv.Number {
		t.Fatalf("patched %+v", patched)
	}
	c.do(t, "PATCH", "/invoices/"+inv.ID, v, `{"due_date":null}`).problem(t, http.StatusUnprocessableEntity, "")

	step := func(action string, status int, want billing.Status) {
		t.Helper()
		r := c.do(t, "POST", "/invoices/"+inv.ID+"/"+action, v, "")
		if status != http.StatusOK {
			r.problem(t, status, "")
		} else {
			var got billing.Invoice
			r.want(t, http.StatusOK).decode(t, &got)
			if got.Status != want || len(got.LineItems) != 1 {
				t.Fatalf("%s: %+v", action, got)
			}
		}
		if got := c.invoice(t, v, inv.ID); got.Status != want {
			t.Fatalf("after %s (%d): status %s, want %s", action, status, got.Status, want)
		}
	}
	step("pay", http.StatusConflict, billing.StatusDraft)
	step("issue", http.StatusOK, billing.StatusIssued)
	step("issue", http.StatusConflict, billing.StatusIssued)
	c.do(t, "PATCH", "/invoices/"+inv.ID, v, `{"due_date":"2026-08-31"}`).problem(t, http.StatusConflict, "")
	step("pay", http.StatusOK, billing.StatusPaid)
	step("void", http.StatusConflict, billing.StatusPaid)
	step("issue", http.StatusConflict, billing.StatusPaid)
	if got := c.invoice(t, v, inv.ID); got.IssuedAt == nil || got.PaidAt == nil || got.VoidedAt != nil {
		t.Fatalf("timestamps of the paid invoice: %+v", got)
	}

	// A second invoice, voided from draft; void is final.
	second := c.createInvoice(t, v, invoiceBody(bob.ID))
	if second.Number != "INV-0002" {
		t.Fatalf("second invoice numbered %s", second.Number)
	}
	c.do(t, "POST", "/invoices/"+second.ID+"/void", v, "").want(t, http.StatusOK)
	c.do(t, "POST", "/invoices/"+second.ID+"/issue", v, "").problem(t, http.StatusConflict, "")
	c.do(t, "POST", "/invoices/"+second.ID+"/nonsense", v, "").problem(t, http.StatusNotFound, "")

	// Listing by status.
	for status, want := range map[string][]string{"": {"INV-0002", "INV-0001"}, "paid": {"INV-0001"}, "void": {"INV-0002"}, "draft": {}} {
		var list []billing.Invoice
		c.do(t, "GET", "/invoices?status="+status, v, "").want(t, http.StatusOK).decode(t, &list)
		got := []string{}
		for _, i := range list {
			got = append(got, i.Number)
			if len(i.LineItems) != 0 {
				t.Errorf("the listing carries line items: %+v", i)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("status=%q lists %v, want %v", status, got, want)
		}
	}
	c.do(t, "GET", "/invoices?status=overdue", v, "").problem(t, http.StatusUnprocessableEntity, "")

	// A customer with invoices stays; one without may go.
	c.do(t, "DELETE", "/customers/"+bob.ID, v, "").problem(t, http.StatusConflict, "")
	carol := c.createCustomer(t, v, "Carol", "carol@example.com")
	var renamed billing.Customer
	c.do(t, "PATCH", "/customers/"+carol.ID, v, `{"name":"Carol Danvers"}`).want(t, http.StatusOK).decode(t, &renamed)
	if renamed.Name != "Carol Danvers" || renamed.Email != carol.Email {
		t.Fatalf("renamed %+v", renamed)
	}
	c.do(t, "PATCH", "/customers/"+carol.ID, v, `{"email":"bob@example.com"}`).problem(t, http.StatusConflict, "")
	c.do(t, "PATCH", "/customers/"+carol.ID, v, `{"email":null}`).problem(t, http.StatusUnprocessableEntity, "")
	c.do(t, "DELETE", "/customers/"+carol.ID, v, "").want(t, http.StatusNoContent)
	c.do(t, "GET", "/customers/"+carol.ID, v, "").problem(t, http.StatusNotFound, "")
	return c.invoice(t, v, inv.ID)
}

// contractCrossTenant: acme's IDs, used as globex, name nothing on every
// route, exactly like IDs that exist nowhere, and change nothing.
func contractCrossTenant(t *testing.T, c *apiClient, bob billing.Customer, inv billing.Invoice) {
	g := host("globex.localhost")
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		// Unknown IDs, for comparison.
		c.do(t, "GET", "/customers/"+id, g, "").problem(t, http.StatusNotFound, "")
	}
	routes := []struct{ method, path, body string }{
		{"GET", "/customers/" + bob.ID, ""},
		{"PATCH", "/customers/" + bob.ID, `{"name":"Hijacked"}`},
		{"DELETE", "/customers/" + bob.ID, ""},
		{"GET", "/invoices/" + inv.ID, ""},
		{"PATCH", "/invoices/" + inv.ID, `{"due_date":"2030-01-01"}`},
		{"POST", "/invoices/" + inv.ID + "/issue", ""},
		{"POST", "/invoices/" + inv.ID + "/pay", ""},
		{"POST", "/invoices/" + inv.ID + "/void", ""},
	}
	for _, r := range routes {
		theirs := c.do(t, r.method, r.path, g, r.body)
		theirs.problem(t, http.StatusNotFound, "")
		// The same answer as for an ID that exists nowhere.
		nowhere := strings.NewReplacer(bob.ID, uuid.NewString(), inv.ID, uuid.NewString()).Replace(r.path)
		other := c.do(t, r.method, nowhere, g, r.body)
		if string(other.body) != string(theirs.body) || other.status != theirs.status {
			t.Errorf("%s %s: another tenant's ID answers %d %s, an unknown one %d %s", r.method, r.path, theirs.status, theirs.body, other.status, other.body)
		}
	}
	theirs := c.do(t, "POST", "/invoices", g, invoiceBody(bob.ID))
	nowhere := c.do(t, "POST", "/invoices", g, invoiceBody(uuid.NewString()))
	d := theirs.problem(t, http.StatusUnprocessableEntity, problem.SlugInvalidField)
	if len(d.Errors) != 1 || d.Errors[0].Location != "body.customer_id" || string(theirs.body) != string(nowhere.body) {
		t.Fatalf("another tenant's customer_id: %s; an unknown one: %s", theirs.body, nowhere.body)
	}
	// Nothing of acme's changed.
	a := host("acme.localhost")
	if got := c.invoice(t, a, inv.ID); got.Status != billing.StatusPaid || got.DueDate != inv.DueDate {
		t.Fatalf("acme's invoice after globex's attempts: %+v", got)
	}
	var cu billing.Customer
	c.do(t, "GET", "/customers/"+bob.ID, a, "").want(t, http.StatusOK).decode(t, &cu)
	if cu.Name != "Bob Smith" {
		t.Fatalf("acme's customer after globex's attempts: %+v", cu)
	}
	var list []billing.Invoice
	c.do(t, "GET", "/invoices", g, "").want(t, http.StatusOK).decode(t, &list)
	if len(list) != 0 {
		t.Fatalf("globex lists invoices: %+v", list)
	}
}

// contractNumbering: 20 invoices created at once get INV-0001 to INV-0020,
// each once. Globex has none before.
func contractNumbering(t *testing.T, c *apiClient) {
	g := hdr(globex)
	cu := c.createCustomer(t, g, "Hank Scorpio", "hank@globex.example")
	const n = 20
	numbers := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			r := c.do(t, "POST", "/invoices", g, invoiceBody(cu.ID))
			if r.status != http.StatusCreated {
				errs <- fmt.Sprintf("%d %s", r.status, r.body)
				return
			}
			var inv billing.Invoice
			if err := json.Unmarshal(r.body, &inv); err != nil {
				errs <- err.Error()
				return
			}
			numbers[i] = inv.Number
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("concurrent create: %s", e)
	}
	slices.Sort(numbers)
	for i, got := range numbers {
		if want := billing.FormatNumber(int64(i + 1)); got != want {
			t.Fatalf("numbers %v: position %d is %s, want %s", numbers, i, got, want)
		}
	}
}
