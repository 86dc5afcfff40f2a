package problem_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/jackc/pgx/v5/pgconn"
)

// safeToRetry is what pgx returns for a statement that never reached the
// server (a closed connection).
type safeToRetry struct{}

func (safeToRetry) Error() string     { return "conn closed" }
func (safeToRetry) SafeToRetry() bool { return true }

func TestFromError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err        error
		status     int
		slug       string
		retryAfter string
		auth       bool
	}{
		{tenancy.ErrNoTenant, 400, problem.SlugTenantMissing, "", false},
		{fmt.Errorf("header: %w", tenancy.ErrInvalidIdentifier), 400, problem.SlugTenantInvalid, "", false},
		{tenancy.ErrInvalidID, 400, problem.SlugTenantInvalid, "", false},
		{tenancy.ErrTenantNotFound, 404, problem.SlugTenantNotFound, "", false},
		{tenancy.ErrTenantSuspended, 403, problem.SlugTenantSuspended, "", false},
		{tenancy.ErrTenantDeleted, 403, problem.SlugTenantDeleted, "", false},
		{tenancy.ErrTenantNotReady, 503, problem.SlugTenantNotReady, "30", false},
		{tenancy.ErrTenantMoving, 503, problem.SlugTenantMoving, "1", false},
		{&isolation.FrozenError{TenantID: "t-1", After: 2 * time.Second}, 503, problem.SlugTenantMoving, "2", false},
		{&tenancy.RetryAfterError{Err: tenancy.ErrTenantNotReady, After: 1500 * time.Millisecond}, 503, problem.SlugTenantNotReady, "2", false},
		{tenancy.ErrTenantConflict, 403, problem.SlugTenantConflict, "", false},
		{tenancy.ErrUnauthenticated, 401, problem.SlugUnauthenticated, "", true},
		{&tenancy.RetryAfterError{Err: tenancy.ErrRateLimited, After: 100 * time.Millisecond}, 429, problem.SlugRateLimited, "1", false},
		{tenancy.ErrQuotaExceeded, 403, problem.SlugQuotaExceeded, "", false},
		{fmt.Errorf("verify: %w", tenancy.ErrDomainNotFound), 404, problem.SlugDomainNotFound, "", false},
		{fmt.Errorf("verify: %w", tenancy.ErrDomainNotVerified), 409, problem.SlugDomainUnverified, "", false},
		{&tenancy.DuplicateError{Field: "identifier", Value: "acme"}, 409, problem.SlugDuplicate, "", false},
		{&tenancy.FieldError{Field: "name", Reason: "too long"}, 422, problem.SlugInvalidField, "", false},
		{errors.New("connection refused to 10.0.0.5"), 500, problem.SlugInternal, "", false},
		// Connection-level failures: 503; timeouts: 504; both retryable.
		{fmt.Errorf("list notes: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}), 503, problem.SlugUnavailable, "2", false},
		{&pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, 503, problem.SlugUnavailable, "2", false},
		{&pgconn.PgError{Code: "08P01", Message: "server conn crashed?"}, 503, problem.SlugUnavailable, "2", false},
		{&pgconn.PgError{Code: "53300", Message: "too many clients"}, 503, problem.SlugUnavailable, "2", false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, 503, problem.SlugUnavailable, "2", false},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), 503, problem.SlugUnavailable, "2", false},
		{fmt.Errorf("query: %w", safeToRetry{}), 503, problem.SlugUnavailable, "2", false},
		{fmt.Errorf("list notes: %w", context.DeadlineExceeded), 504, problem.SlugTimeout, "2", false},
		{&pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"}, 504, problem.SlugTimeout, "2", false},
		// Errors of the statement itself stay 500, whatever their wording.
		{&pgconn.PgError{Code: "23505", Message: "duplicate key; connection refused"}, 500, problem.SlugInternal, "", false},
		{&pgconn.PgError{Code: "42P01", Message: "relation does not exist"}, 500, problem.SlugInternal, "", false},
		{context.Canceled, 500, problem.SlugInternal, "", false},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		problem.WriteError(rec, tt.err)
		if rec.Code != tt.status {
			t.Errorf("%v: status %d, want %d", tt.err, rec.Code, tt.status)
		}
		if ct := rec.Header().Get("Content-Type"); ct != problem.ContentType {
			t.Errorf("%v: content type %q", tt.err, ct)
		}
		if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
			t.Errorf("%v: Retry-After %q, want %q", tt.err, got, tt.retryAfter)
		}
		if got := rec.Header().Get("WWW-Authenticate"); (got == "Bearer") != tt.auth {
			t.Errorf("%v: WWW-Authenticate %q", tt.err, got)
		}
		var body problem.Details
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%v: body %q: %v", tt.err, rec.Body, err)
		}
		if body.Type != problem.TypeBase+tt.slug || body.Status != tt.status || body.Title == "" {
			t.Errorf("%v: body %+v", tt.err, body)
		}
		if strings.Contains(rec.Body.String(), "10.0.0.5") {
			t.Errorf("internal error detail leaked: %s", rec.Body)
		}
	}
}

func TestFieldErrorsNamed(t *testing.T) {
	t.Parallel()
	d := problem.FromError(&tenancy.DuplicateError{Field: "domain", Value: "acme.example.com"})
	if len(d.Errors) != 1 || d.Errors[0].Location != "body.domain" {
		t.Fatalf("errors %+v", d.Errors)
	}
	rec := httptest.NewRecorder()
	problem.Write(rec, problem.New("custom", http.StatusTeapot, "Teapot"))
	if rec.Code != http.StatusTeapot || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("write: %d %v", rec.Code, rec.Header())
	}
}

func TestQuotaExceeded(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("create project: %w", &tenancy.QuotaError{Resource: "projects", Limit: 3, Usage: 3, Tier: "starter"})
	rec := httptest.NewRecorder()
	problem.WriteError(rec, err)
	if rec.Code != http.StatusForbidden || rec.Header().Get("Content-Type") != problem.ContentType {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": problem.TypeBase + problem.SlugQuotaExceeded, "resource": "projects", "limit": 3.0, "usage": 3.0, "tier": "starter", "status": 403.0}
	for k, v := range want {
		if body[k] != v {
			t.Fatalf("%s = %v, want %v in %s", k, body[k], v, rec.Body)
		}
	}
	// The bare sentinel has no quota members.
	d := problem.FromError(tenancy.ErrQuotaExceeded)
	if d.Status != http.StatusForbidden || d.Quota != nil {
		t.Fatalf("bare ErrQuotaExceeded: %+v", d)
	}
}

func TestWriteKeepsTextReadable(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	problem.Write(rec, problem.Details{Type: "about:blank", Title: "Invalid", Status: 422,
		Errors: []problem.FieldDetail{{Message: "expected number <= 100 & >= 1", Location: "query.limit"}}})
	body := rec.Body.String()
	if !strings.Contains(body, `"expected number <= 100 & >= 1"`) || strings.Contains(body, `\u003c`) {
		t.Errorf("body %s", body)
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
}
