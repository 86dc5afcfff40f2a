-- Each tenant has its own SQLite file, so the file itself keeps tenants
-- apart. tenant_id is still stored, so that a note always says whose it is.
-- Timestamps are fixed-width UTC text (microseconds), so they sort as text.

-- +goose Up
CREATE TABLE notes (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    title      TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body       TEXT NOT NULL DEFAULT '' CHECK (length(body) <= 10000),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX notes_created_at_idx ON notes (created_at DESC, id DESC);

-- +goose Down
DROP TABLE notes;
