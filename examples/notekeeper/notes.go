package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/google/uuid"
)

// Note is one note of one tenant.
type Note struct {
	ID        string    `json:"id" format:"uuid" doc:"The note's ID, a UUID."`
	TenantID  string    `json:"tenant_id" doc:"The ID of the tenant that owns the note, as stored with it."`
	Title     string    `json:"title" doc:"The title, 1 to 200 characters."`
	Body      string    `json:"body" doc:"The body, up to 10,000 characters."`
	CreatedAt time.Time `json:"created_at" doc:"When the note was created (UTC)."`
	UpdatedAt time.Time `json:"updated_at" doc:"When the note was last changed (UTC)."`
}

// NewNote holds the fields of a note to create, already validated.
type NewNote struct {
	Title string
	Body  string
}

// NotePatch names the fields of a note to change; nil fields stay as they
// are.
type NotePatch struct {
	Title *string
	Body  *string
}

// Page selects a page of notes, newest first.
type Page struct {
	Limit  int
	Offset int
}

// ErrNoteNotFound is returned when the tenant has no note with the given ID,
// which is also what another tenant's note looks like.
var ErrNoteNotFound = errors.New("note not found")

// NoteStore keeps notes. Every method names the tenant explicitly, and none
// can reach another tenant's notes: a note of another tenant is
// ErrNoteNotFound, and changing it changes nothing.
type NoteStore interface {
	// Create stores a new note of t and returns it as stored.
	Create(ctx context.Context, t *tenancy.Tenant, n NewNote) (Note, error)
	// List returns a page of t's notes, newest first.
	List(ctx context.Context, t *tenancy.Tenant, p Page) ([]Note, error)
	// Get returns t's note with the given ID.
	Get(ctx context.Context, t *tenancy.Tenant, id string) (Note, error)
	// Update changes the fields p sets and returns the note as stored.
	Update(ctx context.Context, t *tenancy.Tenant, id string, p NotePatch) (Note, error)
	// Delete removes t's note with the given ID.
	Delete(ctx context.Context, t *tenancy.Tenant, id string) error
}

// noteColumns is what every statement returns, in Note's order. tenant_id is
// read back from the row, never taken from the request: the response shows
// whose note the database holds.
const noteColumns = "id, tenant_id, title, body, created_at, updated_at"

// dialectSQL holds a dialect's statements.
type dialectSQL struct {
	create, list, get, update, delete string
}

// On PostgreSQL the insert names no tenant_id: the column defaults to
// app.tenant_id, which the RLS provider sets in the same round trip, and the
// policy's WITH CHECK refuses any other value. No statement filters on
// tenant_id either: the policy does, which is the point of the example.
var postgresSQL = dialectSQL{
	create: "INSERT INTO notes (title, body) VALUES ($1, $2) RETURNING id::text, tenant_id, title, body, created_at, updated_at",
	list:   "SELECT id::text, tenant_id, title, body, created_at, updated_at FROM notes ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
	get:    "SELECT id::text, tenant_id, title, body, created_at, updated_at FROM notes WHERE id = $1",
	update: "UPDATE notes SET title = coalesce($2, title), body = coalesce($3, body), updated_at = now() WHERE id = $1 RETURNING id::text, tenant_id, title, body, created_at, updated_at",
	delete: "DELETE FROM notes WHERE id = $1",
}

// On SQLite every tenant has its own file; tenant_id is stored explicitly.
var sqliteSQL = dialectSQL{
	create: "INSERT INTO notes (id, tenant_id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING " + noteColumns,
	list:   "SELECT " + noteColumns + " FROM notes ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
	get:    "SELECT " + noteColumns + " FROM notes WHERE id = ?",
	update: "UPDATE notes SET title = coalesce(?, title), body = coalesce(?, body), updated_at = ? WHERE id = ? RETURNING " + noteColumns,
	delete: "DELETE FROM notes WHERE id = ?",
}

// sqliteTime is how SQLite rows store timestamps: fixed-width UTC with
// microseconds, so that text order is time order.
const sqliteTime = "2006-01-02T15:04:05.000000Z"

// SQLNotes is a NoteStore on an isolation.Provider: PostgreSQL with
// row-level security, or SQLite with a file per tenant.
type SQLNotes struct {
	p   isolation.Provider
	sql dialectSQL
	now func() time.Time
}

var _ NoteStore = (*SQLNotes)(nil)

// NewSQLNotes returns a NoteStore on p, in p's dialect.
func NewSQLNotes(p isolation.Provider) (*SQLNotes, error) {
	s := &SQLNotes{p: p, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
	switch p.Dialect() {
	case isolation.Postgres:
		s.sql = postgresSQL
	case isolation.SQLite:
		s.sql = sqliteSQL
	default:
		return nil, fmt.Errorf("notes: unsupported dialect %s", p.Dialect())
	}
	return s, nil
}

func (s *SQLNotes) sqlite() bool { return s.p.Dialect() == isolation.SQLite }

// scanNote reads one row of noteColumns.
func (s *SQLNotes) scanNote(row isolation.Row) (Note, error) {
	var n Note
	if !s.sqlite() {
		if err := row.Scan(&n.ID, &n.TenantID, &n.Title, &n.Body, &n.CreatedAt, &n.UpdatedAt); err != nil {
			return Note{}, err
		}
		n.CreatedAt, n.UpdatedAt = n.CreatedAt.UTC(), n.UpdatedAt.UTC()
		return n, nil
	}
	var created, updated string
	if err := row.Scan(&n.ID, &n.TenantID, &n.Title, &n.Body, &created, &updated); err != nil {
		return Note{}, err
	}
	var err error
	if n.CreatedAt, err = time.Parse(sqliteTime, created); err != nil {
		return Note{}, fmt.Errorf("parse created_at: %w", err)
	}
	if n.UpdatedAt, err = time.Parse(sqliteTime, updated); err != nil {
		return Note{}, fmt.Errorf("parse updated_at: %w", err)
	}
	return n, nil
}

// noteID returns id in canonical form, or false when it is not a UUID in
// its canonical 36-character form: such an ID names no note, and is never
// sent to the database (where PostgreSQL would reject it as a uuid).
func noteID(id string) (string, bool) {
	if len(id) != 36 {
		return "", false
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// Create implements NoteStore.
func (s *SQLNotes) Create(ctx context.Context, t *tenancy.Tenant, in NewNote) (Note, error) {
	var row isolation.Row
	if s.sqlite() {
		now := s.now().Format(sqliteTime)
		id, err := uuid.NewRandom()
		if err != nil {
			return Note{}, fmt.Errorf("create note: %w", err)
		}
		row = s.p.QueryRow(ctx, t, s.sql.create, id.String(), t.ID, in.Title, in.Body, now, now)
	} else {
		row = s.p.QueryRow(ctx, t, s.sql.create, in.Title, in.Body)
	}
	n, err := s.scanNote(row)
	if err != nil {
		return Note{}, fmt.Errorf("create note: %w", err)
	}
	return n, nil
}

// List implements NoteStore.
func (s *SQLNotes) List(ctx context.Context, t *tenancy.Tenant, p Page) ([]Note, error) {
	rows, err := s.p.Query(ctx, t, s.sql.list, p.Limit, p.Offset)
	if err != nil {
		return nil, fmt.Errorf("list notes: %w", err)
	}
	defer rows.Close()
	notes := make([]Note, 0, p.Limit)
	for rows.Next() {
		n, err := s.scanNote(rows)
		if err != nil {
			return nil, fmt.Errorf("list notes: %w", err)
		}
		notes = append(notes, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list notes: %w", err)
	}
	return notes, nil
}

// Get implements NoteStore.
func (s *SQLNotes) Get(ctx context.Context, t *tenancy.Tenant, id string) (Note, error) {
	id, ok := noteID(id)
	if !ok {
		return Note{}, ErrNoteNotFound
	}
	return s.one("get note", s.p.QueryRow(ctx, t, s.sql.get, id))
}

// Update implements NoteStore. An empty patch returns the note unchanged.
func (s *SQLNotes) Update(ctx context.Context, t *tenancy.Tenant, id string, p NotePatch) (Note, error) {
	if p.Title == nil && p.Body == nil {
		return s.Get(ctx, t, id)
	}
	id, ok := noteID(id)
	if !ok {
		return Note{}, ErrNoteNotFound
	}
	var row isolation.Row
	if s.sqlite() {
		row = s.p.QueryRow(ctx, t, s.sql.update, p.Title, p.Body, s.now().Format(sqliteTime), id)
	} else {
		row = s.p.QueryRow(ctx, t, s.sql.update, id, p.Title, p.Body)
	}
	return s.one("update note", row)
}

func (s *SQLNotes) one(op string, row isolation.Row) (Note, error) {
	n, err := s.scanNote(row)
	switch {
	case errors.Is(err, isolation.ErrNoRows):
		return Note{}, ErrNoteNotFound
	case err != nil:
		return Note{}, fmt.Errorf("%s: %w", op, err)
	}
	return n, nil
}

// Delete implements NoteStore.
func (s *SQLNotes) Delete(ctx context.Context, t *tenancy.Tenant, id string) error {
	id, ok := noteID(id)
	if !ok {
		return ErrNoteNotFound
	}
	n, err := s.p.Exec(ctx, t, s.sql.delete, id)
	if err != nil {
		return fmt.Errorf("delete note: %w", err)
	}
	if n == 0 {
		return ErrNoteNotFound
	}
	return nil
}

// normalizeTitle trims a title and reports whether it is 1 to 200
// characters long.
func normalizeTitle(s string) (string, bool) {
	s = strings.TrimSpace(s)
	n := len([]rune(s))
	return s, n >= 1 && n <= maxTitleLen
}

// Field limits, in characters (Unicode code points).
const (
	maxTitleLen = 200
	maxBodyLen  = 10_000
)
