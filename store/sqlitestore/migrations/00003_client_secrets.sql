-- Tenants' client secrets for the token endpoint (package credential),
-- hashed with argon2id: the plain secret is never stored. Times are
-- RFC 3339 UTC text, as in the other tables.

-- +goose Up
CREATE TABLE tenant_secrets (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    hash       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    PRIMARY KEY (tenant_id, id)
) STRICT;

-- +goose Down
DROP TABLE tenant_secrets;
