package oteltenancy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans this package starts.
const ScopeName = "github.com/go-tenancy/tenancy/oteltenancy"

// Attribute keys of the tenant on spans.
const (
	TenantIDKey         = attribute.Key("tenancy.tenant.id")
	TenantIdentifierKey = attribute.Key("tenancy.tenant.identifier")
	TenantTierKey       = attribute.Key("tenancy.tenant.tier")
	OutcomeKey          = attribute.Key("tenancy.outcome")
)

// TenantAttributes returns the attributes that name t on a span: its ID,
// identifier and, when set, tier. Nil for a nil tenant.
func TenantAttributes(t *tenancy.Tenant) []attribute.KeyValue {
	if t == nil {
		return nil
	}
	attrs := []attribute.KeyValue{TenantIDKey.String(t.ID), TenantIdentifierKey.String(t.Identifier)}
	if t.Tier != "" {
		attrs = append(attrs, TenantTierKey.String(t.Tier))
	}
	return attrs
}

// ServerAttributes returns the attributes of the database a connection
// configuration names (db.namespace, server.address, server.port), for
// Config.Attributes. pgxpool.Config's ConnConfig.Config is one.
func ServerAttributes(cfg *pgconn.Config) []attribute.KeyValue {
	if cfg == nil {
		return nil
	}
	attrs := []attribute.KeyValue{semconv.DBNamespace(cfg.Database)}
	if cfg.Host != "" && !strings.HasPrefix(cfg.Host, "/") { // not a Unix socket
		attrs = append(attrs, semconv.ServerAddress(cfg.Host), semconv.ServerPort(int(cfg.Port)))
	}
	return attrs
}

// Config configures a Tracer.
type Config struct {
	// TracerProvider starts the spans. Default otel.GetTracerProvider(),
	// the global provider, at the time New is called.
	TracerProvider trace.TracerProvider
	// Attributes are added to every statement's span: the database and
	// server (see ServerAttributes). Default none.
	Attributes []attribute.KeyValue
	// OmitQueryText leaves db.query.text out of statement spans. The
	// statements a provider runs take their values as parameters, so their
	// text holds no values unless the application writes them into the SQL;
	// set this if it does. Default false: the text is recorded.
	OmitQueryText bool
}

// Tracer starts the spans of tenants' statements and names the tenant on
// request spans. Its methods are safe for concurrent use.
type Tracer struct {
	tracer        trace.Tracer
	attrs         []attribute.KeyValue
	omitQueryText bool
}

var _ postgres.Tracer = (*Tracer)(nil)

// New returns a Tracer.
func New(cfg Config) *Tracer {
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return &Tracer{
		tracer:        tp.Tracer(ScopeName),
		attrs:         append([]attribute.KeyValue{semconv.DBSystemNamePostgreSQL}, cfg.Attributes...),
		omitQueryText: cfg.OmitQueryText,
	}
}

// TraceStatement implements postgres.Tracer: a client span per statement,
// named for its operation ("SELECT"), with the tenant's attributes, ended
// when the statement's outcome is known. A failed statement's span has
// status Error, error.type and, for a PostgreSQL error, its SQLSTATE as
// db.response.status_code.
func (tr *Tracer) TraceStatement(ctx context.Context, t *tenancy.Tenant, sql string) (context.Context, func(error)) {
	op := operationName(sql)
	name := op
	if name == "" {
		name = "postgresql"
	}
	attrs := make([]attribute.KeyValue, 0, len(tr.attrs)+5)
	attrs = append(attrs, tr.attrs...)
	if op != "" {
		attrs = append(attrs, semconv.DBOperationName(op))
	}
	if !tr.omitQueryText {
		attrs = append(attrs, semconv.DBQueryText(sql))
	}
	attrs = append(attrs, TenantAttributes(t)...)
	ctx, span := tr.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) {
				span.SetAttributes(semconv.ErrorTypeKey.String(pgErr.Code), semconv.DBResponseStatusCode(pgErr.Code))
			} else {
				span.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", err)))
			}
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// operationName returns the statement's first keyword in upper case when
// it names the operation (SELECT, INSERT, UPDATE, DELETE, ...), or "" when
// it does not (WITH, whose operation comes later).
func operationName(sql string) string {
	sql = strings.TrimLeft(sql, " \t\r\n(")
	end := strings.IndexFunc(sql, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') })
	if end < 0 {
		end = len(sql)
	}
	op := strings.ToUpper(sql[:end])
	if op == "WITH" {
		return ""
	}
	return op
}

// ObserveRequest names the request's route and tenant on the span in its
// context (started by otelhttp, outside middleware.Observe): the span is
// renamed "{method} {route}" and gets http.route, the tenant's attributes
// and the resolution's outcome when it was not ok. Use it as, or call it
// from, middleware.ObserveConfig.Done. A request without a recording span
// costs nothing.
func (tr *Tracer) ObserveRequest(r *http.Request, o *middleware.Observation) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	if o.Route != "" {
		// A ServeMux pattern may start with the method ("GET /notes/{id}")
		// and a host; http.route is the path part.
		route := o.Route
		if i := strings.IndexByte(route, '/'); i >= 0 {
			route = route[i:]
		}
		span.SetName(o.Method + " " + route)
		span.SetAttributes(semconv.HTTPRoute(route))
	}
	span.SetAttributes(TenantAttributes(o.Tenant)...)
	if o.Outcome != "" && o.Outcome != middleware.OutcomeOK {
		span.SetAttributes(OutcomeKey.String(o.Outcome))
	}
}
