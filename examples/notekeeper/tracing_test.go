package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy/internal/testenv"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace endpoint that keeps the spans sent.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func (o *otlpReceiver) find(name string) *tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.spans {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func spanAttrs(s *tracepb.Span) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		if _, ok := kv.Value.Value.(*commonpb.AnyValue_StringValue); ok {
			m[kv.Key] = kv.Value.GetStringValue()
		} else {
			m[kv.Key] = kv.Value.String()
		}
	}
	return m
}

// TestTracingEndToEnd: the built binary, with an OTLP endpoint set,
// exports a span per request and per tenant statement, the statement a
// child of its request, both naming the tenant.
func TestTracingEndToEnd(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dsn := testenv.NewDatabase(t)
	testenv.EnsureRole(t, testenv.AppRole)
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	t.Cleanup(collector.Close)
	s := startServer(t, bin, map[string]string{
		"DATABASE_URL":                testenv.WithUser(dsn, testenv.AppRole),
		"MIGRATION_DATABASE_URL":      dsn,
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "50", // export every 50 ms
	})
	s.client().createNote(t, acme, acmeID, "traced", "")

	var req, stmt *tracepb.Span
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if req, stmt = recv.find("POST /notes"), recv.find("INSERT"); req != nil && stmt != nil {
			break
		}
	}
	if req == nil || stmt == nil {
		t.Fatalf("no request or statement span exported (request %v, statement %v)", req, stmt)
	}
	ra, sa := spanAttrs(req), spanAttrs(stmt)
	if req.Kind != tracepb.Span_SPAN_KIND_SERVER || ra["http.route"] != "/notes" || ra["tenancy.tenant.identifier"] != acme {
		t.Errorf("request span %v %v", req.Kind, ra)
	}
	if stmt.Kind != tracepb.Span_SPAN_KIND_CLIENT || sa["db.system.name"] != "postgresql" || sa["tenancy.tenant.id"] != acmeID ||
		sa["db.operation.name"] != "INSERT" || string(stmt.TraceId) != string(req.TraceId) {
		t.Errorf("statement span %v %v (trace %x, request's %x)", stmt.Kind, sa, stmt.TraceId, req.TraceId)
	}
}
