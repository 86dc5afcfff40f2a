package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/problem"
)

// API describes an app's huma API: its OpenAPI description and its
// operations. NewAPI adds what every app has.
type API struct {
	// Title is the API's name in its description. Required.
	Title string
	// Version is the API's version. Default "1.0.0".
	Version string
	// Description says what the API does and how a call names its tenant.
	Description string
	// Tags describe the tags the operations use.
	Tags []*huma.Tag
	// SecuritySchemes document how a call names its tenant (a header, a
	// bearer token), so that /docs lets a reader set it once for every
	// call. Default none.
	SecuritySchemes map[string]*huma.SecurityScheme
	// Security is what every operation requires, unless it says otherwise
	// (Public for none). Default nothing.
	Security []map[string][]string
	// Register registers the app's operations on api, with huma.Register.
	// Default none.
	Register func(api huma.API)
}

// Public, as an operation's Security, overrides the API's requirement: the
// operation needs no tenant.
var Public = []map[string][]string{}

// TenantErrors returns the statuses every tenant's call can answer besides
// its own: the tenancy middleware's (400, 403, 404, 503), validation's
// (422), the rate limiter's (429), and an unreachable (503) or slow (504)
// database's. For an operation's Errors.
func TenantErrors() []int {
	return []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity,
		http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
}

// BodyErrors returns TenantErrors, 413 (a body over the limit) and 415 (a
// body not sent as JSON), for the operations that take a body.
func BodyErrors() []int {
	return append([]int{http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType}, TenantErrors()...)
}

// NewAPI registers on mux the API a describes, with the readiness and
// liveness probes (/healthz and /readyz, which call ready), /openapi.json
// and /docs. The description documents the response headers the handler
// chain adds. ready nil is always ready; logger nil is slog.Default().
func NewAPI(mux *http.ServeMux, a API, ready func(context.Context) error, logger *slog.Logger) huma.API {
	if a.Version == "" {
		a.Version = "1.0.0"
	}
	if ready == nil {
		ready = func(context.Context) error { return nil }
	}
	if logger == nil {
		logger = slog.Default()
	}
	cfg := huma.DefaultConfig(a.Title, a.Version)
	cfg.Info.Description = a.Description
	// The default hooks add a $schema field to every response body and a
	// schemas endpoint; bodies stay exactly as documented without them.
	cfg.CreateHooks = nil
	cfg.SchemasPath = ""
	cfg.Transformers = append(cfg.Transformers, problemTransformer)
	// Bodies are JSON, never HTML: keep '<', '>' and '&' readable instead
	// of encoding/json's \u003c escapes.
	jsonFormat := huma.Format{
		Marshal: func(w io.Writer, v any) error {
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false)
			return enc.Encode(v)
		},
		Unmarshal: json.Unmarshal,
	}
	cfg.Formats = map[string]huma.Format{"application/json": jsonFormat, "json": jsonFormat}
	cfg.Components.SecuritySchemes = a.SecuritySchemes
	cfg.Security = a.Security
	cfg.Info.License = &huma.License{Name: "Example code of the tenancy toolkit", URL: "https://github.com/go-tenancy/tenancy"}
	// Relative: /docs calls the server that serves it, on any host and port.
	cfg.Servers = []*huma.Server{{URL: "/", Description: "The server that serves this document"}}
	cfg.Tags = a.Tags
	// huma's /docs loads its viewer from a CDN; ours is in the binary.
	cfg.DocsPath = ""
	api := humago.New(mux, cfg)
	registerDocs(mux, a.Title)

	huma.Register(api, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz",
		Summary: "Liveness: the process is up", Tags: []string{"health"}, Security: Public,
		// Probes are for the platform, not for API clients: like /metrics,
		// they are documented in the README, not in the API description.
		Hidden: true,
	}, func(context.Context, *struct{}) (*statusOutput, error) {
		return &statusOutput{Body: statusBody{Status: "ok"}}, nil
	})
	huma.Register(api, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz",
		Summary: "Readiness: the database is reachable", Tags: []string{"health"}, Security: Public,
		Errors: []int{http.StatusServiceUnavailable}, Hidden: true,
	}, func(ctx context.Context, _ *struct{}) (*statusOutput, error) {
		if err := ready(ctx); err != nil {
			logger.WarnContext(ctx, "readiness check failed", slog.Any("error", err))
			return nil, Problem(problem.Details{Type: "about:blank", Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
				Detail: "The database is not reachable."})
		}
		return &statusOutput{Body: statusBody{Status: "ok"}}, nil
	})
	if a.Register != nil {
		a.Register(api)
	}
	documentHeaders(api.OpenAPI())
	// The probes' body is documented only with them, in the README.
	delete(api.OpenAPI().Components.Schemas.Map(), "StatusBody")
	return api
}

type statusBody struct {
	Status string `json:"status" example:"ok"`
}

type statusOutput struct {
	Body statusBody
}

// documentHeaders adds to every operation the response headers that the
// middleware around the API sends: Retry-After with 429, 503 and 504, and with
// rate limiting on, the RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers-09 on every answer of a tenant's call.
func documentHeaders(o *huma.OpenAPI) {
	str := func(desc string) *huma.Param {
		return &huma.Param{Description: desc, Schema: &huma.Schema{Type: "string"}}
	}
	minimum := 1.0
	retryAfter := &huma.Param{Description: "Seconds to wait before trying again.", Schema: &huma.Schema{Type: "integer", Minimum: &minimum}}
	policy := str(`The tenant's quota (draft-ietf-httpapi-ratelimit-headers-09), such as "default";q=100;w=60: q requests per w seconds. Sent when RATE_LIMIT_PER_MINUTE is set.`)
	current := str(`What remains of the quota, such as "default";r=0;t=20: r requests left, whole again in t seconds. Sent when RATE_LIMIT_PER_MINUTE is set.`)
	for _, item := range o.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Put, item.Post, item.Patch, item.Delete} {
			if op == nil || op.Hidden {
				continue
			}
			for code, resp := range op.Responses {
				if resp.Headers == nil {
					resp.Headers = map[string]*huma.Param{}
				}
				switch code {
				case "429", "503", "504":
					resp.Headers["Retry-After"] = retryAfter
				}
				if code != "default" {
					resp.Headers["RateLimit-Policy"] = policy
					resp.Headers["RateLimit"] = current
				}
			}
		}
	}
}

// RequireTenant returns the tenant the tenancy middleware put in ctx.
// Without one the middleware was bypassed: it refuses (400, like a request
// that names no tenant) rather than guess.
func RequireTenant(ctx context.Context) (*tenancy.Tenant, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok {
		return nil, Problem(problem.FromError(tenancy.ErrNoTenant))
	}
	return t, nil
}

// Problem returns d as an error a huma handler returns: huma writes it as
// it is, application/problem+json with d's status and headers.
func Problem(d problem.Details) error {
	return &APIError{Details: d}
}

// APIError is a problem details response returned by a handler. It
// satisfies huma's StatusError, so huma writes it as it is.
type APIError struct {
	Details problem.Details
}

// Error returns the problem's title.
func (e *APIError) Error() string { return e.Details.Title }

// GetStatus implements huma.StatusError.
func (e *APIError) GetStatus() int { return e.Details.Status }

// GetHeaders implements huma.HeadersError (Retry-After, for one).
func (e *APIError) GetHeaders() http.Header { return e.Details.Header }

// ContentType implements huma.ContentTypeFilter.
func (e *APIError) ContentType(string) string { return problem.ContentType }

// MarshalJSON writes the problem details, readable (problem.Details keeps
// '<' and '>' as they are).
func (e *APIError) MarshalJSON() ([]byte, error) { return e.Details.MarshalJSON() }

// problemTransformer rewrites the errors huma produces itself (unparseable
// bodies, failed validation, oversized bodies) into the problem details that
// the tenancy middleware writes, so that every error reads alike. It drops
// what would echo the request: huma puts the raw body, or a field's value,
// into its error details.
func problemTransformer(_ huma.Context, _ string, v any) (any, error) {
	em, ok := v.(*huma.ErrorModel)
	if !ok {
		return v, nil
	}
	d := problem.Details{Type: "about:blank", Title: http.StatusText(em.Status), Status: em.Status, Detail: em.Detail}
	switch {
	case em.Status == http.StatusBadRequest:
		d.Detail = "The request body is not valid JSON."
		if em.Detail == "request body is required" {
			d.Detail = "The request body is required."
		}
	case em.Status == http.StatusRequestEntityTooLarge:
		d = tooLarge()
	case em.Status == http.StatusUnsupportedMediaType:
		d.Detail = "The request body must be JSON (Content-Type: application/json)."
	case em.Status == http.StatusUnprocessableEntity:
		d = problem.New(problem.SlugInvalidField, http.StatusUnprocessableEntity, "Invalid field")
		d.Detail = "One or more fields are invalid."
		for _, e := range em.Errors {
			if e == nil {
				continue
			}
			fd := problem.FieldDetail{Message: e.Message, Location: e.Location}
			if e.Message == "unexpected property" {
				// The location holds the client's property name: named,
				// escaped where it is not a plain name, and cut short.
				fd.Location = fieldLocation(e.Location)
				fd.Message = "unexpected property: the body may hold only the documented fields"
			}
			if name, ok := strings.CutPrefix(e.Message, "expected required property "); ok {
				// Named by the schema, not the client: safe to send.
				fd.Location = e.Location + "." + strings.TrimSuffix(name, " to be present")
				fd.Message = "is required"
			}
			d.Errors = append(d.Errors, fd)
		}
	case em.Status >= 500:
		d = problem.FromError(errors.New(em.Detail))
	}
	return &APIError{Details: d}, nil
}

// fieldLocation returns huma's location of a client's property name
// ("body.foo") fit to send back: a plain name as it is, any other in
// brackets, quoted with every non-ASCII or control character escaped, and
// at most maxField bytes of it.
func fieldLocation(loc string) string {
	const maxField = 64
	parent, name, ok := strings.Cut(loc, ".")
	if !ok {
		return "body"
	}
	cut := ""
	if len(name) > maxField {
		name, cut = name[:maxField], "..."
		for !utf8.ValidString(name) {
			name = name[:len(name)-1]
		}
	}
	plain := name != "" && strings.IndexFunc(name, func(r rune) bool {
		return !(r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0
	if plain {
		return parent + "." + name + cut
	}
	return parent + "[" + strconv.QuoteToASCII(name) + cut + "]"
}
