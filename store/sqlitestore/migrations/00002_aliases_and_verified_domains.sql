-- Aliases leave tenant_domains for a table they share with identifiers, so
-- that one primary key keeps every alias apart from every identifier and
-- every other alias. Custom domains get a verification token and state:
-- only verified ones resolve.

-- +goose Up
CREATE TABLE tenant_names (
    name      TEXT NOT NULL PRIMARY KEY
        CHECK (name = lower(name) AND instr(name, '.') = 0),
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('identifier', 'alias'))
) STRICT;

-- A tenant's names, for reads and for purge.
CREATE INDEX tenant_names_tenant_id_idx ON tenant_names (tenant_id);

INSERT INTO tenant_names (name, tenant_id, kind)
SELECT identifier, id, 'identifier' FROM tenants;

-- Single labels among the domains were aliases. One equal to a tenant's
-- identifier never resolved (the host resolver tried identifiers first):
-- the identifier keeps the name and the alias is dropped.
INSERT OR IGNORE INTO tenant_names (name, tenant_id, kind)
SELECT domain, tenant_id, 'alias' FROM tenant_domains WHERE instr(domain, '.') = 0;

-- The domains move to a table with the new columns and checks (SQLite
-- cannot add a CHECK to a table). Domains from before verification existed
-- were added by an operator and resolved until now: they stay verified, so
-- that the upgrade takes no custom domain offline, and each gets a token.
-- A domain whose last label is all digits (an IPv4 address) never resolved
-- (the host resolver skips IP addresses) and is dropped.
CREATE TABLE tenant_domains_v2 (
    domain      TEXT NOT NULL PRIMARY KEY
        CHECK (domain = lower(domain) AND instr(domain, '.') > 0),
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token       TEXT NOT NULL CHECK (token <> ''),
    created_at  TEXT NOT NULL,
    -- NULL until verified.
    verified_at TEXT
) STRICT;

INSERT INTO tenant_domains_v2 (domain, tenant_id, token, created_at, verified_at)
SELECT domain, tenant_id, lower(hex(randomblob(16))),
       strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now'), strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now')
FROM tenant_domains
WHERE instr(domain, '.') > 0 AND substr(rtrim(domain, '0123456789'), -1) <> '.';

DROP TABLE tenant_domains;
ALTER TABLE tenant_domains_v2 RENAME TO tenant_domains;
CREATE INDEX tenant_domains_tenant_id_idx ON tenant_domains (tenant_id);

-- +goose Down
CREATE TABLE tenant_domains_v1 (
    domain    TEXT NOT NULL PRIMARY KEY CHECK (domain = lower(domain)),
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE
) STRICT;
-- Unverified domains never resolved; the old schema would resolve them.
INSERT INTO tenant_domains_v1 (domain, tenant_id)
SELECT domain, tenant_id FROM tenant_domains WHERE verified_at IS NOT NULL
UNION ALL
SELECT name, tenant_id FROM tenant_names WHERE kind = 'alias';
DROP TABLE tenant_domains;
ALTER TABLE tenant_domains_v1 RENAME TO tenant_domains;
CREATE INDEX tenant_domains_tenant_id_idx ON tenant_domains (tenant_id);
DROP TABLE tenant_names;
