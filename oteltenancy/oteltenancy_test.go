package oteltenancy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/oteltenancy"
	"github.com/go-tenancy/tenancy/resolve"
	"github.com/go-tenancy/tenancy/store/memstore"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

var acme = &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp", Name: "Acme", Tier: "enterprise"}

// setup returns a Tracer recording into an in-memory exporter.
func setup(t *testing.T, cfg oteltenancy.Config) (*oteltenancy.Tracer, *tracetest.InMemoryExporter, *sdktrace.TracerProvider) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg.TracerProvider = tp
	return oteltenancy.New(cfg), exp, tp
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestTraceStatement(t *testing.T) {
	t.Parallel()
	tr, exp, _ := setup(t, oteltenancy.Config{Attributes: []attribute.KeyValue{attribute.String("db.namespace", "notes")}})
	_, done := tr.TraceStatement(context.Background(), acme, "  insert INTO notes (title) VALUES ($1)")
	done(nil)
	_, done = tr.TraceStatement(context.Background(), &tenancy.Tenant{ID: "t-g", Identifier: "globex"}, "WITH x AS (SELECT 1) SELECT * FROM x")
	done(errors.New("broken pipe"))

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	ins, with := spans[0], spans[1]
	a := attrs(ins)
	if ins.Name != "INSERT" || ins.SpanKind != trace.SpanKindClient || ins.Status.Code == codes.Error {
		t.Errorf("insert span %q kind %v status %v", ins.Name, ins.SpanKind, ins.Status)
	}
	for k, want := range map[attribute.Key]string{
		"db.system.name": "postgresql", "db.operation.name": "INSERT", "db.query.text": "  insert INTO notes (title) VALUES ($1)",
		"db.namespace": "notes", oteltenancy.TenantIDKey: "t-acme", oteltenancy.TenantIdentifierKey: "acme-corp", oteltenancy.TenantTierKey: "enterprise",
	} {
		if a[k].AsString() != want {
			t.Errorf("%s = %q, want %q", k, a[k].AsString(), want)
		}
	}
	b := attrs(with)
	if with.Name != "postgresql" || with.Status.Code != codes.Error || b["error.type"].AsString() != "*errors.errorString" {
		t.Errorf("failed WITH span %q status %v attrs %v", with.Name, with.Status, b)
	}
	if _, ok := b["db.operation.name"]; ok {
		t.Error("a WITH statement names an operation")
	}
	if _, ok := b[oteltenancy.TenantTierKey]; ok {
		t.Error("a tenant without a tier has a tier attribute")
	}
}

func TestOmitQueryText(t *testing.T) {
	t.Parallel()
	tr, exp, _ := setup(t, oteltenancy.Config{OmitQueryText: true})
	_, done := tr.TraceStatement(context.Background(), acme, "SELECT 'secret'")
	done(nil)
	if _, ok := attrs(exp.GetSpans()[0])["db.query.text"]; ok {
		t.Fatal("db.query.text recorded with OmitQueryText")
	}
}

// TestProviderStatements: a provider with the Tracer traces each tenant
// statement, child of the request's span, with the SQLSTATE of a failure.
func TestProviderStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t, testenv.NewDatabase(t))
	tr, exp, tp := setup(t, oteltenancy.Config{Attributes: oteltenancy.ServerAttributes(&pool.Config().ConnConfig.Config)})
	p, err := postgres.NewRLS(ctx, pool, postgres.Config{Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tp.Tracer("test").Start(ctx, "request")
	var n int
	if err := p.QueryRow(ctx, acme, "SELECT 41 + 1").Scan(&n); err != nil || n != 42 {
		t.Fatalf("%d, %v", n, err)
	}
	if _, err := p.Exec(ctx, acme, "SELECT no_such_column"); err == nil {
		t.Fatal("a bad statement succeeded")
	}
	parent.End()
	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 2 statements and the parent", len(spans))
	}
	ok, bad := spans[0], spans[1]
	for _, s := range []tracetest.SpanStub{ok, bad} {
		a := attrs(s)
		if s.Parent.SpanID() != parent.SpanContext().SpanID() || a[oteltenancy.TenantIdentifierKey].AsString() != "acme-corp" ||
			a["db.namespace"].AsString() != pool.Config().ConnConfig.Database || a["server.address"].AsString() == "" {
			t.Errorf("span %q: parent %v, attrs %v", s.Name, s.Parent.SpanID(), a)
		}
	}
	if ok.Name != "SELECT" || ok.Status.Code == codes.Error {
		t.Errorf("ok span %q %v", ok.Name, ok.Status)
	}
	if a := attrs(bad); bad.Status.Code != codes.Error || a["db.response.status_code"].AsString() != "42703" || a["error.type"].AsString() != "42703" {
		t.Errorf("failed span %v %v", bad.Status, a)
	}
}

// TestObserveRequest: the request's span, started by otelhttp, is named for
// its route and carries the tenant, refused tenants too.
func TestObserveRequest(t *testing.T) {
	t.Parallel()
	tr, exp, tp := setup(t, oteltenancy.Config{})
	store := memstore.New()
	for _, tn := range []tenancy.Tenant{*acme, {ID: "t-s", Identifier: "suspended-co", Name: "Suspended", Status: tenancy.StatusSuspended}} {
		if _, err := store.Create(context.Background(), &tn); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes/{id}", func(http.ResponseWriter, *http.Request) {})
	var h http.Handler = middleware.Route(mux)
	h = middleware.New(middleware.Config{Resolver: resolve.Header{Lookup: store}})(h)
	h = middleware.Observe(middleware.ObserveConfig{Done: tr.ObserveRequest})(h)
	h = otelhttp.NewHandler(h, "http", otelhttp.WithTracerProvider(tp))

	for _, tenant := range []string{"acme-corp", "suspended-co"} {
		r := httptest.NewRequest(http.MethodGet, "/notes/7", nil)
		r.Header.Set("X-Tenant-ID", tenant)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	a := attrs(spans[0])
	if spans[0].Name != "GET /notes/{id}" || a["http.route"].AsString() != "/notes/{id}" || a[oteltenancy.TenantTierKey].AsString() != "enterprise" ||
		a[oteltenancy.TenantIdentifierKey].AsString() != "acme-corp" || spans[0].SpanKind != trace.SpanKindServer {
		t.Errorf("span %q attrs %v", spans[0].Name, a)
	}
	if _, ok := a[oteltenancy.OutcomeKey]; ok {
		t.Error("an ok request has an outcome")
	}
	b := attrs(spans[1])
	if b[oteltenancy.TenantIdentifierKey].AsString() != "suspended-co" || b[oteltenancy.OutcomeKey].AsString() != middleware.OutcomeSuspended ||
		b["http.response.status_code"].AsInt64() != 403 {
		t.Errorf("refused span %q attrs %v", spans[1].Name, b)
	}
}
