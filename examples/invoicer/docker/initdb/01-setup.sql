-- Runs once, when the postgres volume is first initialized, as the
-- superuser: the output of
--
--   DATABASE_URL=postgres://invoicer_app:invoicer-app@postgres:5432/invoicer \
--   MIGRATION_DATABASE_URL=postgres://invoicer_owner:invoicer-owner@postgres:5432/invoicer \
--   invoicer setup
--
-- Requests connect as invoicer_app (not superuser, no BYPASSRLS, owns
-- nothing); migrations as invoicer_owner, which owns the database;
-- tenant statements switch to tenancy_tenant. The passwords are for local
-- use only.
CREATE ROLE invoicer_owner LOGIN PASSWORD 'invoicer-owner' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE invoicer_app LOGIN PASSWORD 'invoicer-app' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE tenancy_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
CREATE DATABASE invoicer OWNER invoicer_owner;
REVOKE TEMPORARY ON DATABASE invoicer FROM PUBLIC;
GRANT tenancy_tenant TO invoicer_app, invoicer_owner;
