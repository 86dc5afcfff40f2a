package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
)

// Property: random sequences of API calls by random tenants, checked
// against an in-memory model after every call, never show one tenant
// another's data: on the fake store (the HTTP layer alone) and on
// PostgreSQL with row-level security (the HTTP layer over the real
// isolation). A failure prints the seed; PROPERTY_SEED replays one.

// model is what each tenant's notes must be: ID -> note.
type model map[string]map[string]Note

func runProperty(t *testing.T, c *apiClient, tenants []*tenancy.Tenant, steps int) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := testenvSeed(); v != 0 {
		seed = v
	}
	rnd := rand.New(rand.NewPCG(seed, seed))
	m := model{}
	for _, tn := range tenants {
		m[tn.ID] = map[string]Note{}
	}
	// anyID returns a note ID of any tenant (or none), so that calls aim
	// at other tenants' notes as often as at their own.
	anyID := func() (string, string) {
		tn := tenants[rnd.IntN(len(tenants))]
		for id := range m[tn.ID] {
			return id, tn.ID
		}
		return "00000000-0000-4000-8000-000000000000", ""
	}
	for step := range steps {
		tn := tenants[rnd.IntN(len(tenants))]
		mine := m[tn.ID]
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d, step %d, tenant %s: %s", seed, step, tn.Identifier, fmt.Sprintf(format, args...))
		}
		id, owner := anyID()
		switch op := rnd.IntN(5); {
		case op == 0 && len(mine) < 50:
			title := fmt.Sprintf("%s %d", tn.Identifier, step)
			r := c.do(t, http.MethodPost, "/notes", tn.Identifier, fmt.Sprintf(`{"title":%q,"body":"b%d"}`, title, step))
			if r.status != http.StatusCreated {
				fail("create: %d %s", r.status, r.body)
			}
			n := r.note(t)
			if n.TenantID != tn.ID || n.Title != title {
				fail("created %+v", n)
			}
			mine[n.ID] = n
		case op == 1:
			r := c.do(t, http.MethodGet, "/notes/"+id, tn.Identifier, "")
			want, ok := mine[id]
			switch {
			case ok && (r.status != http.StatusOK || r.note(t) != want):
				fail("get own note %s: %d %s, want %+v", id, r.status, r.body, want)
			case !ok && r.status != http.StatusNotFound:
				fail("get note %s of %q: %d %s, want 404", id, owner, r.status, r.body)
			}
		case op == 2:
			title := fmt.Sprintf("%s upd %d", tn.Identifier, step)
			r := c.do(t, http.MethodPatch, "/notes/"+id, tn.Identifier, fmt.Sprintf(`{"title":%q}`, title))
			want, ok := mine[id]
			if !ok {
				if r.status != http.StatusNotFound {
					fail("update note %s of %q: %d %s, want 404", id, owner, r.status, r.body)
				}
				break
			}
			n := r.note(t)
			if r.status != http.StatusOK || n.ID != id || n.TenantID != tn.ID || n.Title != title || n.Body != want.Body {
				fail("update own note: %d %s", r.status, r.body)
			}
			mine[id] = n
		case op == 3:
			r := c.do(t, http.MethodDelete, "/notes/"+id, tn.Identifier, "")
			if _, ok := mine[id]; ok != (r.status == http.StatusNoContent) || !ok && r.status != http.StatusNotFound {
				fail("delete note %s of %q: %d %s", id, owner, r.status, r.body)
			}
			delete(mine, id)
		default:
			r := c.do(t, http.MethodGet, "/notes?limit=100", tn.Identifier, "")
			var got []Note
			if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil {
				fail("list: %d %s", r.status, r.body)
			}
			ids := make([]string, 0, len(got))
			for _, n := range got {
				if want, ok := mine[n.ID]; !ok || n != want {
					fail("list shows %+v, not the tenant's (or changed)", n)
				}
				ids = append(ids, n.ID)
			}
			if unique := slices.Compact(slices.Sorted(slices.Values(ids))); len(ids) != len(mine) || len(unique) != len(ids) {
				fail("list has %d notes (%d distinct), the model %d", len(ids), len(unique), len(mine))
			}
		}
	}
}

// testenvSeed returns PROPERTY_SEED, or 0.
func testenvSeed() uint64 {
	var s uint64
	if v := os.Getenv("PROPERTY_SEED"); v != "" {
		_, _ = fmt.Sscan(v, &s)
	}
	return s
}

func TestPropertyTenantsSeeOnlyTheirNotes(t *testing.T) {
	t.Parallel()
	t.Run("Fake", func(t *testing.T) {
		t.Parallel()
		f := newHandlerFixture(t)
		runProperty(t, f.client, []*tenancy.Tenant{&seedTenants[0], &seedTenants[1]}, 1500)
	})
	t.Run("PostgresRLS", func(t *testing.T) {
		t.Parallel()
		cfg, _ := postgresConfig(t)
		b := openTestBackend(t, cfg)
		newTenant := b.provisioner(t)
		tenants := []*tenancy.Tenant{newTenant(t), newTenant(t), newTenant(t)}
		h := newHandler(handlerConfig{Notes: b.notes, Tenants: b.tenants, Logger: testLogger(t)})
		c := &apiClient{base: "http://notekeeper.test", hc: &http.Client{Transport: handlerTransport{h}}}
		runProperty(t, c, tenants, 800)
	})
}
