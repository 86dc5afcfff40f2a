// Command stmtcost measures what PostgreSQL spends on the tenant statement
// and the tenant schema's seal, one variant at a time, on one connection:
// each request is one pipeline of the tenant statement (none for the
// baseline) and a read by primary key, as the library's one-shot calls send
// them. The variants separate what the isolation hardening changed: the
// tenant statement prepared once per connection or sent unnamed every time,
// with or without the search path ending in pg_temp, on tenant schemas
// sealed or not. Run it from the repository root:
//
//	go run ./bench/stmtcost                         # all variants, 3 repetitions
//	go run ./bench/stmtcost -only rls -perf DIR     # also perf record each backend into DIR
//
// It prints the backend's CPU time per request (from /proc/<pid>/schedstat,
// so PostgreSQL must run on this machine), the wall time, and how many
// generic and custom plans the connection's prepared statements used. It
// creates a scratch database and a login role, and drops both at the end.
// The DSN (-dsn, default DATABASE_URL or the local server) must name a role
// that may create databases and roles.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The tenant statements: before the hardening (tenant and role, prepared
// once per connection), and after it (the search path too, functions
// qualified, sent unnamed every time).
const (
	setTenantRole = "SELECT set_config('" + postgres.TenantSetting + "', $1, true), set_config('role', $2, true)"
	setTenantPath = "SELECT pg_catalog.set_config('" + postgres.TenantSetting + "', $1, true), pg_catalog.set_config('role', $2, true), pg_catalog.set_config('search_path', $3, true)"
)

// rowsPer is the rows per tenant of the scratch database.
const rowsPer = 100

type config struct {
	dsn     string
	tenants int
	n, reps int
	only    string
	perfDir string
}

func main() {
	var c config
	flag.StringVar(&c.dsn, "dsn", envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL URL of a role that may create databases and roles")
	flag.IntVar(&c.tenants, "tenants", 100, "tenants, each with its rows in the shared tables and two schemas (sealed and not)")
	flag.IntVar(&c.n, "n", 8000, "measured requests per variant and repetition")
	flag.IntVar(&c.reps, "reps", 3, "repetitions, each running every variant once")
	flag.StringVar(&c.only, "only", "", "run only the variants whose name contains this")
	flag.StringVar(&c.perfDir, "perf", "", "perf record each variant's backend into this directory (v<variant>-rep<rep>.data)")
	flag.Parse()
	if err := run(context.Background(), c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "stmtcost:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// variant is one way of sending a request.
type variant struct {
	name string
	// path is the connection's search_path ("" for the server default).
	path string
	// tenant is the tenant statement ("" for none); named prepares it once
	// per connection instead of sending it unnamed every time.
	tenant string
	named  bool
	// args returns the tenant statement's arguments for tenant i.
	args func(i int) [][]byte
	// query and its arguments for tenant i's row id.
	query     string
	queryArgs func(i int, id string) [][]byte
}

func variants() []variant {
	role := []byte(postgres.DefaultRole)
	tenantRole := func(i int) [][]byte { return [][]byte{[]byte(fixture.ID(i)), role} }
	withPath := func(path func(i int) string) func(i int) [][]byte {
		return func(i int) [][]byte { return [][]byte{[]byte(fixture.ID(i)), role, []byte(path(i))} }
	}
	schema := func(prefix, suffix string) func(i int) string {
		return func(i int) string {
			n, _ := isolation.Name(prefix, fixture.Identifier(i))
			return `"` + n + `"` + suffix
		}
	}
	rlsPath := func(int) string { return "m_rls, pg_temp" }
	byID := func(_ int, id string) [][]byte { return [][]byte{[]byte(id)} }
	return []variant{
		{name: "baseline: plain table, tenant_id = $2", path: "m_plain", query: fixture.PlainGet,
			queryArgs: func(i int, id string) [][]byte { return [][]byte{[]byte(id), []byte(fixture.ID(i))} }},
		{name: "rls before: prepared once, tenant+role", path: "m_rls", tenant: setTenantRole, named: true, args: tenantRole, query: fixture.TenantGet, queryArgs: byID},
		{name: "rls: unnamed, tenant+role", path: "m_rls", tenant: setTenantRole, args: tenantRole, query: fixture.TenantGet, queryArgs: byID},
		{name: "rls: prepared once, tenant+role+path", path: "m_rls", tenant: setTenantPath, named: true, args: withPath(rlsPath), query: fixture.TenantGet, queryArgs: byID},
		{name: "rls after: unnamed, tenant+role+path", path: "m_rls", tenant: setTenantPath, args: withPath(rlsPath), query: fixture.TenantGet, queryArgs: byID},
		{name: "schema before: prepared once, unsealed", tenant: setTenantPath, named: true, args: withPath(schema("u_", "")), query: fixture.TenantGet, queryArgs: byID},
		{name: "schema: unnamed, path+pg_temp, unsealed", tenant: setTenantPath, args: withPath(schema("u_", ", pg_temp")), query: fixture.TenantGet, queryArgs: byID},
		{name: "schema: prepared once, path+pg_temp, sealed", tenant: setTenantPath, named: true, args: withPath(schema("s_", ", pg_temp")), query: fixture.TenantGet, queryArgs: byID},
		{name: "schema after: unnamed, path+pg_temp, sealed", tenant: setTenantPath, args: withPath(schema("s_", ", pg_temp")), query: fixture.TenantGet, queryArgs: byID},
	}
}

func run(ctx context.Context, c config, out io.Writer) (err error) {
	if c.n < 1 || c.reps < 1 || c.tenants < 1 || c.tenants > 9999 {
		return errors.New("-n and -reps must be at least 1, -tenants 1 to 9999")
	}
	admin, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	db, user := "tenancy_stmtcost_"+suffix, "tenancy_stmtcost_"+suffix
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return err
	}
	defer func() {
		dctx := context.WithoutCancel(ctx)
		_, derr := admin.Exec(dctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		if derr == nil {
			_, derr = admin.Exec(dctx, "DROP ROLE IF EXISTS "+user)
		}
		err = errors.Join(err, derr)
	}()
	ids, err := seed(ctx, c.dsn, db, user, c.tenants)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}

	vs := variants()
	res := make([][]float64, len(vs))
	for rep := range c.reps {
		for vi, v := range vs {
			if !strings.Contains(v.name, c.only) {
				continue
			}
			us, err := measure(ctx, c, db, user, v, ids, fmt.Sprintf("v%d-rep%d", vi, rep), rep, out)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			res[vi] = append(res[vi], us)
		}
	}
	fmt.Fprintln(out, "\nmedian backend CPU per request:")
	for vi, v := range vs {
		if r := slices.Clone(res[vi]); len(r) > 0 {
			slices.Sort(r)
			fmt.Fprintf(out, "  %-46s %6.1f µs  (runs %s)\n", v.name, r[len(r)/2], fmtRuns(res[vi]))
		}
	}
	return nil
}

func fmtRuns(r []float64) string {
	s := make([]string, len(r))
	for i, v := range r {
		s[i] = strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strings.Join(s, " ")
}

// seed creates the tables every variant reads, as the DSN's role, and the
// login role the variants connect as. It returns tenant i's row IDs at
// ids[i].
func seed(ctx context.Context, dsn, db, user string, tenants int) ([][]string, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.Database = db
	own, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer own.Close(context.WithoutCancel(ctx))
	execAll := func(sqls ...string) error {
		for _, s := range sqls {
			if _, err := own.Exec(ctx, s); err != nil {
				return fmt.Errorf("%.60s: %w", s, err)
			}
		}
		return nil
	}
	if err := postgres.EnsureRole(ctx, own, postgres.DefaultRole); err != nil {
		return nil, err
	}
	ids := make([][]string, tenants)
	var rows [][]any
	for i := range tenants {
		ids[i] = make([]string, rowsPer)
		for k := range rowsPer {
			id := uuid.New()
			ids[i][k] = id.String()
			rows = append(rows, []any{id, "note", "body", time.Now(), fixture.ID(i)})
		}
	}
	cols := []string{"id", "title", "body", "created_at", "tenant_id"}
	fill := func(schema, table string, ddl, rls []string, rows [][]any, sealFor string) error {
		if err := execAll("CREATE SCHEMA "+schema, "SET search_path TO "+schema); err != nil {
			return err
		}
		if err := execAll(ddl...); err != nil {
			return err
		}
		if _, err := own.CopyFrom(ctx, pgx.Identifier{schema, table}, cols, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		if err := execAll(rls...); err != nil {
			return err
		}
		if err := postgres.GrantSchema(ctx, own, schema, postgres.DefaultRole); err != nil {
			return err
		}
		if sealFor != "" {
			return postgres.SealSchema(ctx, own, schema, sealFor)
		}
		return nil
	}
	if err := fill("m_plain", fixture.PlainTable, fixture.PlainDDL, nil, rows, ""); err != nil {
		return nil, err
	}
	if err := fill("m_rls", "notes", fixture.NotesDDL, fixture.NotesRLS, rows, ""); err != nil {
		return nil, err
	}
	for _, prefix := range []string{"u_", "s_"} {
		for i := range tenants {
			name, err := isolation.Name(prefix, fixture.Identifier(i))
			if err != nil {
				return nil, err
			}
			sealFor := ""
			if prefix == "s_" {
				sealFor = fixture.ID(i)
			}
			if err := fill(name, "notes", fixture.NotesDDL, fixture.NotesRLS, rows[i*rowsPer:(i+1)*rowsPer], sealFor); err != nil {
				return nil, err
			}
		}
	}
	err = execAll("RESET search_path", "ANALYZE",
		"CREATE ROLE "+user+" LOGIN NOSUPERUSER NOBYPASSRLS", "GRANT "+postgres.DefaultRole+" TO "+user,
		"GRANT USAGE ON SCHEMA m_plain TO "+user, "GRANT SELECT ON m_plain."+fixture.PlainTable+" TO "+user)
	return ids, err
}

// measure runs c.n requests of v on a new connection as user, after a
// warm-up that prepares every statement, and returns the backend's CPU
// microseconds per request.
func measure(ctx context.Context, c config, db, user string, v variant, ids [][]string, label string, rep int, out io.Writer) (float64, error) {
	cfg, err := pgx.ParseConfig(c.dsn)
	if err != nil {
		return 0, err
	}
	cfg.Database, cfg.User, cfg.Password = db, user, ""
	if v.path != "" {
		cfg.RuntimeParams["search_path"] = v.path
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	pc := conn.PgConn()
	prepared := map[string]bool{}
	tenants := len(ids)
	request := func(it int) error {
		i := it % tenants
		id := ids[i][(it/tenants)%rowsPer]
		p := pc.StartPipeline(ctx)
		// The read is prepared per search path, as the library's executor
		// does.
		qname := "q"
		if v.tenant == setTenantPath {
			qname += string(v.args(i)[2])
		}
		want := 1
		if v.tenant != "" {
			want = 2
			if !v.named {
				p.SendQueryParams(v.tenant, v.args(i), nil, nil, nil)
			} else {
				if !prepared["t"] {
					p.SendPrepare("t", v.tenant, nil)
					prepared["t"] = true
				}
				p.SendQueryPrepared("t", v.args(i), nil, nil)
			}
		}
		if !prepared[qname] {
			p.SendPrepare(qname, v.query, nil)
			prepared[qname] = true
		}
		p.SendQueryPrepared(qname, v.queryArgs(i, id), nil, nil)
		if err := p.Sync(); err != nil {
			return err
		}
		got := 0
		for {
			r, err := p.GetResults()
			if err != nil {
				return err
			}
			if _, ok := r.(*pgconn.PipelineSync); ok {
				break
			}
			if rr, ok := r.(*pgconn.ResultReader); ok {
				for rr.NextRow() {
					got++
				}
				if _, err := rr.Close(); err != nil {
					return err
				}
			}
		}
		if err := p.Close(); err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("tenant %d: %d rows, want %d", i, got, want)
		}
		return nil
	}
	for it := range 2 * tenants {
		if err := request(it); err != nil {
			return 0, err
		}
	}
	pid := pc.PID()
	var rec *exec.Cmd
	if c.perfDir != "" {
		rec = exec.Command("perf", "record", "-q", "-e", "cpu-clock", "-g", "-p", strconv.Itoa(int(pid)), "-o", c.perfDir+"/"+label+".data")
		if err := rec.Start(); err != nil {
			return 0, fmt.Errorf("perf: %w", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	cpu0, err := backendCPU(pid)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	for it := range c.n {
		if err := request(it); err != nil {
			return 0, err
		}
	}
	wall := time.Since(t0)
	cpu1, err := backendCPU(pid)
	if rec != nil {
		_ = rec.Process.Signal(os.Interrupt)
		_ = rec.Wait()
	}
	if err != nil {
		return 0, err
	}
	var stmts, generic, custom int64
	if err := conn.QueryRow(ctx, "SELECT count(*), coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) FROM pg_prepared_statements",
		pgx.QueryExecModeSimpleProtocol).Scan(&stmts, &generic, &custom); err != nil {
		return 0, err
	}
	us := float64((cpu1 - cpu0).Nanoseconds()) / 1000 / float64(c.n)
	fmt.Fprintf(out, "rep %d  %-46s backend CPU %6.1f µs/req  wall %6.1f µs/req  (%d statements: %d generic, %d custom plans)\n",
		rep, v.name, us, float64(wall.Microseconds())/float64(c.n), stmts, generic, custom)
	return us, nil
}

// backendCPU returns the CPU time process pid has run, from the first
// field of /proc/<pid>/schedstat (nanoseconds).
func backendCPU(pid uint32) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/schedstat")
	if err != nil {
		return 0, fmt.Errorf("the backend's CPU time (PostgreSQL must run on this machine): %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("empty schedstat")
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(ns), err
}
