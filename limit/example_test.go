package limit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/limit"
)

func ExampleLimiter_Middleware() {
	l := limit.New(limit.Config{
		Default: limit.Rate{Limit: 2, Period: time.Minute},
		Tiers:   map[string]limit.Rate{"enterprise": {}}, // unlimited
	})
	// In an application, the tenancy middleware runs first and puts the
	// tenant in the context.
	h := l.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, t := range []*tenancy.Tenant{
		{ID: "t-1", Tier: "starter"}, {ID: "t-1", Tier: "starter"}, {ID: "t-1", Tier: "starter"},
		{ID: "t-2", Tier: "starter"}, {ID: "t-3", Tier: "enterprise"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r.WithContext(tenancy.WithTenant(r.Context(), t)))
		line := fmt.Sprint(t.ID, " ", rec.Code)
		if ra := rec.Header().Get("Retry-After"); ra != "" {
			line += " Retry-After: " + ra
		}
		fmt.Println(line)
	}
	// Output:
	// t-1 200
	// t-1 200
	// t-1 429 Retry-After: 30
	// t-2 200
	// t-3 200
}
