-- Each tenant has its own SQLite file, so the file keeps tenants apart.
-- tenant_id is still stored, so that a row always says whose it is, and
-- keys lead with it as on PostgreSQL. Timestamps are DATETIME, which the
-- driver reads back as time.Time. The quota and outbox tables are
-- quota.DDL's and jobs.OutboxDDL's (schema_test.go checks they match).

-- +goose Up
CREATE TABLE projects (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description TEXT NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX projects_created_at_idx ON projects (tenant_id, created_at DESC, id DESC);

CREATE TABLE tasks (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    project_id TEXT NOT NULL,
    title      TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    status     TEXT NOT NULL CHECK (status IN ('todo', 'in_progress', 'done')),
    assignee   TEXT NOT NULL DEFAULT '' CHECK (length(assignee) <= 200),
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX tasks_project_idx ON tasks (tenant_id, project_id, created_at, id);

CREATE TABLE exports (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    project_id TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    result     TEXT,
    error      TEXT NOT NULL DEFAULT '',
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS tenancy_quota (
	resource TEXT PRIMARY KEY,
	used INTEGER NOT NULL,
	lim INTEGER NOT NULL,
	CONSTRAINT tenancy_quota_within_limit CHECK (used <= lim),
	CONSTRAINT tenancy_quota_not_negative CHECK (used >= 0)
);

CREATE TABLE IF NOT EXISTS tenancy_job_outbox (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	key TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL,
	args TEXT NOT NULL,
	opts TEXT,
	created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- +goose Down
DROP TABLE tenancy_job_outbox;
DROP TABLE tenancy_quota;
DROP TABLE exports;
DROP TABLE tasks;
DROP TABLE projects;
