-- The tenant store's tables. Timestamps are UTC text with microseconds
-- (2006-01-02T15:04:05.000000Z): they sort as they read and round-trip
-- exactly. Identifiers compare with the default BINARY collation, byte by
-- byte, as List requires.

-- +goose Up
CREATE TABLE tenants (
    id            TEXT NOT NULL PRIMARY KEY,
    identifier    TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL
        CHECK (status IN ('provisioning', 'active', 'suspended', 'deleted', 'failed')),
    status_reason TEXT NOT NULL DEFAULT '',
    placement     TEXT NOT NULL DEFAULT '',
    tier          TEXT NOT NULL DEFAULT '',
    isolation     TEXT NOT NULL DEFAULT ''
        CHECK (isolation IN ('', 'rls', 'schema', 'database')),
    metadata      TEXT NOT NULL DEFAULT '{}'
        CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

-- List and Count with a status filter.
CREATE INDEX tenants_status_identifier_idx ON tenants (status, identifier);

CREATE TABLE tenant_domains (
    domain    TEXT NOT NULL PRIMARY KEY CHECK (domain = lower(domain)),
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE
) STRICT;

-- Domains of a tenant, for reads and for purge.
CREATE INDEX tenant_domains_tenant_id_idx ON tenant_domains (tenant_id);

-- +goose Down
DROP TABLE tenant_domains;
DROP TABLE tenants;
