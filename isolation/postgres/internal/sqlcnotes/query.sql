-- name: CreateNote :one
INSERT INTO notes (id, title) VALUES ($1, $2) RETURNING id, tenant_id, title;

-- name: GetNote :one
SELECT id, tenant_id, title FROM notes WHERE id = $1;

-- name: ListNotes :many
SELECT id, tenant_id, title FROM notes ORDER BY title;

-- name: RenameNote :execrows
UPDATE notes SET title = $2 WHERE id = $1;

-- name: DeleteNote :exec
DELETE FROM notes WHERE id = $1;

-- name: CopyNotes :copyfrom
INSERT INTO notes (id, title) VALUES ($1, $2);

-- name: RenameNotes :batchexec
UPDATE notes SET title = $2 WHERE id = $1;

-- name: GetNotes :batchone
SELECT id, tenant_id, title FROM notes WHERE id = $1;
