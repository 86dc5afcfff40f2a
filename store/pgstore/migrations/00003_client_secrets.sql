-- Tenants' client secrets for the token endpoint (package credential),
-- hashed with argon2id: the plain secret is never stored.

-- +goose Up
CREATE TABLE {{schema}}.tenant_secrets (
    tenant_id  text NOT NULL,
    id         text NOT NULL,
    hash       text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    CONSTRAINT tenant_secrets_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT tenant_secrets_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES {{schema}}.tenants (id) ON DELETE CASCADE
);

-- +goose Down
DROP TABLE {{schema}}.tenant_secrets;
