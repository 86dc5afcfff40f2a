package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/go-tenancy/tenancy/examples/invoicer/billing"
)

func TestServes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode, scenario string
		want           bool
	}{
		{"baseline", scenarioRead, true},
		{"schema-1000", scenarioCreate, true},
		{"baseline", scenarioInvoice, false},
		{"invoicer", scenarioInvoice, true},
		{"invoicer", scenarioRead, false},
		{"invoicer", scenarioProject, false},
		{"projectr-nojwt", scenarioProject, true},
		{"projectr", scenarioList, false},
	}
	for _, tt := range tests {
		if got := serves(tt.mode, tt.scenario); got != tt.want {
			t.Errorf("serves(%q, %q) = %v, want %v", tt.mode, tt.scenario, got, tt.want)
		}
	}
	for sc, want := range map[string]string{scenarioRead: "baseline", scenarioInvoice: "invoicer-base", scenarioProject: "projectr-base"} {
		if got := baselineOf(sc); got != want {
			t.Errorf("baselineOf(%q) = %q, want %q", sc, got, want)
		}
	}
}

// fakeAppServer answers the app scenarios for the tenant answerAs names,
// given the tenant the request named (by subdomain or by token).
func fakeAppServer(t *testing.T, data *appData, answerAs func(asked int) int) *server {
	t.Helper()
	tenantOf := func(r *http.Request) int {
		for i := range data.tokens {
			if r.Host == fixture.Host(i) || r.Header.Get("Authorization") == "Bearer "+data.tokens[i] {
				return i
			}
		}
		return -1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /invoices/{id}", func(w http.ResponseWriter, r *http.Request) {
		i := answerAs(tenantOf(r))
		inv := billing.Invoice{ID: r.PathValue("id")}
		for range fixture.ItemsPerInvoice {
			inv.LineItems = append(inv.LineItems, billing.LineItem{Description: fixture.ItemPrefix(i) + "1"})
		}
		_ = json.NewEncoder(w).Encode(inv)
	})
	mux.HandleFunc("GET /projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(fixture.Project{ID: r.PathValue("id"), TenantID: fixture.ID(answerAs(tenantOf(r)))})
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return &server{name: "fake", tenants: 2, base: ts.URL}
}

// TestDriverChecksAppTenant proves that the driver reads whose invoice or
// project it was handed from the data, and counts another tenant's as a
// wrong-tenant error.
func TestDriverChecksAppTenant(t *testing.T) {
	t.Parallel()
	apps := &appData{
		invoices: [][]string{{"i0"}, {"i1"}},
		projects: [][]string{{"p0"}, {"p1"}},
		tokens:   []string{"token-0", "token-1"},
	}
	honest := func(i int) int { return i }
	swapped := func(i int) int { return 1 - i }
	tests := []struct {
		name      string
		scenario  string
		answerAs  func(int) int
		wantWrong bool
	}{
		{"honest invoice", scenarioInvoice, honest, false},
		{"another tenant's invoice", scenarioInvoice, swapped, true},
		{"honest project", scenarioProject, honest, false},
		{"another tenant's project", scenarioProject, swapped, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := fakeAppServer(t, apps, tt.answerAs)
			d := &driver{client: http.DefaultClient, data: &fixtureData{apps: apps}, clients: 1}
			var buf bytes.Buffer
			err := d.do(context.Background(), s, tt.scenario, 0, rand.New(rand.NewPCG(1, 2)), &buf, 0)
			if (err != nil) != tt.wantWrong || errors.Is(err, errWrongTenant) != tt.wantWrong {
				t.Fatalf("err = %v, want wrong tenant: %v", err, tt.wantWrong)
			}
		})
	}
}
