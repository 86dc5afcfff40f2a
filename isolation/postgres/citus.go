package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// On Citus (Config.Citus), the tenant is set with SET LOCAL inside an
// explicit transaction: Citus forwards SET commands to the workers it opens
// connections to for the transaction (with citus.propagate_set_commands set
// to 'local', which is set the same way, for the transaction only), and
// never set_config, so a policy read on a worker would see no tenant (reads
// return nothing, inserts fail the policy). SET takes no parameters: the
// values are validated literals. Citus connects to the workers as the
// current role, so the tenant role must be able to log in.

// citusSetup returns the statements that open a tenant's transaction on
// Citus, in order: BEGIN (with opts), then the SET LOCAL statements.
func (s *scope) citusSetup(begin string) []string {
	return []string{
		begin,
		"SET LOCAL citus.propagate_set_commands TO 'local'",
		"SET LOCAL " + TenantSetting + " TO " + quoteLiteral(s.tenantID),
		"SET LOCAL ROLE " + quoteIdent(s.role),
		// The path is a list of quoted identifiers (pgx.Identifier.Sanitize)
		// or the server's own default, as current_setting returned it.
		"SET LOCAL search_path TO " + s.path,
	}
}

// citusBeginSQL is beginSQL on Citus: the statements of citusSetup as one
// simple query, one round trip.
func (s *scope) citusBeginSQL(opts pgx.TxOptions) (string, error) {
	begin, err := beginClause(opts)
	if err != nil {
		return "", err
	}
	return strings.Join(s.citusSetup(begin), "; "), nil
}

// ensureLogin makes sure role may log in, as Citus needs of the role its
// statements run as: it opens the workers' connections as that role.
func ensureLogin(ctx context.Context, db execer, role string) error {
	var login bool
	if err := db.QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", simple, role).Scan(&login); err != nil {
		return fmt.Errorf("tenancy: inspect tenant role %s: %w", role, err)
	}
	if login {
		return nil
	}
	alter := "ALTER ROLE " + quoteIdent(role) + " LOGIN"
	if _, err := db.Exec(ctx, alter); err != nil {
		if pgCode(err) == "42501" {
			return &SetupError{
				Problem: fmt.Sprintf("on Citus the tenant role %s must be able to log in (Citus connects to the workers as it), and this user may not allow it", role),
				SQL:     []string{alter + ";"},
			}
		}
		return fmt.Errorf("tenancy: let tenant role %s log in: %w", role, err)
	}
	return nil
}

// DistributeTable returns the statement that makes table, created with the
// tenant column (TenantIDColumn) leading its keys (PrimaryKey, ForeignKey),
// a Citus distributed table sharded on the tenant: each tenant's rows live
// on one worker, and its statements are routed there. Colocated with the
// other tables distributed on the tenant, so keys between them hold.
func DistributeTable(table string) string {
	return "SELECT create_distributed_table(" + quoteLiteral(table) + ", " + quoteLiteral(DefaultTenantColumn) + ")"
}

// ReferenceTable returns the statement that makes table, shared by every
// tenant (plans, currencies), a Citus reference table: copied to every
// worker, so tenant tables may join it and refer to it.
func ReferenceTable(table string) string {
	return "SELECT create_reference_table(" + quoteLiteral(table) + ")"
}

// DistributeSchema returns the statement that makes schema a distributed
// schema (Citus schema-based sharding): its tables, and those created in it
// later, live together on one worker, and statements whose search path is
// the schema are routed there. Run it after Schema.Initialize, which seals
// the schema's tables.
func DistributeSchema(schema string) string {
	return "SELECT citus_schema_distribute(" + quoteLiteral(schema) + ")"
}

// checkCitusShards, on a Citus coordinator, compares each shard of a
// distributed tenant table with the table: row-level security enabled and
// forced, and as many policies. Statements routed to a worker run against
// the shard, under the shard's policies, so a shard that lacks them (a
// policy created with citus.enable_ddl_propagation off, say) leaks what the
// coordinator's table would not.
func (d *doctor) checkCitusShards(ctx context.Context) error {
	rs, err := d.db.Query(ctx, "SELECT extname::text FROM pg_catalog.pg_extension WHERE extname = 'citus'", simple)
	found, err := collect(rs, err, scanString)
	if err != nil || len(found) == 0 {
		return err
	}
	rows, err := d.query(ctx, `WITH `+tenantTablesCTE+`,
want AS (
SELECT tt.oid, format('%I.%I', tt.nspname, tt.relname) AS name,
       c.relrowsecurity AND c.relforcerowsecurity AS guarded,
       (SELECT count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid = tt.oid) AS policies
FROM tt JOIN pg_catalog.pg_class c ON c.oid = tt.oid
WHERE tt.oid IN (SELECT logicalrelid FROM pg_dist_partition))
SELECT w.name, s.shardid, s.success, s.result, w.guarded::text || ':' || w.policies
FROM want w, run_command_on_shards(w.oid::regclass,
  $q$SELECT (c.relrowsecurity AND c.relforcerowsecurity)::text || ':' || (SELECT count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid)
     FROM pg_catalog.pg_class c WHERE c.oid = '%s'::regclass$q$) s
ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	defer rows.Close()
	shards := 0
	for rows.Next() {
		var (
			table, result, want string
			shard               int64
			ok                  bool
		)
		if err := rows.Scan(&table, &shard, &ok, &result, &want); err != nil {
			return err
		}
		shards++
		switch {
		case !ok:
			d.add(FindingShardPolicy, fmt.Sprintf("%s shard %d", table, shard), "could not inspect the shard: %s", result)
		case result != want:
			d.add(FindingShardPolicy, fmt.Sprintf("%s shard %d", table, shard),
				"the shard's row-level security (enabled and forced, policies) is %s, the table's %s: statements routed to the worker run under the shard's", result, want)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	d.r.Info = append(d.r.Info, fmt.Sprintf("Citus coordinator: %d shards of distributed tenant tables inspected", shards))
	return nil
}
