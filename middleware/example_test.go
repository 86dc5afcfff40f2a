package middleware_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/go-tenancy/tenancy/store/memstore"
)

func Example() {
	store := memstore.New()
	_, _ = store.Create(context.Background(), &tenancy.Tenant{ID: "t-1", Identifier: "acme-corp", Name: "Acme"})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		t, _ := tenancy.FromContext(r.Context())
		fmt.Fprintln(w, "tenant", t.Identifier)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "up") })

	handler := middleware.New(middleware.Config{
		// A subdomain of example.com, or else the X-Tenant-ID header; the two
		// must agree when both are present.
		Resolver: resolve.Chain(
			resolve.Host{BaseDomain: "example.com", Lookup: store},
			resolve.Header{Lookup: store},
		),
		PublicPaths: []string{"GET /healthz"},
	})(mux)

	for _, c := range []struct{ host, header, path string }{
		{"acme-corp.example.com", "", "/whoami"},
		{"example.com", "acme-corp", "/whoami"},
		{"example.com", "", "/healthz"},
		{"example.com", "", "/whoami"},
		{"example.com", "ACME-CORP", "/whoami"},
		{"example.com", "nobody", "/whoami"},
	} {
		r := httptest.NewRequest("GET", c.path, nil)
		r.Host = c.host
		if c.header != "" {
			r.Header.Set("X-Tenant-ID", c.header)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, r)
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != 200 {
			body = []byte(rec.Header().Get("Content-Type") + "\n")
		}
		fmt.Print(rec.Code, " ", string(body))
	}
	// Output:
	// 200 tenant acme-corp
	// 200 tenant acme-corp
	// 200 up
	// 400 application/problem+json
	// 400 application/problem+json
	// 404 application/problem+json
}
