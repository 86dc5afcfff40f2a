package main

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/google/uuid"
)

// fakeNotes is an in-memory NoteStore for the handler tests. It passes the
// same conformance suite as the SQL stores (TestNoteStoreFake), so the
// handler tests exercise the behaviour the real stores have.
type fakeNotes struct {
	mu    sync.Mutex
	notes map[string][]Note // by tenant ID, oldest first
	clock time.Time
	// err, when set, is returned by every call: a failing database.
	err error
	// pages records the pages List was asked for.
	pages []Page
}

var _ NoteStore = (*fakeNotes)(nil)

func newFakeNotes() *fakeNotes {
	return &fakeNotes{notes: make(map[string][]Note), clock: time.Now().UTC().Truncate(time.Microsecond)}
}

// tick returns a strictly increasing time, so that "newest first" is
// well defined however fast notes are created, and never behind the wall
// clock (a store created long before its first note, in a long test run,
// still stamps it with about the present).
func (f *fakeNotes) tick() time.Time {
	f.clock = f.clock.Add(time.Millisecond)
	if now := time.Now().UTC().Truncate(time.Microsecond); now.After(f.clock) {
		f.clock = now
	}
	return f.clock
}

func (f *fakeNotes) find(t *tenancy.Tenant, id string) int {
	id, ok := noteID(id)
	if !ok {
		return -1
	}
	return slices.IndexFunc(f.notes[t.ID], func(n Note) bool { return n.ID == id })
}

func (f *fakeNotes) Create(_ context.Context, t *tenancy.Tenant, in NewNote) (Note, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return Note{}, f.err
	}
	now := f.tick()
	n := Note{ID: uuid.NewString(), TenantID: t.ID, Title: in.Title, Body: in.Body, CreatedAt: now, UpdatedAt: now}
	f.notes[t.ID] = append(f.notes[t.ID], n)
	return n, nil
}

func (f *fakeNotes) List(_ context.Context, t *tenancy.Tenant, p Page) ([]Note, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pages = append(f.pages, p)
	if f.err != nil {
		return nil, f.err
	}
	all := slices.Clone(f.notes[t.ID])
	slices.Reverse(all)
	start := min(p.Offset, len(all))
	end := min(start+p.Limit, len(all))
	return append([]Note{}, all[start:end]...), nil
}

func (f *fakeNotes) Get(_ context.Context, t *tenancy.Tenant, id string) (Note, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return Note{}, f.err
	}
	i := f.find(t, id)
	if i < 0 {
		return Note{}, ErrNoteNotFound
	}
	return f.notes[t.ID][i], nil
}

func (f *fakeNotes) Update(_ context.Context, t *tenancy.Tenant, id string, p NotePatch) (Note, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return Note{}, f.err
	}
	i := f.find(t, id)
	if i < 0 {
		return Note{}, ErrNoteNotFound
	}
	n := &f.notes[t.ID][i]
	if p.Title == nil && p.Body == nil {
		return *n, nil
	}
	if p.Title != nil {
		n.Title = *p.Title
	}
	if p.Body != nil {
		n.Body = *p.Body
	}
	n.UpdatedAt = f.tick()
	return *n, nil
}

func (f *fakeNotes) Delete(_ context.Context, t *tenancy.Tenant, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	i := f.find(t, id)
	if i < 0 {
		return ErrNoteNotFound
	}
	f.notes[t.ID] = slices.Delete(f.notes[t.ID], i, i+1)
	return nil
}
