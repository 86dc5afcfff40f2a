package problem_test

import (
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/problem"
)

// Any error of the toolkit becomes its problem details, by what it wraps.
func ExampleWriteError() {
	rec := httptest.NewRecorder()
	problem.WriteError(rec, fmt.Errorf("resolve: header: %w", tenancy.ErrTenantNotFound))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body.String())

	rec = httptest.NewRecorder()
	problem.WriteError(rec, &tenancy.RetryAfterError{Err: tenancy.ErrRateLimited, After: 30 * time.Second})
	fmt.Println(rec.Code, rec.Header().Get("Retry-After"))
	// Output:
	// 404 application/problem+json
	// {"type":"https://github.com/go-tenancy/tenancy/blob/main/docs/problems.md#tenant-not-found","title":"Tenant not found","status":404,"detail":"No tenant matches the request."}
	// 429 30
}
