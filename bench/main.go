// Command bench is the load harness: it measures over HTTP what the tenancy
// library costs against hand-rolled WHERE tenant_id = $1, the way a user
// would see it. Run it from the repository root:
//
//	go run ./bench                 # the default run (under 5 minutes)
//	go run ./bench -delay 1ms      # 1 ms each way between servers and PostgreSQL
//	go run ./bench -smoke          # tiny and quick; exits non-zero on any error
//
// In one run it builds the server (./bench/server) once, creates a scratch
// database (dropped at the end), seeds T tenants with N notes each (in a
// plain table, a table under row-level security, a schema per tenant and a
// SQLite file per tenant), starts one server process per mode on loopback,
// each with its own pool of the same size, and drives them in turn with C
// concurrent clients: one scenario (read a note by ID, list 20 notes, create
// a note) and mode at a time, in rounds that rotate the order of the modes,
// so that drift of this shared machine hits every mode alike. Every response
// is checked (status, note ID, and tenant_id against the tenant asked for):
// a fast wrong answer is an error, not speed. It prints a table per scenario
// (requests/s, p50, p99, errors, server CPU and PostgreSQL CPU per request,
// server RSS, and ratios to the baseline), writes the same as JSON with
// -json, and exits 1 when any request failed.
//
// The DSN (-dsn, default DATABASE_URL or the local server) must be a URL and
// name a role that may create databases and roles; a superuser is simplest.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// defaultDSN is the local server the tests use too.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func main() {
	cfg := defaultConfig()
	var modes string
	smoke := flag.Bool("smoke", false, "tiny run (T=3, N=5, C=2, 200ms, 1 round, pool 2, schema-tenants 5) for CI")
	flag.StringVar(&cfg.DSN, "dsn", envOr("DATABASE_URL", defaultDSN), "PostgreSQL URL; the harness creates and drops a scratch database on that server")
	flag.IntVar(&cfg.Tenants, "tenants", cfg.Tenants, "tenants T")
	flag.IntVar(&cfg.Notes, "notes", cfg.Notes, "notes seeded per tenant N")
	flag.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients C")
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time per cell (mode x scenario) and round")
	flag.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds; each rotates the order of the modes")
	flag.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured load per mode before the rounds of each scenario")
	flag.StringVar(&modes, "modes", "", "comma-separated modes (default: all; with -delay, those that talk to PostgreSQL): "+strings.Join(allModes, ","))
	flag.StringVar(&cfg.Scenarios, "scenarios", cfg.Scenarios, "comma-separated scenarios: read, list, create")
	flag.DurationVar(&cfg.Delay, "delay", 0, "latency added each way between servers and PostgreSQL by a loopback proxy (0: direct)")
	flag.IntVar(&cfg.SchemaTenants, "schema-tenants", cfg.SchemaTenants, "also run schema mode with this many tenant schemas, as mode schema-<n> (0: off)")
	flag.StringVar(&cfg.AppUser, "app-user", cfg.AppUser, "login role the servers connect as, without a password; created when missing (empty: the DSN's user)")
	flag.IntVar(&cfg.Pool, "pool", cfg.Pool, "pgxpool MaxConns of every PostgreSQL server")
	flag.IntVar(&cfg.StmtCache, "stmt-cache", 0, "isolation/postgres StatementCacheCapacity for the library servers (0: library default)")
	flag.StringVar(&cfg.JSON, "json", "", "write the results as JSON to this file")
	flag.StringVar(&cfg.Profile, "profile", "", "after the rounds, take a CPU profile of this mode's server under each scenario's load (unmeasured)")
	flag.StringVar(&cfg.ProfileDir, "profile-dir", ".", "directory for -profile files: <mode>-<scenario>.pprof")
	flag.StringVar(&cfg.ServerBin, "server", "", "prebuilt server binary (default: go build ./bench/server)")
	flag.Parse()
	if *smoke {
		cfg.smoke()
	}
	if modes != "" {
		cfg.Modes = splitList(modes)
	}
	cfg.Out = os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	err := run(ctx, cfg)
	fmt.Printf("\ntotal time %s\n", time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
