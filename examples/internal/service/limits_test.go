package service_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/go-tenancy/tenancy/store/memstore"
)

type echoInput struct {
	Body struct {
		Text string `json:"text"`
	}
}

// limitsHandler serves POST /echo (a body) and GET /wait (which waits for
// its context to end and answers what the app's handlers answer then).
func limitsHandler(t *testing.T, cfg service.HandlerConfig) http.Handler {
	t.Helper()
	store := memstore.New()
	if _, err := store.Create(t.Context(), &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	cfg.Resolver = resolve.Header{Lookup: store}
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.API = service.API{Title: "Limits", Register: func(api huma.API) {
		huma.Register(api, huma.Operation{OperationID: "echo", Method: http.MethodPost, Path: "/echo", Errors: service.BodyErrors()},
			func(_ context.Context, in *echoInput) (*greeting, error) {
				out := &greeting{}
				out.Body.Tenant = in.Body.Text
				return out, nil
			})
		huma.Register(api, huma.Operation{OperationID: "wait", Method: http.MethodGet, Path: "/wait", Errors: service.TenantErrors()},
			func(ctx context.Context, _ *struct{}) (*greeting, error) {
				select {
				case <-ctx.Done():
					return nil, service.Problem(problem.FromError(ctx.Err()))
				case <-time.After(10 * time.Second):
					return &greeting{}, nil
				}
			})
	}}
	return service.NewHandler(cfg)
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	h := limitsHandler(t, service.HandlerConfig{MaxBodyBytes: 100})
	small := `{"text":"hi"}`
	big := `{"text":"` + strings.Repeat("x", 200) + `"}`
	cases := []struct {
		name    string
		body    string
		chunked bool
		status  int
	}{
		{"Small", small, false, http.StatusOK},
		{"LargeWithLength", big, false, http.StatusRequestEntityTooLarge},
		{"LargeChunked", big, true, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // unknown length: no Content-Length
			}
			r := httptest.NewRequest(http.MethodPost, "/echo", body)
			if tc.chunked {
				r.ContentLength = -1
			}
			r.Header.Set("X-Tenant-ID", "acme-corp")
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("%d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status != http.StatusOK && w.Header().Get("Content-Type") != problem.ContentType {
				t.Fatalf("not a problem: %q %s", w.Header().Get("Content-Type"), w.Body)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	h := limitsHandler(t, service.HandlerConfig{RequestTimeout: 100 * time.Millisecond})
	start := time.Now()
	w := do(h, http.MethodGet, "/wait", map[string]string{"X-Tenant-ID": "acme-corp"})
	took := time.Since(start)
	if w.Code != http.StatusGatewayTimeout || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), problem.SlugTimeout) {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
	if took > 5*time.Second {
		t.Fatalf("answered after %v, with a 100ms request timeout", took)
	}
}

func TestLimitsConfig(t *testing.T) {
	t.Parallel()
	env := service.NewEnv(func(string) string { return "" })
	c := service.LoadConfig(env, service.Defaults{Name: "x"})
	if env.Err() != nil || c.RequestTimeout != service.DefaultRequestTimeout || c.StatementTimeout != service.DefaultStatementTimeout ||
		c.MaxBodyBytes != service.DefaultMaxBodyBytes || c.Server.ShutdownTimeout != service.DefaultShutdownTimeout ||
		c.Server.WriteTimeout != service.DefaultWriteTimeout || c.Pooler.String() != "none" {
		t.Fatalf("defaults: %+v %v", c, env.Err())
	}
	vars := map[string]string{"REQUEST_TIMEOUT": "250ms", "STATEMENT_TIMEOUT": "0", "SHUTDOWN_TIMEOUT": "3s",
		"MAX_BODY_BYTES": "2048", "DATABASE_POOLER": "transaction", "IDLE_TIMEOUT": "1m"}
	env = service.NewEnv(func(k string) string { return vars[k] })
	c = service.LoadConfig(env, service.Defaults{Name: "x"})
	if env.Err() != nil || c.RequestTimeout != 250*time.Millisecond || c.StatementTimeout != 0 || c.Server.ShutdownTimeout != 3*time.Second ||
		c.MaxBodyBytes != 2048 || c.Pooler.String() != "transaction" || c.Server.IdleTimeout != time.Minute {
		t.Fatalf("set: %+v %v", c, env.Err())
	}
	vars = map[string]string{"REQUEST_TIMEOUT": "-1s", "READ_TIMEOUT": "soon", "MAX_BODY_BYTES": "0", "DATABASE_POOLER": "session",
		"WRITE_TIMEOUT": "5s", "STATEMENT_TIMEOUT": "1s"}
	env = service.NewEnv(func(k string) string { return vars[k] })
	service.LoadConfig(env, service.Defaults{Name: "x"})
	err := env.Err()
	for _, want := range []string{"REQUEST_TIMEOUT must be a duration", "READ_TIMEOUT must be a duration", "MAX_BODY_BYTES must be",
		"DATABASE_POOLER must be", "WRITE_TIMEOUT must be longer than REQUEST_TIMEOUT"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
