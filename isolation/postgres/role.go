package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultRole is the role tenant statements run as unless Config.Role says
// otherwise.
const DefaultRole = "tenancy_tenant"

// SetupError reports that the connection's user may not set up the tenant
// role. SQL holds the statements an administrator must run, in order.
type SetupError struct {
	Problem string
	SQL     []string
}

func (e *SetupError) Error() string {
	if len(e.SQL) == 0 {
		return "tenancy: " + e.Problem
	}
	return fmt.Sprintf("tenancy: %s; ask an administrator to run:\n  %s", e.Problem, strings.Join(e.SQL, "\n  "))
}

// execer is the part of a pool, connection or transaction that setup needs.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// validRoleName accepts role names that need no quoting: lowercase letters,
// digits and '_', starting with a letter, at most 63 bytes.
func validRoleName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// EnsureRole makes role usable as the tenant role from db's connections: it
// creates it (NOLOGIN, NOSUPERUSER, NOBYPASSRLS) when missing and grants it
// to the connecting user, who must be a member to switch to it, and takes
// the TEMPORARY privilege on the database from PUBLIC (and from the role):
// a temporary table a tenant statement created would outlive it on the
// connection. When the user may not do any of this, the error is a
// *SetupError with the SQL an administrator must run. A role that is
// superuser or has BYPASSRLS is refused: statements run as it would bypass
// row-level security.
func EnsureRole(ctx context.Context, db execer, role string) error {
	if err := ensureMember(ctx, db, role); err != nil {
		return err
	}
	return ensureNoTemp(ctx, db, role)
}

func ensureMember(ctx context.Context, db execer, role string) error {
	if !validRoleName(role) {
		return fmt.Errorf("tenancy: tenant role name %q must be lowercase letters, digits and '_'", role)
	}
	ident := role // validated: needs no quoting
	for attempt := 0; ; attempt++ {
		var (
			user                  string
			exists, super, bypass bool
			member, userSuper     bool
		)
		err := db.QueryRow(ctx, `SELECT current_user, r.oid IS NOT NULL, coalesce(r.rolsuper, false), coalesce(r.rolbypassrls, false),
	coalesce(pg_has_role(current_user, r.oid, 'MEMBER'), false), (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
FROM (SELECT 1) one LEFT JOIN pg_roles r ON r.rolname = $1`, simple, role).Scan(&user, &exists, &super, &bypass, &member, &userSuper)
		if err != nil {
			return fmt.Errorf("tenancy: inspect tenant role: %w", err)
		}
		userIdent := quoteIdent(user)
		if !exists {
			_, err := db.Exec(ctx, "CREATE ROLE "+ident+" NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT")
			switch {
			case err == nil:
				continue
			case racing(err) && attempt < 5: // created meanwhile by another process
				continue
			case pgCode(err) == "42501":
				return &SetupError{
					Problem: fmt.Sprintf("tenant role %s does not exist and user %s may not create it", role, user),
					SQL: []string{
						"CREATE ROLE " + ident + " NOLOGIN NOSUPERUSER NOBYPASSRLS;",
						"GRANT " + ident + " TO " + userIdent + ";",
					},
				}
			default:
				return fmt.Errorf("tenancy: create tenant role %s: %w", role, err)
			}
		}
		if super || bypass {
			return &SetupError{
				Problem: fmt.Sprintf("tenant role %s is superuser or has BYPASSRLS, so row-level security would not apply to it", role),
				SQL:     []string{"ALTER ROLE " + ident + " NOSUPERUSER NOBYPASSRLS;"},
			}
		}
		if !member && !userSuper {
			_, err := db.Exec(ctx, "GRANT "+ident+" TO CURRENT_USER")
			switch {
			case err == nil:
				return nil
			case racing(err) && attempt < 5:
				continue
			case pgCode(err) == "42501" || pgCode(err) == "0LP01":
				return &SetupError{
					Problem: fmt.Sprintf("user %s is not a member of tenant role %s and may not grant it", user, role),
					SQL:     []string{"GRANT " + ident + " TO " + userIdent + ";"},
				}
			default:
				return fmt.Errorf("tenancy: grant tenant role %s: %w", role, err)
			}
		}
		return nil
	}
}

// ensureNoTemp takes the TEMPORARY privilege on db's database from PUBLIC
// and role, when role holds it and the connecting user may take it.
func ensureNoTemp(ctx context.Context, db execer, role string) error {
	for attempt := 0; ; attempt++ {
		var temp bool
		var database string
		err := db.QueryRow(ctx, "SELECT has_database_privilege($1, current_database(), 'TEMPORARY'), current_database()", simple, role).Scan(&temp, &database)
		if err != nil {
			return fmt.Errorf("tenancy: inspect the tenant role's privileges: %w", err)
		}
		if !temp {
			return nil
		}
		revoke := "REVOKE TEMPORARY ON DATABASE " + quoteIdent(database) + " FROM PUBLIC, " + role
		if attempt == 0 {
			// Without ownership of the database this revokes nothing, with
			// a warning: the check above then fails again.
			if _, err := db.Exec(ctx, revoke); err == nil || (racing(err) && attempt < 5) {
				continue
			}
		}
		return &SetupError{
			Problem: fmt.Sprintf("tenant role %s may create temporary tables in database %s: a temporary table one tenant's statement created would stay on the connection for the next tenant", role, database),
			SQL:     []string{revoke + ";"},
		}
	}
}

// GrantSchema grants role what tenant statements need in schema: USAGE on the
// schema, SELECT, INSERT, UPDATE and DELETE on its tables, and use of its
// sequences, now and (through default privileges) for tables the connecting
// user creates later. Migrations call it after changing a target, since the
// migration user may differ from the one that created the schema.
func GrantSchema(ctx context.Context, db execer, schema, role string) error {
	sql, err := grantSQL(schema, role)
	if err != nil {
		return err
	}
	if err := execCatalog(ctx, db, sql); err != nil {
		return fmt.Errorf("tenancy: grant tenant role %s on schema %s: %w", role, schema, err)
	}
	return nil
}

// execCatalog runs a statement that changes catalog rows another process
// may be changing at the same time (two instances provisioning one tenant,
// say), retrying what PostgreSQL reports for such races: it is idempotent.
func execCatalog(ctx context.Context, db execer, sql string) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if _, err = db.Exec(ctx, sql); err == nil || !racing(err) {
			return err
		}
	}
	return err
}

func grantSQL(schema, role string) (string, error) {
	if !validRoleName(role) {
		return "", fmt.Errorf("tenancy: tenant role name %q must be lowercase letters, digits and '_'", role)
	}
	s, r := pgx.Identifier{schema}.Sanitize(), role
	return "GRANT USAGE ON SCHEMA " + s + " TO " + r + ";" +
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + s + " TO " + r + ";" +
		"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA " + s + " TO " + r + ";" +
		"ALTER DEFAULT PRIVILEGES IN SCHEMA " + s + " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO " + r + ";" +
		"ALTER DEFAULT PRIVILEGES IN SCHEMA " + s + " GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO " + r, nil
}

// quoteIdent quotes a name only when it needs it, so that printed SQL reads
// as an administrator would type it.
func quoteIdent(name string) string {
	if validRoleName(name) {
		return name
	}
	return pgx.Identifier{name}.Sanitize()
}

// racing reports errors that concurrent changes to the same role raise:
// duplicate role or key, or "tuple concurrently updated".
func racing(err error) bool {
	switch pgCode(err) {
	case "42710", "23505", "XX000", "40001":
		return true
	}
	return false
}

// sqlExecer adapts a *sql.DB to execer, for migration handles.
type sqlExecer struct{ db *sql.DB }

func (s sqlExecer) Exec(ctx context.Context, query string, args ...any) (pgconn.CommandTag, error) {
	res, err := s.db.ExecContext(ctx, query, withoutMode(args)...)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	n, _ := res.RowsAffected()
	return pgconn.NewCommandTag(fmt.Sprintf("EXEC %d", n)), nil
}

func (s sqlExecer) QueryRow(ctx context.Context, query string, args ...any) pgx.Row {
	return s.db.QueryRowContext(ctx, query, withoutMode(args)...)
}

// simple asks pgx to send a setup statement with the simple protocol, so
// that it leaves no prepared statement on a pooled connection.
var simple = pgx.QueryExecModeSimpleProtocol

// withoutMode drops a leading pgx exec mode, which database/sql would
// take for an argument.
func withoutMode(args []any) []any {
	if len(args) > 0 {
		if _, ok := args[0].(pgx.QueryExecMode); ok {
			return args[1:]
		}
	}
	return args
}
