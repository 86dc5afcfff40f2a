-- The tenant store's tables. {{schema}} is replaced by the quoted control
-- schema before goose reads the file (see render in migrate.go). Constraint
-- names are fixed: the store maps unique violations to DuplicateError by
-- name.

-- +goose Up
CREATE TABLE {{schema}}.tenants (
    id            text        NOT NULL,
    -- "C" collation: List orders and pages by bytes, as every store does.
    identifier    text        COLLATE "C" NOT NULL,
    name          text        NOT NULL,
    status        text        NOT NULL,
    status_reason text        NOT NULL DEFAULT '',
    placement     text        NOT NULL DEFAULT '',
    tier          text        NOT NULL DEFAULT '',
    isolation     text        NOT NULL DEFAULT '',
    metadata      jsonb       NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_pkey PRIMARY KEY (id),
    CONSTRAINT tenants_identifier_key UNIQUE (identifier),
    CONSTRAINT tenants_status_check
        CHECK (status IN ('provisioning', 'active', 'suspended', 'deleted', 'failed')),
    CONSTRAINT tenants_isolation_check
        CHECK (isolation IN ('', 'rls', 'schema', 'database')),
    CONSTRAINT tenants_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);

-- List and Count with a status filter.
CREATE INDEX tenants_status_identifier_idx ON {{schema}}.tenants (status, identifier);

CREATE TABLE {{schema}}.tenant_domains (
    domain    text NOT NULL,
    tenant_id text NOT NULL,
    CONSTRAINT tenant_domains_pkey PRIMARY KEY (domain),
    CONSTRAINT tenant_domains_domain_check CHECK (domain = lower(domain)),
    CONSTRAINT tenant_domains_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES {{schema}}.tenants (id) ON DELETE CASCADE
);

-- Domains of a tenant, for reads and for the cascade on purge.
CREATE INDEX tenant_domains_tenant_id_idx ON {{schema}}.tenant_domains (tenant_id);

-- +goose Down
DROP TABLE {{schema}}.tenant_domains;
DROP TABLE {{schema}}.tenants;
