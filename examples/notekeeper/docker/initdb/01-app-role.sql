-- Runs once, when the postgres volume is first initialized.
--
-- The application connects as notekeeper_app: not a superuser, no
-- BYPASSRLS, owns nothing. Migrations run as the owner (POSTGRES_USER), who
-- also grants notekeeper_app the tenant role at start; tenant statements run
-- as that role, under the notes table's row-level security.
CREATE ROLE notekeeper_app LOGIN PASSWORD 'notekeeper-app' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
