package service

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// loadTracing reads whether traces are exported, from OpenTelemetry's own
// variables: OTEL_SDK_DISABLED=true turns them off; OTEL_TRACES_EXPORTER is
// otlp or none, and defaults to otlp when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, to none otherwise. The
// exporter reads the other OTEL_EXPORTER_OTLP_* variables itself
// (protocol http/protobuf).
func loadTracing(env *Env) bool {
	if env.Bool("OTEL_SDK_DISABLED", false) {
		return false
	}
	_, endpoint := env.Lookup("OTEL_EXPORTER_OTLP_ENDPOINT")
	if _, traces := env.Lookup("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); traces {
		endpoint = true
	}
	def := "none"
	if endpoint {
		def = "otlp"
	}
	switch env.String("OTEL_TRACES_EXPORTER", def) {
	case "otlp":
		return true
	case "none":
		return false
	default:
		env.Fail(errors.New("OTEL_TRACES_EXPORTER must be otlp or none"))
		return false
	}
}

// NewTracerProvider returns the provider of the service's spans when
// cfg.Tracing is on, exporting them over OTLP (HTTP) in batches, with
// service.name cfg.Name unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES
// say otherwise; the sampler follows OTEL_TRACES_SAMPLER (default: parent
// based, always on). It installs the W3C trace context and baggage
// propagators process-wide, so that a caller's trace continues. Shut the
// provider down to flush what is buffered. With tracing off it returns nil.
func NewTracerProvider(ctx context.Context, cfg Config) (*sdktrace.TracerProvider, error) {
	if !cfg.Tracing {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", cfg.Name)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry resource: %w", err)
	}
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
