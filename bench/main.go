package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// defaultDSN is the local server the tests use too.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func main() {
	cfg := defaultConfig()
	var modes string
	schemaTenants := formatCounts(cfg.SchemaTenants)
	smoke := flag.Bool("smoke", false, "tiny run (T=3, N=5, C=2, 200ms, 1 round, pool 2, schema-tenants 5,12, active 6, settle 1s) for CI")
	flag.StringVar(&cfg.DSN, "dsn", envOr("DATABASE_URL", defaultDSN), "PostgreSQL URL; the harness creates and drops a scratch database on that server")
	flag.StringVar(&cfg.DSN2, "dsn2", os.Getenv("DATABASE_URL2"), "second PostgreSQL server, for modes rls-2servers and schema-2servers (half the tenants placed there); the harness creates and drops a scratch database there too")
	flag.StringVar(&cfg.CitusDSN, "citus-dsn", os.Getenv("CITUS_URL"), "Citus coordinator database (superuser), for modes citus-rls and citus-schema; the harness creates and drops schemas of its own there")
	flag.IntVar(&cfg.Tenants, "tenants", cfg.Tenants, "tenants T")
	flag.IntVar(&cfg.Notes, "notes", cfg.Notes, "notes seeded per tenant N")
	flag.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients C")
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time per cell (mode x scenario) and round")
	flag.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds; each rotates the order of the modes")
	flag.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured load per mode before the rounds of each scenario")
	flag.StringVar(&modes, "modes", "", "comma-separated modes (default: all but those over several servers; with -delay, those that talk to PostgreSQL): "+strings.Join(slices.Concat(allModes, placedModes), ","))
	flag.StringVar(&cfg.Scenarios, "scenarios", cfg.Scenarios, "comma-separated scenarios: read, list, create (the notes modes), invoice (invoicer modes), project (projectr modes); those no chosen mode serves are skipped")
	flag.DurationVar(&cfg.Delay, "delay", 0, "latency added each way between servers and PostgreSQL by a loopback proxy (0: direct)")
	flag.StringVar(&schemaTenants, "schema-tenants", schemaTenants, "comma-separated tenant counts: also run schema mode over each many tenant schemas, as mode schema-<n> (0: off); over more than -active, as schema-<n> (Zipf over -active tenants) and schema-<n>-uniform")
	flag.IntVar(&cfg.Active, "active", cfg.Active, "tenants that receive requests, by a Zipf law, in the realistic mode of a fleet larger than this")
	flag.DurationVar(&cfg.Settle, "settle", cfg.Settle, "after the first scenario's rounds, restart each server and watch it this long for the time to 90% of its steady throughput (0: off)")
	flag.StringVar(&cfg.AppUser, "app-user", cfg.AppUser, "login role the servers connect as, without a password; created when missing (empty: the DSN's user)")
	flag.IntVar(&cfg.Pool, "pool", cfg.Pool, "pgxpool MaxConns of every PostgreSQL server")
	flag.IntVar(&cfg.Partitions, "partitions", 0, "isolation/postgres SchemaConfig.Partitions for the schema-mode servers (0: one pool)")
	flag.IntVar(&cfg.StmtCache, "stmt-cache", 0, "isolation/postgres StatementCacheCapacity for the library servers (0: library default)")
	flag.StringVar(&cfg.JSON, "json", "", "write the results as JSON to this file")
	flag.StringVar(&cfg.Profile, "profile", "", "after the rounds, take a CPU profile of this mode's server under each scenario's load (unmeasured)")
	flag.StringVar(&cfg.ProfileDir, "profile-dir", ".", "directory for -profile files: <mode>-<scenario>.pprof")
	flag.StringVar(&cfg.ServerBin, "server", "", "prebuilt server binary (default: go build ./bench/server)")
	flag.Parse()
	counts, err := parseCounts(schemaTenants)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	cfg.SchemaTenants = counts
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
	err = run(ctx, cfg)
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
