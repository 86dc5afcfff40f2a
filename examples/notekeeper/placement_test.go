package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestPlacementOverTwoServers: with DATABASE_URLS naming a second server,
// a tenant placed there is served from it and its rows are on it alone, a
// tenant without a placement stays on the default server, a purge removes
// the rows from the tenant's server, the doctor inspects both servers, and
// a placement naming no server is refused: at creation, and, for an
// instance that does not know the tenant's server, with a 500 problem that
// names nothing of it.
func TestPlacementOverTwoServers(t *testing.T) {
	t.Parallel()
	cfg, superDSN := postgresConfig(t)
	second := testenv.SecondDatabaseURL(t)
	superDSN2 := testenv.NewDatabaseOn(t, second)
	testenv.EnsureRoleOn(t, second, testenv.AppRole)
	cfg.SeedDemo = false
	cfg.DatabaseURLs = map[string]string{"eu": testenv.WithUser(superDSN2, testenv.AppRole)}
	cfg.MigrationDatabaseURLs = map[string]string{"eu": superDSN2}
	b := openTestBackend(t, cfg)
	ctx := t.Context()

	home, err := b.lifecycle.Provision(ctx, &tenancy.Tenant{ID: "id-home", Identifier: "home-co", Name: "Home"})
	if err != nil {
		t.Fatalf("provision on the default server: %v", err)
	}
	eu, err := b.lifecycle.Provision(ctx, &tenancy.Tenant{ID: "id-eu", Identifier: "eu-co", Name: "EU", Placement: "eu"})
	if err != nil {
		t.Fatalf("provision on server eu: %v", err)
	}
	c := &apiClient{base: "http://notekeeper.test", hc: &http.Client{Transport: handlerTransport{
		newHandler(handlerConfig{Notes: b.notes, Tenants: b.tenants, Logger: testLogger(t)}),
	}}}
	homeNote := c.createNote(t, home.Identifier, home.ID, "home note", "on the default server")
	euNote := c.createNote(t, eu.Identifier, eu.ID, "eu note", "on server eu")
	if list := c.do(t, http.MethodGet, "/notes", eu.Identifier, "").want(t, http.StatusOK).notes(t); len(list) != 1 || list[0].ID != euNote.ID {
		t.Fatalf("eu-co lists %+v, want its note alone", list)
	}
	c.do(t, http.MethodGet, "/notes/"+homeNote.ID, eu.Identifier, "").want(t, http.StatusNotFound)
	c.do(t, http.MethodGet, "/notes/"+euNote.ID, home.Identifier, "").want(t, http.StatusNotFound)

	// Each server holds its own tenant's rows, as a superuser sees them.
	db1, db2 := testenv.Pool(t, superDSN), testenv.Pool(t, superDSN2)
	wantRows(t, db1, "default", map[string]int{home.ID: 1})
	wantRows(t, db2, "eu", map[string]int{eu.ID: 1})
	// eu-co's requests came over the request role's pool on server eu,
	// not the migration role's: a connection as the request role last ran
	// one of them.
	var served bool
	if err := db2.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database()
  AND usename = $1 AND query LIKE '%notes%')`, testenv.AppRole).Scan(&served); err != nil || !served {
		t.Fatalf("server eu: no connection as %s ran a request (%v)", testenv.AppRole, err)
	}

	rep, err := b.doctor(ctx)
	if err != nil {
		t.Fatalf("doctor: %v", err)
	}
	var defaultSeen, euSeen bool
	for _, info := range rep.Info {
		defaultSeen = defaultSeen || strings.HasPrefix(info, "default: ")
		euSeen = euSeen || strings.HasPrefix(info, "eu: ")
	}
	if !defaultSeen || !euSeen || len(rep.Findings) != 0 {
		t.Fatalf("doctor report %+v: want both servers inspected, no finding", rep)
	}

	t.Run("UnknownPlacementRefusedAtCreation", func(t *testing.T) {
		_, err := b.lifecycle.Provision(ctx, &tenancy.Tenant{ID: "id-mars", Identifier: "mars-co", Name: "Mars", Placement: "mars"})
		if !errors.Is(err, isolation.ErrUnknownPlacement) {
			t.Fatalf("provision on server mars: %v, want ErrUnknownPlacement", err)
		}
		wantRows(t, db1, "default", map[string]int{home.ID: 1})
	})

	t.Run("InstanceWithoutTheServer", func(t *testing.T) {
		// Same default server and tenant store, no DATABASE_URLS: eu-co's
		// placement names no server this instance knows.
		one := cfg
		one.DatabaseURLs, one.MigrationDatabaseURLs = nil, nil
		b1, err := openBackend(ctx, one, backendOptions{Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("open backend: %v", err)
		}
		t.Cleanup(b1.close)
		c1 := &apiClient{base: "http://notekeeper.test", hc: &http.Client{Transport: handlerTransport{
			newHandler(handlerConfig{Notes: b1.notes, Tenants: b1.tenants, Logger: testLogger(t)}),
		}}}
		r := c1.do(t, http.MethodGet, "/notes", eu.Identifier, "")
		r.problem(t, http.StatusInternalServerError, problem.SlugInternal)
		for _, leak := range []string{"eu", "placement", "postgres", "5433"} {
			if strings.Contains(strings.ToLower(string(r.body)), leak) {
				t.Fatalf("problem names %q: %s", leak, r.body)
			}
		}
		r = c1.do(t, http.MethodPost, "/notes", eu.Identifier, `{"title":"lost","body":"x"}`)
		r.problem(t, http.StatusInternalServerError, problem.SlugInternal)
		wantRows(t, db1, "default", map[string]int{home.ID: 1})
		c1.do(t, http.MethodGet, "/notes/"+homeNote.ID, home.Identifier, "").want(t, http.StatusOK)
	})

	t.Run("PurgeOnItsServer", func(t *testing.T) {
		if _, err := b.lifecycle.Delete(ctx, eu.ID); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if err := b.lifecycle.Purge(ctx, eu.ID); err != nil {
			t.Fatalf("purge: %v", err)
		}
		wantRows(t, db2, "eu", map[string]int{})
		wantRows(t, db1, "default", map[string]int{home.ID: 1})
		c.do(t, http.MethodGet, "/notes/"+homeNote.ID, home.Identifier, "").want(t, http.StatusOK)
	})
}

// wantRows checks the notes on a server, counted per tenant as a superuser
// (who bypasses row-level security) sees them.
func wantRows(t *testing.T, db *pgxpool.Pool, server string, want map[string]int) {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT tenant_id, count(*) FROM notes GROUP BY tenant_id")
	if err != nil {
		t.Fatalf("server %s: count notes: %v", server, err)
	}
	got := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatalf("server %s: %v", server, err)
		}
		got[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("server %s: %v", server, err)
	}
	if len(got) != len(want) {
		t.Fatalf("server %s holds notes %v, want %v", server, got, want)
	}
	for id, n := range want {
		if got[id] != n {
			t.Fatalf("server %s holds notes %v, want %v", server, got, want)
		}
	}
}
