-- Runs once, when the postgres volume is first initialized, as the
-- superuser: the output of
--
--   DATABASE_URL=postgres://projectr_app:projectr-app@postgres:5432/projectr \
--   MIGRATION_DATABASE_URL=postgres://projectr_owner:projectr-owner@postgres:5432/projectr \
--   projectr setup
--
-- Requests connect as projectr_app (not superuser, no BYPASSRLS, owns
-- nothing); migrations as projectr_owner, which owns the database;
-- tenant statements switch to tenancy_tenant. The passwords are for local
-- use only.
CREATE ROLE projectr_owner LOGIN PASSWORD 'projectr-owner' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE projectr_app LOGIN PASSWORD 'projectr-app' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE tenancy_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
CREATE DATABASE projectr OWNER projectr_owner;
REVOKE TEMPORARY ON DATABASE projectr FROM PUBLIC;
GRANT tenancy_tenant TO projectr_app, projectr_owner;
