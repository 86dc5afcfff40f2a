-- The notes table of the isolation conformance suite.
CREATE TABLE notes (
    id text NOT NULL,
    tenant_id text NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), ''),
    title text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
