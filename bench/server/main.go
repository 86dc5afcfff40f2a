package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type options struct {
	mode      string
	dsn       string
	tenants   int
	pool      int
	sqliteDir string
	stmtCache int
	prefix    string
	// partitions is postgres.SchemaConfig.Partitions of schema mode.
	partitions int
	// dsn2 is a second server: tenants from secondFrom on are placed on it.
	dsn2       string
	secondFrom int
	// citus says dsn is a Citus coordinator (rls and schema modes).
	citus bool
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "", "baseline, tx, rls, schema, hybrid or sqlite")
	flag.StringVar(&o.dsn, "dsn", "", "PostgreSQL DSN of the seeded database (not used by sqlite)")
	flag.IntVar(&o.tenants, "tenants", 100, "number of tenants (fixture.Tenant(0) to (n-1))")
	flag.IntVar(&o.pool, "pool", 8, "PostgreSQL pool size (pgxpool MaxConns)")
	flag.StringVar(&o.sqliteDir, "sqlite-dir", "", "directory of the tenants' SQLite files (sqlite mode)")
	flag.StringVar(&o.prefix, "prefix", "", "tenant schema name prefix (schema, hybrid; default the library's)")
	flag.IntVar(&o.stmtCache, "stmt-cache", 0, "isolation/postgres Config.StatementCacheCapacity (0: the library default)")
	flag.IntVar(&o.partitions, "partitions", 0, "schema mode: isolation/postgres SchemaConfig.Partitions (0: one pool)")
	flag.StringVar(&o.dsn2, "dsn2", "", "rls and schema modes: a second server, placement \""+secondPlacement+"\", holding the tenants from -second-from on")
	flag.IntVar(&o.secondFrom, "second-from", 0, "with -dsn2: the first tenant placed on the second server")
	flag.BoolVar(&o.citus, "citus", false, "rls and schema modes: -dsn is a Citus coordinator (isolation/postgres Config.Citus)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, logger); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, logger *slog.Logger) error {
	if o.tenants < 1 {
		return errors.New("-tenants must be at least 1")
	}
	if o.dsn2 != "" && (o.secondFrom < 0 || o.secondFrom > o.tenants) {
		return errors.New("-second-from must be from 0 to -tenants")
	}
	if (o.dsn2 != "" || o.citus) && o.mode != "rls" && o.mode != "schema" {
		return errors.New("-dsn2 and -citus serve the rls and schema modes only")
	}
	b, err := open(ctx, o, logger)
	if err != nil {
		return fmt.Errorf("mode %s: %w", o.mode, err)
	}
	defer b.close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	dln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: b.handler, ReadHeaderTimeout: 5 * time.Second}
	dbg := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- dbg.Serve(dln) }()
	fmt.Printf("listening http=%s debug=%s\n", ln.Addr(), dln.Addr())

	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = dbg.Shutdown(sctx)
	return srv.Shutdown(sctx)
}

// debugMux serves net/http/pprof, apart from the measured handler so that
// every mode's handler chain stays the same.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	return mux
}
