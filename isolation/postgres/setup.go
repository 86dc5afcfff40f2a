package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// SetupConfig names the roles and the database of a service that runs on
// row-level security (or schema per tenant) with least privilege: requests
// connect as AppRole, which owns nothing; migrations connect as OwnerRole,
// which owns the database and its tables; tenant statements run as
// TenantRole, which both login roles may switch to.
type SetupConfig struct {
	// Database is the service's database. Required.
	Database string
	// OwnerRole owns Database and runs migrations and provisioning (the
	// user of a service's MIGRATION_DATABASE_URL). It is created LOGIN
	// NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE. Required.
	OwnerRole string
	// OwnerPassword is OwnerRole's password when SetupSQL creates it.
	// Default none: the server's other authentication methods apply.
	OwnerPassword string
	// AppRole is the role requests connect as (the user of DATABASE_URL).
	// It is created like OwnerRole and owns nothing. Required, and
	// different from OwnerRole: a request role that owned the tables could
	// change their policies.
	AppRole string
	// AppPassword is AppRole's password when SetupSQL creates it. Default
	// none.
	AppPassword string
	// TenantRole is the role tenant statements run as (Config.Role). It is
	// created NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
	// NOINHERIT and granted to AppRole and OwnerRole. Default DefaultRole.
	TenantRole string
}

// withDefaults checks c and fills in its defaults.
func (c SetupConfig) withDefaults() (SetupConfig, error) {
	if c.TenantRole == "" {
		c.TenantRole = DefaultRole
	}
	var errs []error
	for _, f := range []struct{ name, value string }{
		{"Database", c.Database}, {"OwnerRole", c.OwnerRole}, {"AppRole", c.AppRole}, {"TenantRole", c.TenantRole},
	} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("%s is required", f.name))
		} else if len(f.value) > 63 || strings.ContainsRune(f.value, 0) {
			errs = append(errs, fmt.Errorf("%s must be 1 to 63 bytes without NUL", f.name))
		}
	}
	if !validRoleName(c.TenantRole) {
		errs = append(errs, fmt.Errorf("TenantRole %q must be lowercase letters, digits and '_'", c.TenantRole))
	}
	if c.AppRole != "" && c.AppRole == c.OwnerRole {
		errs = append(errs, errors.New("AppRole must differ from OwnerRole: requests must not connect as the tables' owner"))
	}
	if c.TenantRole == c.AppRole || c.TenantRole == c.OwnerRole {
		errs = append(errs, errors.New("TenantRole must differ from AppRole and OwnerRole: it may not log in"))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("tenancy: setup: %w", errors.Join(errs...))
	}
	return c, nil
}

// SetupSQL returns the statements that set up cfg on a server that has none
// of it yet, in order, each ending in a semicolon, for a superuser (or a
// role with CREATEROLE and CREATEDB) to run in any database of the server:
//
//	CREATE ROLE owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
//	CREATE ROLE app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
//	CREATE ROLE tenancy_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
//	CREATE DATABASE notes OWNER owner;
//	REVOKE TEMPORARY ON DATABASE notes FROM PUBLIC;
//	GRANT tenancy_tenant TO app, owner;
//
// The tenant role is granted to both login roles by the administrator, so
// that neither needs the ADMIN OPTION on it (PostgreSQL 16 and later require
// it to grant a role on), and the providers then find nothing left to do
// when they start (see EnsureRole). Names are quoted only when they need
// it. Setup applies the same statements to a server that may have some of
// them already, and PendingSetup lists those still needed.
func SetupSQL(cfg SetupConfig) ([]string, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return []string{
		createLoginSQL(cfg.OwnerRole, cfg.OwnerPassword),
		createLoginSQL(cfg.AppRole, cfg.AppPassword),
		createTenantRoleSQL(cfg.TenantRole),
		"CREATE DATABASE " + quoteIdent(cfg.Database) + " OWNER " + quoteIdent(cfg.OwnerRole) + ";",
		revokeTempSQL(cfg.Database, ""),
		"GRANT " + cfg.TenantRole + " TO " + quoteIdent(cfg.AppRole) + ", " + quoteIdent(cfg.OwnerRole) + ";",
	}, nil
}

func createLoginSQL(role, password string) string {
	s := "CREATE ROLE " + quoteIdent(role) + " LOGIN"
	if password != "" {
		s += " PASSWORD " + quoteLiteral(password)
	}
	return s + " NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;"
}

func createTenantRoleSQL(role string) string {
	return "CREATE ROLE " + role + " NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;"
}

// revokeTempSQL takes TEMPORARY from PUBLIC and, when it holds the
// privilege by a grant of its own, from role.
func revokeTempSQL(database, role string) string {
	s := "REVOKE TEMPORARY ON DATABASE " + quoteIdent(database) + " FROM PUBLIC"
	if role != "" {
		s += ", " + role
	}
	return s + ";"
}

// PendingSetup returns the statements of SetupSQL that db's server still
// needs, in the same order: the roles and the database that do not exist,
// ALTER ROLE for a tenant role that could log in or bypass row-level
// security, the TEMPORARY revoke while the tenant role may create temporary
// tables in the database, and the tenant role's grant to the login roles
// that are not members yet. None means the server is set up. db may be any
// role's connection to any database of the server: it only reads the
// catalogs.
func PendingSetup(ctx context.Context, db execer, cfg SetupConfig) ([]string, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var (
		ownerExists, appExists, tenantExists, dbExists bool
		tenantUnsafe, tempHeld, tempDirect             bool
		appMember, ownerMember                         bool
	)
	err = db.QueryRow(ctx, `WITH
  o AS (SELECT oid FROM pg_roles WHERE rolname = $1),
  a AS (SELECT oid FROM pg_roles WHERE rolname = $2),
  t AS (SELECT oid, rolcanlogin OR rolsuper OR rolbypassrls AS unsafe FROM pg_roles WHERE rolname = $3),
  d AS (SELECT oid, datacl FROM pg_database WHERE datname = $4)
SELECT
  EXISTS (SELECT FROM o), EXISTS (SELECT FROM a), EXISTS (SELECT FROM t), EXISTS (SELECT FROM d),
  coalesce((SELECT unsafe FROM t), false),
  CASE WHEN NOT EXISTS (SELECT FROM d) THEN true
       WHEN EXISTS (SELECT FROM t) THEN has_database_privilege((SELECT oid FROM t), (SELECT oid FROM d), 'TEMPORARY')
       ELSE has_database_privilege('public', (SELECT oid FROM d), 'TEMPORARY') END,
  EXISTS (SELECT FROM d CROSS JOIN LATERAL aclexplode(d.datacl) x
    WHERE x.grantee = (SELECT oid FROM t) AND x.privilege_type = 'TEMPORARY'),
  coalesce((SELECT pg_has_role((SELECT oid FROM a), (SELECT oid FROM t), 'MEMBER') WHERE EXISTS (SELECT FROM a) AND EXISTS (SELECT FROM t)), false),
  coalesce((SELECT pg_has_role((SELECT oid FROM o), (SELECT oid FROM t), 'MEMBER') WHERE EXISTS (SELECT FROM o) AND EXISTS (SELECT FROM t)), false)`,
		simple, cfg.OwnerRole, cfg.AppRole, cfg.TenantRole, cfg.Database).Scan(
		&ownerExists, &appExists, &tenantExists, &dbExists, &tenantUnsafe, &tempHeld, &tempDirect, &appMember, &ownerMember)
	if err != nil {
		return nil, fmt.Errorf("tenancy: setup: inspect the server: %w", err)
	}
	var sql []string
	if !ownerExists {
		sql = append(sql, createLoginSQL(cfg.OwnerRole, cfg.OwnerPassword))
	}
	if !appExists {
		sql = append(sql, createLoginSQL(cfg.AppRole, cfg.AppPassword))
	}
	switch {
	case !tenantExists:
		sql = append(sql, createTenantRoleSQL(cfg.TenantRole))
	case tenantUnsafe:
		sql = append(sql, "ALTER ROLE "+cfg.TenantRole+" NOLOGIN NOSUPERUSER NOBYPASSRLS;")
	}
	if !dbExists {
		sql = append(sql, "CREATE DATABASE "+quoteIdent(cfg.Database)+" OWNER "+quoteIdent(cfg.OwnerRole)+";")
	}
	if tempHeld {
		direct := ""
		if tempDirect {
			direct = cfg.TenantRole
		}
		sql = append(sql, revokeTempSQL(cfg.Database, direct))
	}
	var grantees []string
	if !appMember {
		grantees = append(grantees, quoteIdent(cfg.AppRole))
	}
	if !ownerMember {
		grantees = append(grantees, quoteIdent(cfg.OwnerRole))
	}
	if len(grantees) > 0 {
		sql = append(sql, "GRANT "+cfg.TenantRole+" TO "+strings.Join(grantees, ", ")+";")
	}
	return sql, nil
}

// Setup runs PendingSetup's statements on db, which must connect as a
// superuser or a role with CREATEROLE and CREATEDB, and returns them. It
// changes nothing that is set up already, so it may run at every deploy;
// roles that exist keep their passwords and attributes (but a tenant role
// that could log in or bypass row-level security loses that).
func Setup(ctx context.Context, db execer, cfg SetupConfig) ([]string, error) {
	sql, err := PendingSetup(ctx, db, cfg)
	if err != nil {
		return nil, err
	}
	for i, s := range sql {
		if _, err := db.Exec(ctx, s); err != nil {
			return sql[:i], fmt.Errorf("tenancy: setup: %s: %w", redactPassword(strings.TrimSuffix(s, ";")), err)
		}
	}
	return sql, nil
}

// redactPassword hides the password of a CREATE ROLE statement, for error
// messages.
func redactPassword(stmt string) string {
	i := strings.Index(stmt, " PASSWORD '")
	if i < 0 {
		return stmt
	}
	rest := stmt[i+len(" PASSWORD '"):]
	for j := 0; j < len(rest); j++ {
		if rest[j] != '\'' {
			continue
		}
		if j+1 < len(rest) && rest[j+1] == '\'' {
			j++
			continue
		}
		return stmt[:i] + " PASSWORD '***'" + rest[j+1:]
	}
	return stmt[:i] + " PASSWORD '***'"
}
