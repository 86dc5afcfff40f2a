package promtenancy_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/promtenancy"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/prometheus/client_golang/prometheus"
)

// Count the middleware's resolutions in a registry of your own (serve it
// with promhttp.HandlerFor). The same Metrics goes to cache.Config and
// limit.Config.
func Example() {
	reg := prometheus.NewRegistry()
	metrics, err := promtenancy.New(promtenancy.Config{Registerer: reg})
	if err != nil {
		panic(err) // a conflicting collector is registered
	}

	store := memstore.New()
	_, _ = store.Create(context.Background(), &tenancy.Tenant{Identifier: "acme-corp", Name: "Acme", Tier: "pro"})
	h := middleware.New(middleware.Config{
		Resolver: resolve.Header{Lookup: store},
		Metrics:  metrics,
	})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, id := range []string{"acme-corp", "acme-corp", "nobody"} {
		r := httptest.NewRequest("GET", "/notes", nil)
		r.Header.Set("X-Tenant-ID", id)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}

	families, _ := reg.Gather()
	for _, mf := range families {
		if mf.GetName() != "tenancy_resolutions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := m.GetLabel()
			fmt.Printf("%s{%s=%q,%s=%q} %v\n", mf.GetName(), l[0].GetName(), l[0].GetValue(), l[1].GetName(), l[1].GetValue(), m.GetCounter().GetValue())
		}
	}
	// Output:
	// tenancy_resolutions_total{outcome="not_found",tier="none"} 1
	// tenancy_resolutions_total{outcome="ok",tier="pro"} 2
}

// With TenantLabel, resolutions and rate-limit decisions are counted per
// tenant too. List the Metrics in lifecycle.Config.Components, so that
// purging a tenant ends its series (Forget).
func ExampleConfig_tenantLabel() {
	reg := prometheus.NewRegistry()
	metrics, err := promtenancy.New(promtenancy.Config{Registerer: reg, TenantLabel: true})
	if err != nil {
		panic(err)
	}
	acme := &tenancy.Tenant{ID: "t-1", Identifier: "acme-corp", Tier: "pro"}
	metrics.Resolution(context.Background(), acme, middleware.OutcomeOK)

	families, _ := reg.Gather()
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" {
					fmt.Println(mf.GetName(), "tenant:", l.GetValue())
				}
			}
		}
	}
	// Output:
	// tenancy_resolutions_total tenant: acme-corp
}
