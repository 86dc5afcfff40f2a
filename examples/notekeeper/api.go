package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/problem"
)

// notesAPI holds the note handlers.
type notesAPI struct {
	notes  NoteStore
	logger *slog.Logger
}

// tenantScheme names the OpenAPI security scheme that documents X-Tenant-ID,
// so that /docs lets a reader set it once for every call.
const tenantScheme = "tenant"

// notekeeperAPI describes Notekeeper's API and registers its operations on
// the handlers of a.
func notekeeperAPI(a *notesAPI) service.API {
	return service.API{
		Title:       "Notekeeper",
		Version:     "1.0.0",
		Description: "A multi-tenant note-taking service: every request names its tenant in the X-Tenant-ID header, and sees only that tenant's notes.",
		Tags:        []*huma.Tag{{Name: "notes", Description: "The tenant's notes: every call names its tenant in X-Tenant-ID."}},
		SecuritySchemes: map[string]*huma.SecurityScheme{
			tenantScheme: {
				Type:        "apiKey",
				In:          "header",
				Name:        "X-Tenant-ID",
				Description: "The tenant's identifier, e.g. acme-corp: 3 to 56 characters of a-z, 0-9 and '-'.",
			},
		},
		Security: []map[string][]string{{tenantScheme: {}}},
		Register: a.register,
	}
}

// register registers the notes operations.
func (a *notesAPI) register(api huma.API) {
	tenantErrors, bodyErrors := service.TenantErrors(), service.BodyErrors()
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
	t, err := service.RequireTenant(ctx)
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
	t, err := service.RequireTenant(ctx)
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
	t, err := service.RequireTenant(ctx)
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
	t, err := service.RequireTenant(ctx)
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
	t, err := service.RequireTenant(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.notes.Delete(ctx, t, in.ID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return &deleteOutput{}, nil
}

// fail maps a NoteStore error to its response, and logs what is not the
// client's doing (with the tenant, which ctx carries).
func (a *notesAPI) fail(ctx context.Context, err error) error {
	if errors.Is(err, ErrNoteNotFound) {
		return service.Problem(problem.Details{Type: "about:blank", Title: "Not Found", Status: http.StatusNotFound,
			Detail: "The tenant has no note with that ID."})
	}
	a.logger.ErrorContext(ctx, "note request failed", slog.Any("error", err))
	return service.Problem(problem.FromError(err))
}
