// Package oteltenancy traces tenants with OpenTelemetry: a client span per
// statement a PostgreSQL isolation provider runs in a tenant's scope (a
// postgres.Tracer, set as postgres.Config.Tracer), and the tenant on the
// span of each HTTP request (Tracer.ObserveRequest, a
// middleware.ObserveConfig.Done hook, beside an otelhttp handler that
// starts the span).
//
// Spans follow the OpenTelemetry semantic conventions (v1.43.0) for
// database client spans (db.system.name, db.operation.name, db.query.text,
// db.namespace, server.address, server.port, db.response.status_code,
// error.type) and for HTTP server spans (http.route and a span named
// "{method} {route}"), and carry the tenant in attributes of this package:
//
//	tenancy.tenant.id          the tenant's ID
//	tenancy.tenant.identifier  its identifier (as in a header or subdomain)
//	tenancy.tenant.tier        its tier, when it has one
//	tenancy.outcome            a request's resolution outcome (not_found, suspended, ...)
//
// Nothing is exported unless the application installs a TracerProvider
// with an exporter: with OpenTelemetry's default no-op provider every call
// is a cheap no-op.
package oteltenancy
