package service_test

import (
	"context"
	"testing"

	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/oteltenancy"
	"github.com/go-tenancy/tenancy/resolve"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestTracingConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     map[string]string
		want    bool
		wantErr bool
	}{
		{"OffByDefault", nil, false, false},
		{"Endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true, false},
		{"TracesEndpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true, false},
		{"ExporterOTLP", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, false},
		{"ExporterNone", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false, false},
		{"SDKDisabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false, false},
		{"ExporterUnknown", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := service.NewEnv(func(k string) string { return tc.env[k] })
			c := service.LoadConfig(env, service.Defaults{Name: "x"})
			if c.Tracing != tc.want || (env.Err() != nil) != tc.wantErr {
				t.Fatalf("Tracing %v, error %v", c.Tracing, env.Err())
			}
		})
	}
	tp, err := service.NewTracerProvider(context.Background(), service.Config{})
	if tp != nil || err != nil {
		t.Fatalf("a provider with tracing off: %v %v", tp, err)
	}
}

// TestHandlerTracing: with a TracerProvider every request has a server span
// named for its route, with its tenant.
func TestHandlerTracing(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h, _ := setup(t, func(l resolve.Lookup) resolve.Resolver { return resolve.Header{Lookup: l} }, func(c *service.HandlerConfig) {
		c.TracerProvider = tp
	})
	if w := do(h, "GET", "/hello", map[string]string{"X-Tenant-ID": "acme-corp"}); w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	a := map[string]string{}
	for _, kv := range s.Attributes {
		a[string(kv.Key)] = kv.Value.String()
	}
	if s.Name != "GET /hello" || a["http.route"] != "/hello" || a[string(oteltenancy.TenantIdentifierKey)] != "acme-corp" ||
		a[string(oteltenancy.TenantIDKey)] != "t-acme" || a["http.response.status_code"] != "200" {
		t.Fatalf("span %q %v", s.Name, a)
	}
}
