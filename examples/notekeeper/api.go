package main

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

// notesAPI holds the note handlers.
type notesAPI struct {
	notes  NoteStore
	ready  func(context.Context) error
	logger *slog.Logger
}

// tenantScheme names the OpenAPI security scheme that documents X-Tenant-ID,
// so that /docs lets a reader set it once for every call.
const tenantScheme = "tenant"

// newHumaAPI registers the API's operations on mux, with /openapi.json and
// /docs.
func newHumaAPI(mux *http.ServeMux, a *notesAPI) huma.API {
	cfg := huma.DefaultConfig("Notekeeper", "1.0.0")
	cfg.Info.Description = "A multi-tenant note-taking service: every request names its tenant in the X-Tenant-ID header, and sees only that tenant's notes."
	// The default hooks add a $schema field to every response body and a
	// schemas endpoint; the notes stay exactly as documented without them.
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
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		tenantScheme: {
			Type:        "apiKey",
			In:          "header",
			Name:        "X-Tenant-ID",
			Description: "The tenant's identifier, e.g. acme-corp: 3 to 56 characters of a-z, 0-9 and '-'.",
		},
	}
	cfg.Security = []map[string][]string{{tenantScheme: {}}}
	cfg.Info.License = &huma.License{Name: "Example code of the tenancy toolkit", URL: "https://github.com/go-tenancy/tenancy"}
	// Relative: /docs calls the server that serves it, on any host and port.
	cfg.Servers = []*huma.Server{{URL: "/", Description: "The server that serves this document"}}
	cfg.Tags = []*huma.Tag{{Name: "notes", Description: "The tenant's notes: every call names its tenant in X-Tenant-ID."}}
	api := humago.New(mux, cfg)

	public := []map[string][]string{} // overrides the tenant requirement
	huma.Register(api, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz",
		Summary: "Liveness: the process is up", Tags: []string{"health"}, Security: public,
		// Probes are for the platform, not for API clients: like /metrics,
		// they are documented in the README, not in the API description.
		Hidden: true,
	}, func(context.Context, *struct{}) (*statusOutput, error) {
		return &statusOutput{Body: statusBody{Status: "ok"}}, nil
	})
	huma.Register(api, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz",
		Summary: "Readiness: the database is reachable", Tags: []string{"health"}, Security: public,
		Errors: []int{http.StatusServiceUnavailable}, Hidden: true,
	}, a.readyz)

	// Every answer a tenant's call can get: the tenancy middleware's (400,
	// 403, 404, 503), the rate limiter's (429) and validation (422); calls
	// with a body also 415 (not sent as JSON).
	tenantErrors := []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity,
		http.StatusTooManyRequests, http.StatusServiceUnavailable}
	bodyErrors := append([]int{http.StatusUnsupportedMediaType}, tenantErrors...)
	huma.Register(api, huma.Operation{
		OperationID: "create-note", Method: http.MethodPost, Path: "/notes",
		Summary: "Create a note", Tags: []string{"notes"},
		DefaultStatus: http.StatusCreated, Errors: bodyErrors,
	}, a.create)
	huma.Register(api, huma.Operation{
		OperationID: "list-notes", Method: http.MethodGet, Path: "/notes",
		Summary: "List the tenant's notes, newest first", Tags: []string{"notes"}, Errors: tenantErrors,
	}, a.list)
	huma.Register(api, huma.Operation{
		OperationID: "get-note", Method: http.MethodGet, Path: "/notes/{id}",
		Summary: "Get a note", Tags: []string{"notes"}, Errors: tenantErrors,
	}, a.get)
	huma.Register(api, huma.Operation{
		OperationID: "update-note", Method: http.MethodPatch, Path: "/notes/{id}",
		Summary: "Change a note's title or body", Tags: []string{"notes"}, Errors: bodyErrors,
	}, a.update)
	huma.Register(api, huma.Operation{
		OperationID: "delete-note", Method: http.MethodDelete, Path: "/notes/{id}",
		Summary: "Delete a note", Tags: []string{"notes"},
		DefaultStatus: http.StatusNoContent, Errors: tenantErrors,
	}, a.delete)
	documentHeaders(api.OpenAPI())
	// The probes' body is documented only with them, in the README.
	delete(api.OpenAPI().Components.Schemas.Map(), "StatusBody")
	return api
}

// documentHeaders adds to every operation the response headers that the
// middleware around the API sends: Retry-After with 429 and 503, and with
// rate limiting on, the RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers-09 on every answer of a tenant's call.
func documentHeaders(o *huma.OpenAPI) {
	str := func(desc string) *huma.Param {
		return &huma.Param{Description: desc, Schema: &huma.Schema{Type: "string"}}
	}
	retryAfter := &huma.Param{Description: "Seconds to wait before trying again.", Schema: &huma.Schema{Type: "integer", Minimum: ptr(1.0)}}
	policy := str(`The tenant's quota (draft-ietf-httpapi-ratelimit-headers-09), such as "default";q=100;w=60: q requests per w seconds. Sent when RATE_LIMIT_PER_MINUTE is set.`)
	current := str(`What remains of the quota, such as "default";r=0;t=20: r requests left, whole again in t seconds. Sent when RATE_LIMIT_PER_MINUTE is set.`)
	for _, item := range o.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Patch, item.Delete} {
			if op == nil || op.Hidden {
				continue
			}
			for code, resp := range op.Responses {
				if resp.Headers == nil {
					resp.Headers = map[string]*huma.Param{}
				}
				switch code {
				case "429", "503":
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

func ptr[T any](v T) *T { return &v }

// publicPaths are served without a tenant: health, metrics and the API
// description (huma serves the spec in four forms; /docs loads the YAML one).
var publicPaths = []string{
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
	"GET /docs",
	"GET /openapi.json",
	"GET /openapi.yaml",
	"GET /openapi-3.0.json",
	"GET /openapi-3.0.yaml",
}

type statusBody struct {
	Status string `json:"status" example:"ok"`
}

type statusOutput struct {
	Body statusBody
}

func (a *notesAPI) readyz(ctx context.Context, _ *struct{}) (*statusOutput, error) {
	if err := a.ready(ctx); err != nil {
		a.logger.WarnContext(ctx, "readiness check failed", slog.Any("error", err))
		d := problem.Details{Type: "about:blank", Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
			Detail: "The database is not reachable."}
		return nil, &apiError{d}
	}
	return &statusOutput{Body: statusBody{Status: "ok"}}, nil
}

// noteInput is the body of POST /notes.
type noteInput struct {
	Title string `json:"title" minLength:"1" doc:"The title: 1 to 200 characters once leading and trailing white space is trimmed (it is stored trimmed)."`
	Body  string `json:"body,omitempty" maxLength:"10000" doc:"The body, up to 10,000 characters. Default empty."`
}

// Resolve checks what the schema cannot say: the trimmed title's length.
func (in *noteInput) Resolve(huma.Context) []error {
	var errs []error
	// An empty title is the schema's to report (missing or too short).
	if in.Title != "" {
		if t, ok := normalizeTitle(in.Title); ok {
			in.Title = t
		} else {
			errs = append(errs, titleError())
		}
	}
	if strings.ContainsRune(in.Title, 0) {
		errs = append(errs, nulError("body.title"))
	}
	if strings.ContainsRune(in.Body, 0) {
		errs = append(errs, nulError("body.body"))
	}
	return errs
}

// notePatchInput is the body of PATCH /notes/{id}.
type notePatchInput struct {
	Title *string `json:"title,omitempty" minLength:"1" doc:"The new title, 1 to 200 characters once trimmed. Omit it to keep the title."`
	Body  *string `json:"body,omitempty" maxLength:"10000" doc:"The new body, up to 10,000 characters. Omit it to keep the body."`
}

// Resolve checks the trimmed title's length.
func (in *notePatchInput) Resolve(huma.Context) []error {
	var errs []error
	if in.Title != nil && *in.Title != "" {
		if t, ok := normalizeTitle(*in.Title); ok {
			in.Title = &t
		} else {
			errs = append(errs, titleError())
		}
	}
	if in.Title != nil && strings.ContainsRune(*in.Title, 0) {
		errs = append(errs, nulError("body.title"))
	}
	if in.Body != nil && strings.ContainsRune(*in.Body, 0) {
		errs = append(errs, nulError("body.body"))
	}
	return errs
}

func titleError() error {
	return &huma.ErrorDetail{Location: "body.title", Message: "must be 1 to 200 characters once trimmed"}
}

func nulError(loc string) error {
	return &huma.ErrorDetail{Location: loc, Message: "must not contain NUL characters"}
}

type createInput struct {
	Body noteInput
}

type noteOutput struct {
	Body Note
}

type createOutput struct {
	Location string `header:"Location" doc:"The note's URL."`
	Body     Note
}

type listInput struct {
	Limit  int `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"How many notes to return, 1 to 100."`
	Offset int `query:"offset" minimum:"0" default:"0" doc:"How many of the newest notes to skip."`
}

type listOutput struct {
	Body []Note
}

type idInput struct {
	ID string `path:"id" doc:"The note's ID. A value that is not a UUID names no note (404)."`
}

type updateInput struct {
	ID      string `path:"id" doc:"The note's ID."`
	Body    notePatchInput
	RawBody []byte
}

// Resolve refuses explicit nulls, which the decoded body cannot tell from
// absent fields: a title or body can be changed, never removed.
func (in *updateInput) Resolve(huma.Context) []error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(in.RawBody, &fields) != nil {
		return nil // not an object: the schema reports it
	}
	var errs []error
	for _, name := range []string{"title", "body"} {
		if v, ok := fields[name]; ok && string(v) == "null" {
			errs = append(errs, &huma.ErrorDetail{Location: "body." + name, Message: "must not be null: omit the field to keep it"})
		}
	}
	return errs
}

type deleteOutput struct{}

func (a *notesAPI) create(ctx context.Context, in *createInput) (*createOutput, error) {
	t, err := requireTenant(ctx)
	if err != nil {
		return nil, err
	}
	n, err := a.notes.Create(ctx, t, NewNote{Title: in.Body.Title, Body: in.Body.Body})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &createOutput{Location: "/notes/" + n.ID, Body: n}, nil
}

func (a *notesAPI) list(ctx context.Context, in *listInput) (*listOutput, error) {
	t, err := requireTenant(ctx)
	if err != nil {
		return nil, err
	}
	notes, err := a.notes.List(ctx, t, Page{Limit: in.Limit, Offset: in.Offset})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	if notes == nil {
		notes = []Note{} // an empty tenant gets [], not null
	}
	return &listOutput{Body: notes}, nil
}

func (a *notesAPI) get(ctx context.Context, in *idInput) (*noteOutput, error) {
	t, err := requireTenant(ctx)
	if err != nil {
		return nil, err
	}
	n, err := a.notes.Get(ctx, t, in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &noteOutput{Body: n}, nil
}

func (a *notesAPI) update(ctx context.Context, in *updateInput) (*noteOutput, error) {
	t, err := requireTenant(ctx)
	if err != nil {
		return nil, err
	}
	n, err := a.notes.Update(ctx, t, in.ID, NotePatch{Title: in.Body.Title, Body: in.Body.Body})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &noteOutput{Body: n}, nil
}

func (a *notesAPI) delete(ctx context.Context, in *idInput) (*deleteOutput, error) {
	t, err := requireTenant(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.notes.Delete(ctx, t, in.ID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return &deleteOutput{}, nil
}

// requireTenant returns the tenant the middleware put in ctx. Without one
// the middleware was bypassed: refuse rather than guess.
func requireTenant(ctx context.Context) (*tenancy.Tenant, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok {
		return nil, &apiError{problem.FromError(tenancy.ErrNoTenant)}
	}
	return t, nil
}

// fail maps a NoteStore error to its response, and logs what is not the
// client's doing (with the tenant, which ctx carries).
func (a *notesAPI) fail(ctx context.Context, err error) error {
	if errors.Is(err, ErrNoteNotFound) {
		return &apiError{problem.Details{Type: "about:blank", Title: "Not Found", Status: http.StatusNotFound,
			Detail: "The tenant has no note with that ID."}}
	}
	a.logger.ErrorContext(ctx, "note request failed", slog.Any("error", err))
	return &apiError{problem.FromError(err)}
}

// apiError is a problem details response returned by a handler. It
// satisfies huma's StatusError, so huma writes it as it is.
type apiError struct {
	d problem.Details
}

func (e *apiError) Error() string { return e.d.Title }

// GetStatus implements huma.StatusError.
func (e *apiError) GetStatus() int { return e.d.Status }

// GetHeaders implements huma.HeadersError (Retry-After, for one).
func (e *apiError) GetHeaders() http.Header { return e.d.Header }

// ContentType implements huma.ContentTypeFilter.
func (e *apiError) ContentType(string) string { return problem.ContentType }

// MarshalJSON writes the problem details, readable (problem.Details keeps
// '<' and '>' as they are).
func (e *apiError) MarshalJSON() ([]byte, error) { return e.d.MarshalJSON() }

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
	return &apiError{d}, nil
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
