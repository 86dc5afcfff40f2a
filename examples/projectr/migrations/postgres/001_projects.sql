-- One migration set for both tiers: it runs once on the shared tables
-- (starter tenants, row-level security) and once in every enterprise
-- tenant's schema, which the migration runner then seals to its tenant.
-- Every table carries tenant_id, defaulting to the tenant the statement
-- runs for; keys lead with it, and the foreign key includes it, so that a
-- key check (made without row-level security) never sees another tenant.
-- The RLS statements are what postgres.EnableRLS emits (schema_test.go
-- checks they still match), and the quota table is quota.DDL's.

-- +goose Up
CREATE TABLE projects (
    tenant_id   text NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), ''),
    id          uuid NOT NULL,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX projects_created_at_idx ON projects (tenant_id, created_at DESC, id DESC);
ALTER TABLE "projects" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "projects" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON "projects" USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')) WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), ''));

CREATE TABLE tasks (
    tenant_id  text NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), ''),
    id         uuid NOT NULL,
    project_id uuid NOT NULL,
    title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    status     text NOT NULL CHECK (status IN ('todo', 'in_progress', 'done')),
    assignee   text NOT NULL DEFAULT '' CHECK (length(assignee) <= 200),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX tasks_project_idx ON tasks (tenant_id, project_id, created_at, id);
ALTER TABLE "tasks" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "tasks" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON "tasks" USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')) WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), ''));

-- An export request, and its outcome once the job ran: GET /jobs/{id}
-- reads it, in its tenant's scope like every other row.
CREATE TABLE exports (
    tenant_id  text NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), ''),
    id         uuid NOT NULL,
    project_id uuid NOT NULL,
    status     text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    result     jsonb,
    error      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE "exports" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "exports" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON "exports" USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')) WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), ''));

CREATE TABLE IF NOT EXISTS tenancy_quota (
	tenant_id text NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), ''),
	resource text NOT NULL,
	used bigint NOT NULL,
	lim bigint NOT NULL,
	PRIMARY KEY (tenant_id, resource),
	CONSTRAINT tenancy_quota_within_limit CHECK (used <= lim),
	CONSTRAINT tenancy_quota_not_negative CHECK (used >= 0)
);
ALTER TABLE "tenancy_quota" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "tenancy_quota" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON "tenancy_quota" USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')) WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), ''));
CREATE INDEX IF NOT EXISTS "tenancy_quota_tenant_id_idx" ON "tenancy_quota" (tenant_id);

-- +goose Down
DROP TABLE tenancy_quota;
DROP TABLE exports;
DROP TABLE tasks;
DROP TABLE projects;
