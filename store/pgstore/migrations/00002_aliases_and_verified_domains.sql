-- Aliases leave tenant_domains for a table they share with identifiers, so
-- that one primary key keeps every alias apart from every identifier and
-- every other alias, checked by the database without races. Custom domains
-- get a verification token and state: only verified ones resolve.

-- +goose Up
CREATE TABLE {{schema}}.tenant_names (
    -- "C" collation: names sort by bytes, as the store returns them.
    name      text COLLATE "C" NOT NULL,
    tenant_id text NOT NULL,
    kind      text NOT NULL,
    CONSTRAINT tenant_names_pkey PRIMARY KEY (name),
    CONSTRAINT tenant_names_kind_check CHECK (kind IN ('identifier', 'alias')),
    CONSTRAINT tenant_names_name_check CHECK (name = lower(name) AND strpos(name, '.') = 0),
    CONSTRAINT tenant_names_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES {{schema}}.tenants (id) ON DELETE CASCADE
);

-- A tenant's names, for reads and for the cascade on purge.
CREATE INDEX tenant_names_tenant_id_idx ON {{schema}}.tenant_names (tenant_id);

INSERT INTO {{schema}}.tenant_names (name, tenant_id, kind)
SELECT identifier, id, 'identifier' FROM {{schema}}.tenants;

-- Single labels among the domains were aliases. One equal to a tenant's
-- identifier never resolved (the host resolver tried identifiers first):
-- the identifier keeps the name and the alias is dropped.
INSERT INTO {{schema}}.tenant_names (name, tenant_id, kind)
SELECT domain, tenant_id, 'alias' FROM {{schema}}.tenant_domains WHERE strpos(domain, '.') = 0
ON CONFLICT (name) DO NOTHING;
DELETE FROM {{schema}}.tenant_domains WHERE strpos(domain, '.') = 0;
-- A domain whose last label is all digits (an IPv4 address) never
-- resolved either: the host resolver skips IP addresses.
DELETE FROM {{schema}}.tenant_domains WHERE domain ~ '\.[0-9]+$';

ALTER TABLE {{schema}}.tenant_domains
    ADD COLUMN token       text,
    ADD COLUMN created_at  timestamptz,
    ADD COLUMN verified_at timestamptz;
-- Domains from before verification existed were added by an operator and
-- resolved until now: they stay verified, so that the upgrade takes no
-- custom domain offline. Each gets a token, so that it can be checked again.
UPDATE {{schema}}.tenant_domains
SET token = replace(gen_random_uuid()::text, '-', ''), created_at = now(), verified_at = now();
ALTER TABLE {{schema}}.tenant_domains
    ALTER COLUMN token SET NOT NULL,
    ALTER COLUMN created_at SET NOT NULL,
    ADD CONSTRAINT tenant_domains_domain_labels_check CHECK (strpos(domain, '.') > 0);

-- +goose Down
-- Unverified domains never resolved; the old schema would resolve them.
DELETE FROM {{schema}}.tenant_domains WHERE verified_at IS NULL;
ALTER TABLE {{schema}}.tenant_domains
    DROP CONSTRAINT tenant_domains_domain_labels_check,
    DROP COLUMN token,
    DROP COLUMN created_at,
    DROP COLUMN verified_at;
INSERT INTO {{schema}}.tenant_domains (domain, tenant_id)
SELECT name, tenant_id FROM {{schema}}.tenant_names WHERE kind = 'alias';
DROP TABLE {{schema}}.tenant_names;
