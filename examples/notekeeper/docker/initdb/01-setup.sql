-- Runs once, when the postgres volume is first initialized, as the
-- superuser: the output of
--
--   DATABASE_URL=postgres://notekeeper_app:notekeeper-app@postgres:5432/notekeeper \
--   MIGRATION_DATABASE_URL=postgres://notekeeper_owner:notekeeper-owner@postgres:5432/notekeeper \
--   notekeeper setup
--
-- Requests connect as notekeeper_app (not superuser, no BYPASSRLS, owns
-- nothing); migrations as notekeeper_owner, which owns the database;
-- tenant statements switch to tenancy_tenant. The passwords are for local
-- use only.
CREATE ROLE notekeeper_owner LOGIN PASSWORD 'notekeeper-owner' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE notekeeper_app LOGIN PASSWORD 'notekeeper-app' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE tenancy_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
CREATE DATABASE notekeeper OWNER notekeeper_owner;
REVOKE TEMPORARY ON DATABASE notekeeper FROM PUBLIC;
GRANT tenancy_tenant TO notekeeper_app, notekeeper_owner;
