-- Notes live in one shared table. Row-level security confines every
-- statement to the tenant set in app.tenant_id by the isolation provider;
-- the statements below are what postgres.TenantIDColumn and
-- postgres.EnableRLS("notes") emit (notes_test.go checks they still match).

-- +goose Up
CREATE TABLE notes (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id text NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), ''),
    title      text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    body       text        NOT NULL DEFAULT '' CHECK (char_length(body) <= 10000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Serves the newest-first listing of one tenant. It is led by tenant_id, so
-- it also serves the policy's predicate and EnableRLS's plain tenant_id index
-- would only add write cost.
CREATE INDEX notes_tenant_id_created_at_idx ON notes (tenant_id, created_at DESC);

ALTER TABLE "notes" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "notes" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON "notes" USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')) WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), ''));

-- +goose Down
DROP TABLE notes;
