package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/google/uuid"
)

// notes is the data path of one mode. Each method finds the request's tenant
// its own way (a header and a map, or the tenancy middleware's context) and
// reads or writes that tenant's notes only.
type notes interface {
	get(r *http.Request, id string) (fixture.Note, error)
	list(r *http.Request, limit int) ([]fixture.Note, error)
	create(r *http.Request, n fixture.NewNote) (fixture.Note, error)
}

// Errors a data path returns for the handlers to map to a status.
var (
	errNoTenant      = errors.New("no tenant named")
	errUnknownTenant = errors.New("unknown tenant")
	errNotFound      = errors.New("note not found")
)

// routes returns the handlers every mode serves. A malformed note ID is a
// 404, as a missing one: it cannot name a note.
func routes(n notes, logger *slog.Logger) *http.ServeMux {
	h := &handlers{n: n, logger: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /notes/{id}", h.get)
	mux.HandleFunc("GET /notes", h.list)
	mux.HandleFunc("POST /notes", h.create)
	return mux
}

type handlers struct {
	n      notes
	logger *slog.Logger
	// logged bounds the 500s logged: an error storm under load must not
	// turn into a log storm.
	logged atomic.Int64
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if uuid.Validate(id) != nil {
		h.fail(w, r, errNotFound)
		return
	}
	note, err := h.n.get(r, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, note)
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) {
	limit := fixture.ListLimit
	if s := r.URL.Query().Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 100 {
			http.Error(w, "limit must be 1 to 100", http.StatusBadRequest)
			return
		}
		limit = v
	}
	out, err := h.n.list(r, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handlers) create(w http.ResponseWriter, r *http.Request) {
	var in fixture.NewNote
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil {
		http.Error(w, "body must be a JSON note", http.StatusBadRequest)
		return
	}
	if len(in.Title) < 1 || len(in.Title) > 200 || len(in.Body) > 10_000 {
		http.Error(w, "title must be 1 to 200 bytes, body at most 10,000", http.StatusUnprocessableEntity)
		return
	}
	note, err := h.n.create(r, in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, note)
}

func (h *handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errNotFound):
		http.Error(w, "note not found", http.StatusNotFound)
	case errors.Is(err, errNoTenant):
		http.Error(w, "no tenant named", http.StatusBadRequest)
	case errors.Is(err, errUnauthenticated):
		w.Header().Set("WWW-Authenticate", "Bearer")
		http.Error(w, "missing or bad bearer token", http.StatusUnauthorized)
	case errors.Is(err, errUnknownTenant):
		http.Error(w, "unknown tenant", http.StatusNotFound)
	default:
		if h.logged.Add(1) <= 20 {
			h.logger.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
		}
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
