// Package pgstore is a tenancy.Store on PostgreSQL, using pgx.
//
// The tenant records live in a control schema ("tenancy" by default) in
// three tables: tenants; tenant_names, which holds every identifier and
// alias under one primary key, so that the database itself keeps an alias
// from ever equalling another tenant's identifier or alias, however many
// writes race; and tenant_domains, the custom domains with their
// verification tokens and state (GetByDomain finds verified ones only).
// Lookups take one round trip; writes that touch several tables run in one
// transaction; unique violations come back as *tenancy.DuplicateError;
// every statement names its tables through pgx.Identifier, and no key from
// a request is ever part of SQL text.
//
// # Setup
//
// New does not create tables. Run Migrate first, once per deploy or at
// start (it is idempotent and safe to run from several instances at once),
// with a role that may create the schema or owns it:
//
//	if err := pgstore.Migrate(ctx, migrationPool, pgstore.Config{}); err != nil {
//		return err
//	}
//	store, err := pgstore.New(ctx, appPool, pgstore.Config{})
//
// The application's role need not own anything. It needs:
//
//	GRANT USAGE ON SCHEMA tenancy TO app;
//	GRANT SELECT, INSERT, UPDATE, DELETE ON tenancy.tenants, tenancy.tenant_names, tenancy.tenant_domains, tenancy.tenant_secrets TO app;
//
// New returns an error wrapping ErrNotMigrated when the tables are missing,
// and says which grants are needed when the role may not read them.
//
// Migrations are goose SQL files embedded in the package; the version table
// and the migration lock live in the control schema too
// (store_migrations, store_lock), so the store never writes to public.
package pgstore
