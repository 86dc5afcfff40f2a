// Package sqlitestore is a tenancy.Store on SQLite, using the pure-Go
// driver modernc.org/sqlite (driver name "sqlite"): tenant records in a
// local file, with no server to run.
//
// Open opens or creates the file with WAL journaling, a busy timeout,
// foreign keys on and immediate write transactions (see DSN), and brings
// its tables up to date with embedded goose migrations; several processes
// opening one file at once are serialized by a lock row. New does the same
// on a handle the caller opened.
//
//	store, err := sqlitestore.Open(ctx, "data/tenants.db", sqlitestore.Config{})
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//
// Timestamps are stored as UTC text with microseconds, so they round-trip
// exactly; identifiers compare byte by byte, so List orders and pages as
// every other store does. Identifiers and aliases share one table under one
// primary key, so no alias can equal another tenant's identifier or alias;
// custom domains carry their verification token and state, and only
// verified ones resolve. Unique violations come back as
// *tenancy.DuplicateError naming the ID, identifier, alias or domain.
package sqlitestore
