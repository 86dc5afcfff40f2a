package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestPlacementOverTwoServers: with DATABASE_URLS naming a second server,
// a tenant placed there gets its schema on that server alone and is served
// from it, a tenant without a placement stays on the default server, a
// purge drops the schema from the tenant's server, the doctor inspects both
// servers, and a placement naming no server is refused: at creation, and,
// for an instance that does not know the tenant's server, with a 500
// problem that names nothing of it.
func TestPlacementOverTwoServers(t *testing.T) {
	t.Parallel()
	superDSN := testenv.NewDatabase(t)
	testenv.EnsureRole(t, testenv.AppRole)
	second := testenv.SecondDatabaseURL(t)
	superDSN2 := testenv.NewDatabaseOn(t, second)
	testenv.EnsureRoleOn(t, second, testenv.AppRole)
	cfg := Config{Config: service.Config{
		DatabaseURL:           testenv.WithUser(superDSN, testenv.AppRole),
		MigrationDatabaseURL:  superDSN,
		DatabaseURLs:          map[string]string{"eu": testenv.WithUser(superDSN2, testenv.AppRole)},
		MigrationDatabaseURLs: map[string]string{"eu": superDSN2},
		TenantStore:           service.StoreDB,
	}, BaseDomain: "localhost", HeaderFallback: true}
	ctx := t.Context()
	logger := slog.New(tenancy.NewLogHandler(slog.NewTextHandler(t.Output(), nil)))
	open := func(t *testing.T, cfg Config) (*backend, *apiClient) {
		t.Helper()
		b, err := openBackend(ctx, cfg, backendOptions{Logger: logger})
		if err != nil {
			t.Fatalf("open backend: %v", err)
		}
		t.Cleanup(b.close)
		h := newHandler(handlerConfig{Billing: b.billing, Tenants: b.tenants, BaseDomain: "localhost", HeaderFallback: true, Logger: logger})
		return b, &apiClient{base: "http://127.0.0.1:8000", hc: &http.Client{Transport: handlerTransport{h}}}
	}
	b, c := open(t, cfg)
	if err := service.MigrateAll(ctx, b.migrator, logger); err != nil {
		t.Fatalf("migrate: %v", err)
	}

	home, err := b.lifecycle.Provision(ctx, &tenancy.Tenant{ID: "id-home", Identifier: "home-co", Name: "Home"})
	if err != nil {
		t.Fatalf("provision on the default server: %v", err)
	}
	eu, err := b.lifecycle.Provision(ctx, &tenancy.Tenant{ID: "id-eu", Identifier: "eu-co", Name: "EU", Placement: "eu"})
	if err != nil {
		t.Fatalf("provision on server eu: %v", err)
	}
	homeCustomer := c.createCustomer(t, hdr(home.Identifier), "Home Buyer", "buyer@home.example")
	euCustomer := c.createCustomer(t, hdr(eu.Identifier), "EU Buyer", "buyer@eu.example")
	if list := c.customers(t, hdr(eu.Identifier)); len(list) != 1 || list[0].ID != euCustomer.ID {
		t.Fatalf("eu-co lists %+v, want its customer alone", list)
	}
	c.do(t, http.MethodGet, "/customers/"+homeCustomer.ID, hdr(eu.Identifier), "").want(t, http.StatusNotFound)
	c.do(t, http.MethodGet, "/customers/"+euCustomer.ID, hdr(home.Identifier), "").want(t, http.StatusNotFound)

	// Each server holds its own tenant's schema, as a superuser sees them.
	db1, db2 := testenv.Pool(t, superDSN), testenv.Pool(t, superDSN2)
	wantCustomers(t, db1, "default", map[string]int{"tenant_home_co": 1})
	wantCustomers(t, db2, "eu", map[string]int{"tenant_eu_co": 1})
	// eu-co's requests came over the request role's pool on server eu,
	// not the migration role's: a connection as the request role last ran
	// one of them.
	var served bool
	if err := db2.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database()
  AND usename = $1 AND query LIKE '%customers%')`, testenv.AppRole).Scan(&served); err != nil || !served {
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
		wantCustomers(t, db1, "default", map[string]int{"tenant_home_co": 1})
	})

	t.Run("InstanceWithoutTheServer", func(t *testing.T) {
		// Same default server and tenant store, no DATABASE_URLS: eu-co's
		// placement names no server this instance knows.
		one := cfg
		one.DatabaseURLs, one.MigrationDatabaseURLs = nil, nil
		_, c1 := open(t, one)
		for _, r := range []apiResponse{
			c1.do(t, http.MethodGet, "/customers", hdr(eu.Identifier), ""),
			c1.do(t, http.MethodPost, "/customers", hdr(eu.Identifier), `{"name":"Lost","email":"lost@eu.example"}`),
		} {
			r.problem(t, http.StatusInternalServerError, problem.SlugInternal)
			for _, leak := range []string{"eu", "placement", "postgres", "5433"} {
				if strings.Contains(strings.ToLower(string(r.body)), leak) {
					t.Fatalf("problem names %q: %s", leak, r.body)
				}
			}
		}
		wantCustomers(t, db1, "default", map[string]int{"tenant_home_co": 1})
		c1.do(t, http.MethodGet, "/customers/"+homeCustomer.ID, hdr(home.Identifier), "").want(t, http.StatusOK)
	})

	t.Run("PurgeOnItsServer", func(t *testing.T) {
		if _, err := b.lifecycle.Delete(ctx, eu.ID); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if err := b.lifecycle.Purge(ctx, eu.ID); err != nil {
			t.Fatalf("purge: %v", err)
		}
		wantCustomers(t, db2, "eu", map[string]int{})
		wantCustomers(t, db1, "default", map[string]int{"tenant_home_co": 1})
		c.do(t, http.MethodGet, "/customers/"+homeCustomer.ID, hdr(home.Identifier), "").want(t, http.StatusOK)
	})
}

// wantCustomers checks the tenant schemas on a server and the customers
// each holds, as a superuser sees them.
func wantCustomers(t *testing.T, db *pgxpool.Pool, server string, want map[string]int) {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Query(ctx, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1")
	if err != nil {
		t.Fatalf("server %s: list schemas: %v", server, err)
	}
	var schemas []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("server %s: %v", server, err)
		}
		schemas = append(schemas, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("server %s: %v", server, err)
	}
	if len(schemas) != len(want) {
		t.Fatalf("server %s holds tenant schemas %v, want %v", server, schemas, want)
	}
	for _, s := range schemas {
		n, ok := want[s]
		if !ok {
			t.Fatalf("server %s holds tenant schemas %v, want %v", server, schemas, want)
		}
		var got int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM "+s+".customers").Scan(&got); err != nil {
			t.Fatalf("server %s: count %s.customers: %v", server, s, err)
		}
		if got != n {
			t.Fatalf("server %s: %s holds %d customers, want %d", server, s, got, n)
		}
	}
}
