package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy/internal/netproxy"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Modes the server serves, in table order. The fleet modes (schema mode over
// Config.SchemaTenants tenants, see fleetMode) are added after them.
var allModes = []string{"baseline", "tx", "rls", "schema", "hybrid", "sqlite", "pgx", "gorm-plain", "gorm", "gorm-tx",
	"invoicer-base", "invoicer", "projectr-base", "projectr-nojwt", "projectr"}

// delayModes are the default modes of a run with a delay: those that talk
// to PostgreSQL over the (proxied) network.
var delayModes = []string{"baseline", "tx", "rls", "schema", "hybrid"}

// Scenarios, each its own table: one operation per request.
const (
	scenarioRead   = "read"
	scenarioList   = "list"
	scenarioCreate = "create"
)

// allScenarios are the scenarios in the order they run: creates last, so
// that reads and lists see the seeded rows only.
var allScenarios = []string{scenarioRead, scenarioList, scenarioCreate, scenarioInvoice, scenarioProject}

// Config is one run of the harness. Zero fields take defaultConfig's values
// only through the flags; run uses them as given.
type Config struct {
	// DSN is a PostgreSQL URL of a role that may create databases and roles.
	DSN string
	// DSN2 is a second PostgreSQL server, as DSN, for rls-2servers and
	// schema-2servers. Default none: those modes are refused.
	DSN2 string
	// CitusDSN is a Citus coordinator's database, as a superuser, for
	// citus-rls and citus-schema. Default none: those modes are refused.
	CitusDSN string
	// Tenants is T, the tenants of every mode but schema-<n>. Default 100.
	Tenants int
	// Notes is N, the notes seeded per tenant. Default 100.
	Notes int
	// Clients is C, the concurrent clients. Default 32.
	Clients int
	// Duration is the measured time of one cell in one round. Default 3s.
	Duration time.Duration
	// Rounds is how many times every cell is measured. Default 2.
	Rounds int
	// Warmup is the unmeasured load each server gets before the rounds of
	// each scenario. Default 500ms.
	Warmup time.Duration
	// Modes to run; nil means all but placedModes, or delayModes with a
	// Delay.
	Modes []string
	// Scenarios is a comma-separated list; those no chosen mode serves are
	// left out. Default all: "read,list,create,invoice,project".
	Scenarios string
	// Delay is added each way between the servers and PostgreSQL. Default 0.
	Delay time.Duration
	// SchemaTenants adds a fleet mode schema-<n> for each n: schema mode
	// over that many tenant schemas (see fleetMode). Default [1000]; empty
	// turns them off; ignored with a Delay unless Modes names them.
	SchemaTenants []int
	// Active is how many tenants of a fleet larger than it receive
	// requests in its realistic mode, by a Zipf law. Default 1000.
	Active int
	// Settle is how long each server, restarted fresh after the rounds of
	// the first scenario, is driven and watched for the time it takes to
	// hold 90% of its steady throughput. Default 6s; 0 turns it off.
	Settle time.Duration
	// AppUser is the login role the servers connect as, created when
	// missing (NOSUPERUSER NOBYPASSRLS, owning nothing) and given what an
	// application role gets: the tenant role, and the baseline's table. It
	// connects without a password (trust or peer auth, as on a developer's
	// machine and in CI). Empty means the DSN's user, which with a superuser
	// DSN makes every library request flip is_superuser and report it to
	// the client twice. Default "tenancy_bench_app".
	AppUser string
	// Pool is every PostgreSQL server's pgxpool MaxConns. Default 8.
	Pool int
	// Partitions is passed to the schema-mode servers as
	// SchemaConfig.Partitions. Default 0: one pool.
	Partitions int
	// StmtCache is passed to the library servers as
	// StatementCacheCapacity. Default 0: the library's default.
	StmtCache int
	// JSON, when set, is where the results are written as JSON.
	JSON string
	// Profile names a mode to profile after the rounds; ProfileDir holds
	// the profiles. Default none.
	Profile    string
	ProfileDir string
	// ServerBin is a prebuilt server; empty means build ./bench/server.
	ServerBin string
	// Out receives the tables and progress. Default io.Discard.
	Out io.Writer
}

func defaultConfig() Config {
	return Config{
		Tenants:       100,
		Notes:         100,
		Clients:       32,
		Duration:      3 * time.Second,
		Rounds:        2,
		Warmup:        500 * time.Millisecond,
		Scenarios:     strings.Join(allScenarios, ","),
		SchemaTenants: []int{1000},
		Active:        1000,
		Settle:        6 * time.Second,
		Pool:          8,
		AppUser:       "tenancy_bench_app",
		ProfileDir:    ".",
	}
}

// smoke shrinks c to the CI smoke run.
func (c *Config) smoke() {
	c.Tenants, c.Notes, c.Clients = 3, 5, 2
	c.Duration, c.Rounds, c.Warmup = 200*time.Millisecond, 1, 100*time.Millisecond
	c.SchemaTenants, c.Active, c.Pool = []int{5, 12}, 6, 2
	c.Settle = time.Second
}

func (c *Config) check() error {
	switch {
	case c.Tenants < 1 || c.Notes < 1 || c.Clients < 1 || c.Rounds < 1 || c.Pool < 1:
		return errors.New("tenants, notes, clients, rounds and pool must be at least 1")
	case c.Duration <= 0:
		return errors.New("duration must be positive")
	case c.Active < 0 || c.Settle < 0 || c.Partitions < 0:
		return errors.New("active, settle and partitions must not be negative")
	case c.Tenants > 9999:
		return errors.New("at most 9999 tenants")
	case len(c.SchemaTenants) > 0 && (slices.Min(c.SchemaTenants) < 1 || slices.Max(c.SchemaTenants) > 20000):
		return errors.New("schema-tenants must be from 1 to 20000")
	case c.AppUser != "" && !validRole(c.AppUser):
		return errors.New("app-user must be lowercase letters, digits and '_', starting with a letter")
	}
	return nil
}

// modes returns the modes to run, in table order.
func (c *Config) modes() ([]string, error) {
	if len(c.Modes) == 0 {
		if c.Delay > 0 {
			return slices.Clone(delayModes), nil
		}
		out := slices.Clone(allModes)
		for _, fm := range c.fleetModes() {
			out = append(out, fm.name)
		}
		return out, nil
	}
	for _, m := range c.Modes {
		if _, fleet := c.fleetMode(m); !slices.Contains(allModes, m) && !slices.Contains(placedModes, m) && !fleet {
			names := append(slices.Clone(allModes), placedModes...)
			for _, fm := range c.fleetModes() {
				names = append(names, fm.name)
			}
			return nil, fmt.Errorf("unknown mode %q (modes: %s)", m, strings.Join(names, ", "))
		}
	}
	if err := c.checkPlaced(c.Modes); err != nil {
		return nil, err
	}
	return c.Modes, nil
}

func (c *Config) scenarios() ([]string, error) {
	out := splitList(c.Scenarios)
	if len(out) == 0 {
		return nil, errors.New("no scenario")
	}
	for _, s := range out {
		if !slices.Contains(allScenarios, s) {
			return nil, fmt.Errorf("unknown scenario %q (scenarios: %s)", s, strings.Join(allScenarios, ", "))
		}
	}
	return out, nil
}

// run is the whole harness: build, seed, start, drive, report, clean up.
func run(ctx context.Context, cfg Config) (err error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if err := cfg.check(); err != nil {
		return err
	}
	modes, err := cfg.modes()
	if err != nil {
		return err
	}
	scenarios, err := cfg.scenarios()
	if err != nil {
		return err
	}
	scenarios = slices.DeleteFunc(scenarios, func(sc string) bool {
		return !slices.ContainsFunc(modes, func(m string) bool { return serves(m, sc) })
	})
	if len(scenarios) == 0 {
		return errors.New("no chosen mode serves any chosen scenario")
	}
	base, err := url.Parse(cfg.DSN)
	if err != nil || (base.Scheme != "postgres" && base.Scheme != "postgresql") {
		return errors.New("the DSN must be a postgres:// URL")
	}
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Out, format+"\n", args...) }

	tmp, err := os.MkdirTemp("", "tenancy-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bin := cfg.ServerBin
	if bin == "" {
		t0 := time.Now()
		bin = filepath.Join(tmp, "server")
		if err := buildServer(ctx, bin); err != nil {
			return err
		}
		logf("built the server in %s", since(t0))
	}

	// The scratch database, dropped at the end whatever happens.
	admin, err := pgx.Connect(ctx, cfg.DSN)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(base), err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	dbName := "tenancy_bench_" + runID
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		return fmt.Errorf("create scratch database: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		if _, derr := admin.Exec(dctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)"); derr != nil && err == nil {
			err = fmt.Errorf("drop scratch database %s: %w", dbName, derr)
		}
	}()
	dbURL := *base
	dbURL.Path = "/" + dbName

	m := newMachine(ctx, admin)
	logf("%s", m)
	logf("config: T=%d N=%d C=%d duration=%s rounds=%d warmup=%s settle=%s pool=%d partitions=%d delay=%s schema-tenants=%s active=%d app-user=%q modes=%s",
		cfg.Tenants, cfg.Notes, cfg.Clients, cfg.Duration, cfg.Rounds, cfg.Warmup, cfg.Settle, cfg.Pool, cfg.Partitions, cfg.Delay, formatCounts(cfg.SchemaTenants), cfg.Active, cfg.AppUser, strings.Join(modes, ","))

	// Seed what the chosen modes read.
	t0 := time.Now()
	need := seedNeeds(cfg, modes)
	pool, err := pgxpool.New(ctx, dbURL.String())
	if err != nil {
		return fmt.Errorf("open seeding pool: %w", err)
	}
	defer pool.Close()
	data, err := seed(ctx, pool, filepath.Join(tmp, "sqlite"), cfg.Notes, need)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	// The placed modes' other servers, dropped after the servers stopped.
	pl, err := setupPlaced(ctx, cfg, modes, pool, dbName, runID, data)
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		if cerr := pl.close(dctx); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err != nil {
		return err
	}
	logf("seeded in %s: %s%s", since(t0), need, pl)

	// The servers reach PostgreSQL directly, or through the delay proxy, as
	// the application role.
	srvURL := dbURL
	if cfg.AppUser != "" {
		if err := setupAppUser(ctx, pool, cfg.AppUser, need); err != nil {
			return err
		}
		srvURL.User = url.User(cfg.AppUser)
	}
	if cfg.Delay > 0 {
		target, err := tcpAddr(base)
		if err != nil {
			return err
		}
		proxy, err := netproxy.Start(target, cfg.Delay)
		if err != nil {
			return fmt.Errorf("start the delay proxy: %w", err)
		}
		defer proxy.Close()
		srvURL.Host = proxy.Addr()
		logf("servers reach PostgreSQL through a proxy adding %s each way", cfg.Delay)
	}

	servers := make([]*server, 0, len(modes))
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, name := range modes {
		spec := serverSpec{name: name, mode: name, tenants: cfg.Tenants, pool: cfg.Pool, stmtCache: cfg.StmtCache,
			sqliteDir: data.sqliteDir, prefix: schemaPrefix(cfg, name), partitions: cfg.Partitions}
		acc := newAccess(spec.tenants, 0)
		if fm, ok := cfg.fleetMode(name); ok {
			spec.mode, spec.tenants = "schema", fm.tenants
			acc = newAccess(fm.tenants, fm.active)
		}
		q := srvURL.Query()
		q.Set("application_name", "bench-"+name)
		if s := dataSchema(name); s != "" {
			q.Set("search_path", s)
		}
		u := srvURL
		u.RawQuery = q.Encode()
		spec.dsn = u.String()
		switch {
		case twoServers(name):
			spec.mode = strings.TrimSuffix(name, "-2servers")
			_, spec.dsn2 = pl.serverDSNs(name, cfg.AppUser)
			spec.secondFrom = secondFrom(cfg.Tenants)
		case onCitus(name):
			spec.mode, spec.citus = strings.TrimPrefix(name, "citus-"), true
			spec.dsn, _ = pl.serverDSNs(name, cfg.AppUser)
			if name == "citus-schema" {
				spec.prefix = pl.citusPrefix
			}
		}
		s, err := startServer(ctx, bin, spec)
		if err != nil {
			return err
		}
		s.spec, s.access = spec, acc
		servers = append(servers, s)
	}
	logf("started %d servers", len(servers))

	client := &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        len(servers) * cfg.Clients * 2,
			MaxIdleConnsPerHost: cfg.Clients * 2,
			IdleConnTimeout:     5 * time.Minute,
			DisableCompression:  true,
		},
		Timeout: 30 * time.Second,
	}
	defer client.CloseIdleConnections()
	d := &driver{client: client, data: data, clients: cfg.Clients, admins: append([]*pgxpool.Pool{pool}, pl.pools()...)}

	// Cross-tenant probes: a server that hands out another tenant's note
	// fails the run before anything is timed.
	var failures []string
	for _, s := range servers {
		probe := d.probe
		if sc := scenarioOf(s.name); sc != "" {
			probe = func(ctx context.Context, s *server) error { return d.probeApp(ctx, s, sc) }
		}
		if err := probe(ctx, s); err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", s.name, err))
		}
	}
	if len(failures) > 0 {
		return fmt.Errorf("cross-tenant probes failed:\n  %s", strings.Join(failures, "\n  "))
	}

	// Scenario by scenario, creates last, so that reads and lists see the
	// seeded rows only. Within a scenario, every server is warmed up, then
	// measured in rounds that rotate the order of the modes, so that no mode
	// always runs first or right after a heavy one.
	res := newResults(cfg, m, modes, scenarios)
	for si, sc := range scenarios {
		serving := slices.DeleteFunc(slices.Clone(servers), func(s *server) bool { return !serves(s.name, sc) })
		if cfg.Warmup > 0 {
			for _, s := range serving {
				d.run(ctx, s, sc, cfg.Warmup)
			}
		}
		for round := range cfg.Rounds {
			k := (si + round) % len(serving)
			order := append(slices.Clone(serving[k:]), serving[:k]...)
			for _, s := range order {
				if err := ctx.Err(); err != nil {
					return err
				}
				c := d.run(ctx, s, sc, cfg.Duration)
				if !s.alive() {
					return fmt.Errorf("server %s exited:\n%s", s.name, s.stderr.String())
				}
				res.add(s.name, sc, c)
			}
		}
		logf("%s: %d rounds done", sc, cfg.Rounds)
		if si == 0 && cfg.Settle > 0 {
			if err := settle(ctx, d, bin, servers, sc, cfg.Settle, res); err != nil {
				return err
			}
			logf("%s: every server serving it restarted and watched for %s", sc, cfg.Settle)
		}
	}

	res.print(cfg.Out)
	if cfg.JSON != "" {
		if err := res.writeJSON(cfg.JSON); err != nil {
			return err
		}
		logf("wrote %s", cfg.JSON)
	}

	if cfg.Profile != "" {
		if err := profile(ctx, d, servers, cfg, scenarios, logf); err != nil {
			return err
		}
	}

	for _, s := range servers {
		if msg := s.stderr.String(); msg != "" {
			logf("server %s wrote to stderr:\n%s", s.name, msg)
		}
	}
	if n, wrong := res.errors(); n > 0 {
		return fmt.Errorf("%d requests failed (%d of them answered for the wrong tenant); see the errors above", n, wrong)
	}
	return nil
}

// settle restarts every server that serves scenario fresh (new process,
// new pool, new PostgreSQL backends) and drives it for dur under scenario,
// recording how long it took to hold 90% of the steady throughput the
// rounds measured.
func settle(ctx context.Context, d *driver, bin string, servers []*server, scenario string, dur time.Duration, res *results) error {
	for i, s := range servers {
		if !serves(s.name, scenario) {
			continue
		}
		s.stop()
		fresh, err := startServer(ctx, bin, s.spec)
		if err != nil {
			return fmt.Errorf("restart %s: %w", s.name, err)
		}
		fresh.spec, fresh.access = s.spec, s.access
		servers[i] = fresh
		c := d.drive(ctx, fresh, scenario, dur, true)
		if !fresh.alive() {
			return fmt.Errorf("server %s exited:\n%s", fresh.name, fresh.stderr.String())
		}
		res.addSettle(fresh.name, scenario, c, dur)
	}
	return nil
}

// profile drives the profiled mode once more per scenario, unmeasured, and
// saves a CPU profile of its server for each.
func profile(ctx context.Context, d *driver, servers []*server, cfg Config, scenarios []string, logf func(string, ...any)) error {
	i := slices.IndexFunc(servers, func(s *server) bool { return s.name == cfg.Profile })
	if i < 0 {
		return fmt.Errorf("-profile %s: no such mode in this run", cfg.Profile)
	}
	s := servers[i]
	secs := max(1, int(cfg.Duration.Round(time.Second)/time.Second))
	for _, sc := range scenarios {
		if !serves(s.name, sc) {
			continue
		}
		path := filepath.Join(cfg.ProfileDir, s.name+"-"+sc+".pprof")
		errc := make(chan error, 1)
		go func() { errc <- s.cpuProfile(ctx, secs, path) }()
		d.run(ctx, s, sc, time.Duration(secs)*time.Second+200*time.Millisecond)
		if err := <-errc; err != nil {
			return fmt.Errorf("profile %s under %s: %w", s.name, sc, err)
		}
		logf("wrote %s (go tool pprof -top %s)", path, path)
	}
	return nil
}

// buildServer builds ./bench/server into bin with the go command on PATH.
func buildServer(ctx context.Context, bin string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go command is needed to build the server (or pass -server): %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/go-tenancy/tenancy/bench/server")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("build the server: %w\n%s", err, out)
	}
	return nil
}

// tcpAddr returns the host:port the DSN reaches, for the proxy.
func tcpAddr(u *url.URL) (string, error) {
	host, port := u.Hostname(), u.Port()
	if host == "" || strings.HasPrefix(host, "/") || strings.Contains(u.Host, ",") {
		return "", errors.New("-delay needs a DSN with one TCP host")
	}
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(host, port), nil
}

func redact(u *url.URL) string { return u.Redacted() }

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// machine describes where a run happened.
type machine struct {
	CPU      string `json:"cpu"`
	CPUs     int    `json:"cpus"`
	Go       string `json:"go"`
	Postgres string `json:"postgres"`
}

func newMachine(ctx context.Context, admin *pgx.Conn) machine {
	m := machine{CPU: cpuModel(), CPUs: runtime.NumCPU(), Go: runtime.Version()}
	_ = admin.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&m.Postgres)
	return m
}

func (m machine) String() string {
	return fmt.Sprintf("machine: %s, %d CPUs, %s, PostgreSQL %s", m.CPU, m.CPUs, m.Go, m.Postgres)
}
