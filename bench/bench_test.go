package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/go-tenancy/tenancy/internal/testenv"
	"github.com/go-tenancy/tenancy/isolation"
)

var (
	buildOnce sync.Once
	serverBin string
	buildErr  error
)

// TestMain removes the server built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if serverBin != "" {
		_ = os.RemoveAll(filepath.Dir(serverBin))
	}
	os.Exit(code)
}

// builtServer builds the server once for every test of the package.
func builtServer(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tenancy-bench-test-")
		if err != nil {
			buildErr = err
			return
		}
		serverBin = filepath.Join(dir, "server")
		buildErr = buildServer(context.Background(), serverBin)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return serverBin
}

// TestSmoke runs the harness for real, as CI's smoke run: the server binary,
// a scratch database on TEST_DATABASE_URL, every mode and scenario, tiny
// sizes. It fails on any failed or wrong-tenant response, and checks that
// the JSON holds a measured row for every cell.
func TestSmoke(t *testing.T) {
	t.Parallel()
	testenv.Admin(t) // skips, or fails under CI=true, without PostgreSQL
	bin := builtServer(t)
	tests := []struct {
		name       string
		delay      time.Duration
		partitions int
		modes      []string
		scenarios  string
		want       []string
		// second and citus run on TEST_DATABASE_URL2 and TEST_CITUS_URL,
		// without the warm-up watch, to stay short.
		second, citus bool
	}{
		{name: "all modes", want: append(append([]string{}, allModes...), "schema-5", "schema-12", "schema-12-uniform")},
		{name: "delay proxy, partitioned schema pools", delay: time.Millisecond, partitions: 2, modes: []string{"baseline", "rls", "schema"}, scenarios: "read,create", want: []string{"baseline", "rls", "schema"}},
		// Half the tenants on a second server: a server that sent them to
		// the first would find none of their notes.
		{name: "two servers", second: true, modes: []string{"baseline", "rls-2servers", "schema-2servers"}, scenarios: "read,create", want: []string{"baseline", "rls-2servers", "schema-2servers"}},
		{name: "citus", citus: true, modes: []string{"baseline", "citus-rls", "citus-schema"}, scenarios: "read,create", want: []string{"baseline", "citus-rls", "citus-schema"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultConfig()
			cfg.smoke()
			// Skips, or fails under CI=true, without the server.
			if tt.second {
				cfg.DSN2 = testenv.SecondDatabaseURL(t)
			}
			if tt.citus {
				cfg.CitusDSN = testenv.CitusURL(t)
			}
			if tt.second || tt.citus {
				cfg.Settle = 0
			}
			cfg.DSN = testenv.DatabaseURL()
			cfg.ServerBin = bin
			cfg.Delay = tt.delay
			cfg.Partitions = tt.partitions
			cfg.Modes = tt.modes
			if tt.scenarios != "" {
				cfg.Scenarios = tt.scenarios
			}
			cfg.JSON = filepath.Join(t.TempDir(), "results.json")
			var out bytes.Buffer
			cfg.Out = &out
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := run(ctx, cfg); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			b, err := os.ReadFile(cfg.JSON)
			if err != nil {
				t.Fatal(err)
			}
			var rep Report
			if err := json.Unmarshal(b, &rep); err != nil {
				t.Fatal(err)
			}
			scenarios, _ := cfg.scenarios()
			got := map[cellKey]Row{}
			for _, r := range rep.Rows {
				got[cellKey{r.Mode, r.Scenario}] = r
			}
			cells := 0
			for _, sc := range scenarios {
				for _, m := range tt.want {
					if !serves(m, sc) {
						continue
					}
					cells++
					r, ok := got[cellKey{m, sc}]
					switch {
					case !ok:
						t.Errorf("no row for %s / %s", m, sc)
					case r.Requests == 0 || r.RPS <= 0 || r.P50 <= 0:
						t.Errorf("%s / %s measured nothing: %+v", m, sc, r)
					case r.Errors != 0 || r.WrongTenant != 0:
						t.Errorf("%s / %s: %d errors, %d wrong tenant", m, sc, r.Errors, r.WrongTenant)
					case r.RPSRatio == nil:
						t.Errorf("%s / %s: no ratio to the baseline", m, sc)
					}
				}
			}
			if len(rep.Rows) != cells {
				t.Errorf("%d rows, want %d", len(rep.Rows), cells)
			}
			// The first scenario of the run without a delay watched every
			// fresh server settle; a server this small settles within
			// the watch.
			if tt.delay == 0 && cfg.Settle > 0 {
				for _, m := range tt.want {
					if !serves(m, scenarios[0]) {
						continue
					}
					r := got[cellKey{m, scenarios[0]}]
					if r.SettleWatchedS != 1 || r.FirstSecondRatio == nil || *r.FirstSecondRatio <= 0 {
						t.Errorf("%s / %s: no warm-up measured: %+v", m, scenarios[0], r)
					}
				}
				if !strings.Contains(out.String(), "warm-up: each server restarted fresh") {
					t.Error("no warm-up table printed")
				}
			}
			if tt.delay > 0 && rep.Config.DelayMS != 1 {
				t.Errorf("config delay_ms = %v, want 1", rep.Config.DelayMS)
			}
			if t.Failed() {
				t.Logf("harness output:\n%s", out.String())
			}
		})
	}
}

// fakeServer answers like a bench server but lets a test choose the
// tenant_id it reports, to prove that the driver catches wrong answers.
func fakeServer(t *testing.T, answerAs func(asked string) string) *server {
	t.Helper()
	mux := http.NewServeMux()
	note := func(r *http.Request, id string) fixture.Note {
		return fixture.Note{ID: id, TenantID: answerAs(r.Header.Get(fixture.Header)), Title: "t", CreatedAt: time.Now()}
	}
	mux.HandleFunc("GET /notes/{id}", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(note(r, r.PathValue("id")))
	})
	mux.HandleFunc("GET /notes", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]fixture.Note{note(r, "a"), note(r, "b")})
	})
	mux.HandleFunc("POST /notes", func(w http.ResponseWriter, r *http.Request) {
		var in fixture.NewNote
		_ = json.NewDecoder(r.Body).Decode(&in)
		n := note(r, "new")
		n.Title = in.Title
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(n)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return &server{name: "fake", tenants: 2, base: ts.URL}
}

// idOf maps an identifier back to its tenant ID, as an honest server does.
func idOf(identifier string) string {
	return "tenant-" + strings.TrimPrefix(identifier, "bench-")
}

func TestDriverChecksTenant(t *testing.T) {
	t.Parallel()
	data := &fixtureData{ids: [][]string{{"n0"}, {"n1"}}, notes: 2}
	tests := []struct {
		name      string
		answerAs  func(string) string
		scenario  string
		wantErr   bool
		wantWrong bool
	}{
		{"honest read", idOf, scenarioRead, false, false},
		{"honest list", idOf, scenarioList, false, false},
		{"honest create", idOf, scenarioCreate, false, false},
		{"read of another tenant", func(string) string { return fixture.ID(1) }, scenarioRead, true, true},
		{"list of another tenant", func(string) string { return fixture.ID(1) }, scenarioList, true, true},
		{"create for another tenant", func(string) string { return fixture.ID(1) }, scenarioCreate, true, true},
		{"empty tenant_id", func(string) string { return "" }, scenarioRead, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := fakeServer(t, tt.answerAs)
			d := &driver{client: http.DefaultClient, data: data, clients: 1}
			var buf bytes.Buffer
			err := d.do(context.Background(), s, tt.scenario, 0, rand.New(rand.NewPCG(1, 2)), &buf, 2)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if errors.Is(err, errWrongTenant) != tt.wantWrong {
				t.Fatalf("err = %v, want wrong tenant: %v", err, tt.wantWrong)
			}
		})
	}
}

func TestDriverChecksStatusAndShape(t *testing.T) {
	t.Parallel()
	data := &fixtureData{ids: [][]string{{"n0"}}, notes: 30}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes/{id}", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /notes", func(w http.ResponseWriter, _ *http.Request) {
		// Fewer notes than the tenant has: a list that lost rows.
		_ = json.NewEncoder(w).Encode([]fixture.Note{{ID: "a", TenantID: fixture.ID(0)}})
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	s := &server{name: "fake", tenants: 1, base: ts.URL}
	d := &driver{client: http.DefaultClient, data: data, clients: 1}
	var buf bytes.Buffer
	rng := rand.New(rand.NewPCG(1, 2))
	if err := d.do(context.Background(), s, scenarioRead, 0, rng, &buf, 20); err == nil || !strings.Contains(err.Error(), "status 500") {
		t.Errorf("read answered 500: err = %v", err)
	}
	if err := d.do(context.Background(), s, scenarioList, 0, rng, &buf, 20); err == nil || errors.Is(err, errWrongTenant) {
		t.Errorf("list of 1 note where 20 exist: err = %v", err)
	}
}

// TestDriverRunCounts drives a server that answers one tenant in two
// wrongly: the cell must count those answers as errors and as wrong-tenant.
func TestDriverRunCounts(t *testing.T) {
	t.Parallel()
	s := fakeServer(t, func(asked string) string {
		if asked == fixture.Identifier(1) {
			return fixture.ID(0)
		}
		return idOf(asked)
	})
	d := &driver{client: http.DefaultClient, data: &fixtureData{ids: [][]string{{"n0"}, {"n1"}}, notes: 2}, clients: 2}
	c := d.run(context.Background(), s, scenarioRead, 100*time.Millisecond)
	if c.requests == 0 || int64(len(c.lat)) != c.requests {
		t.Fatalf("requests %d, latencies %d", c.requests, len(c.lat))
	}
	if c.wrong == 0 || c.errors != c.wrong || c.wrong == c.requests {
		t.Fatalf("requests %d, errors %d, wrong %d: want some, and only, tenant-1 answers wrong", c.requests, c.errors, c.wrong)
	}
	if len(c.samples) == 0 || !strings.Contains(c.samples[0], "wrong tenant") {
		t.Fatalf("samples %q", c.samples)
	}
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "42 (server) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0", 3 * time.Second, false},
		{"name with spaces and parentheses", "42 (a (b) c) R 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0", 100 * time.Millisecond, false},
		{"truncated", "42 (server) S 1 2", 0, true},
		{"no name", "garbage", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStatCPU([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseStatCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseStatusMemory(t *testing.T) {
	t.Parallel()
	rss, hwm := parseStatusMemory([]byte("Name:\tserver\nVmHWM:\t   30000 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n"))
	if rss != 20480<<10 || hwm != 30000<<10 {
		t.Fatalf("rss %d, hwm %d", rss, hwm)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}}
	for _, tt := range tests {
		if got := percentile(lat, tt.q); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}

func TestRowsRatios(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	r := newResults(cfg, machine{}, []string{"baseline", "rls"}, []string{scenarioRead})
	r.add("baseline", scenarioRead, cell{requests: 1000, elapsed: time.Second, lat: []time.Duration{2 * time.Millisecond}})
	r.add("rls", scenarioRead, cell{requests: 800, elapsed: time.Second, lat: []time.Duration{3 * time.Millisecond}, errors: 2, wrong: 1})
	rows := r.rows(scenarioRead)
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	if got := *rows[1].RPSRatio; got != 0.8 {
		t.Errorf("rps ratio %v, want 0.8", got)
	}
	if got := *rows[1].P50Ratio; got != 1.5 {
		t.Errorf("p50 ratio %v, want 1.5", got)
	}
	if n, wrong := r.errors(); n != 2 || wrong != 1 {
		t.Errorf("errors %d, wrong %d", n, wrong)
	}
}

func TestConfigModes(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	modes, err := cfg.modes()
	if err != nil || strings.Join(modes, ",") != "baseline,tx,rls,schema,hybrid,sqlite,pgx,gorm-plain,gorm,gorm-tx,invoicer-base,invoicer,projectr-base,projectr-nojwt,projectr,schema-1000" {
		t.Fatalf("default modes %v, %v", modes, err)
	}
	cfg.SchemaTenants = []int{1000, 10000}
	if modes, err := cfg.modes(); err != nil || strings.Join(modes[len(allModes):], ",") != "schema-1000,schema-10000,schema-10000-uniform" {
		t.Fatalf("fleet modes %v, %v", modes, err)
	}
	if fm, ok := cfg.fleetMode("schema-10000-uniform"); !ok || fm.tenants != 10000 || fm.active != 0 || fm.prefix() != "f10000_" {
		t.Fatalf("schema-10000-uniform: %+v", fm)
	}
	if fm, ok := cfg.fleetMode("schema-10000"); !ok || fm.active != 1000 {
		t.Fatalf("schema-10000: %+v", fm)
	}
	// The largest fleet's prefix is still a valid schema prefix.
	if err := isolation.ValidatePrefix(fleetMode{tenants: 20000}.prefix()); err != nil {
		t.Fatalf("prefix of 20,000 tenants: %v", err)
	}
	if need := seedNeeds(cfg, []string{"schema-10000", "schema-10000-uniform"}); len(need.schemas) != 1 || need.schemas[0].count != 10000 || !need.schemas[0].fleet {
		t.Fatalf("a fleet's two modes seed one set of schemas: %+v", need.schemas)
	}
	cfg.Delay = time.Millisecond
	if modes, _ := cfg.modes(); strings.Join(modes, ",") != strings.Join(delayModes, ",") {
		t.Fatalf("delay modes %v", modes)
	}
	cfg.Modes = []string{"rls", "nosuch"}
	if _, err := cfg.modes(); err == nil {
		t.Fatal("unknown mode accepted")
	}
	cfg.Scenarios = "read,update"
	if _, err := cfg.scenarios(); err == nil {
		t.Fatal("unknown scenario accepted")
	}
}

// TestConfigPlacedModes: the modes over several servers are left out of
// the default run and refused, naming the flag, without their URL.
func TestConfigPlacedModes(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	modes, _ := cfg.modes()
	for _, m := range placedModes {
		if slices.Contains(modes, m) {
			t.Errorf("%s is in the default modes", m)
		}
	}
	tests := []struct {
		mode, dsn2, citus, wantErr string
	}{
		{"rls-2servers", "", "", "-dsn2"},
		{"schema-2servers", "", "postgres://c/citus", "-dsn2"},
		{"citus-rls", "postgres://b/postgres", "", "-citus-dsn"},
		{"citus-schema", "", "", "-citus-dsn"},
		{"citus-schema", "", "mysql://c/citus", "postgres:// URL"},
		{"rls-2servers", "postgres://b/postgres", "", ""},
		{"citus-rls", "", "postgres://c/citus", ""},
	}
	for _, tt := range tests {
		cfg := defaultConfig()
		cfg.Modes, cfg.DSN2, cfg.CitusDSN = []string{"baseline", tt.mode}, tt.dsn2, tt.citus
		_, err := cfg.modes()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s with dsn2 %q, citus %q: %v", tt.mode, tt.dsn2, tt.citus, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s with dsn2 %q, citus %q: err %v, want one naming %s", tt.mode, tt.dsn2, tt.citus, err, tt.wantErr)
		}
	}
	cfg.Modes, cfg.DSN2, cfg.Delay = []string{"rls-2servers"}, "postgres://b/postgres", time.Millisecond
	if _, err := cfg.modes(); err == nil {
		t.Error("a delay with a two-server mode accepted")
	}
}

func TestParseCounts(t *testing.T) {
	t.Parallel()
	got, err := parseCounts("10000, 1000,1000,0")
	if err != nil || formatCounts(got) != "1000,10000" {
		t.Fatalf("parseCounts = %v, %v", got, err)
	}
	if got, err := parseCounts(""); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"ten", "-5", "1000,x"} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("parseCounts(%q) accepted", bad)
		}
	}
	cfg := defaultConfig()
	cfg.SchemaTenants = []int{50000}
	if err := cfg.check(); err == nil {
		t.Error("50000 schema tenants accepted")
	}
}

// TestAccess checks the realistic access pattern: only the active tenants
// receive requests, distinct ranks are distinct tenants spread over the
// fleet, and the busiest tenant gets the share a Zipf law gives it.
func TestAccess(t *testing.T) {
	t.Parallel()
	a := newAccess(10000, 1000)
	seen := map[int]bool{}
	for k := range 1000 {
		i := a.spread(k)
		if i < 0 || i >= 10000 || seen[i] {
			t.Fatalf("rank %d maps to tenant %d (seen: %v)", k, i, seen[i])
		}
		seen[i] = true
	}
	rng := rand.New(rand.NewPCG(1, 2))
	hits := map[int]int{}
	const n = 200000
	for range n {
		hits[a.pick(rng)]++
	}
	if len(hits) > 1000 {
		t.Fatalf("%d tenants received requests, want at most 1000", len(hits))
	}
	for i := range hits {
		if !seen[i] {
			t.Fatalf("tenant %d is not active", i)
		}
	}
	// Rank 0 of a Zipf law (exponent 1) over 1,000 gets 1/H(1000) ≈ 13.4%.
	if share := float64(hits[a.spread(0)]) / n; share < 0.12 || share > 0.15 {
		t.Errorf("busiest tenant got %.3f of requests, want about 0.134", share)
	}
	u := newAccess(10, 0)
	uhits := map[int]int{}
	for range 10000 {
		uhits[u.pick(rng)]++
	}
	if len(uhits) != 10 {
		t.Errorf("uniform access reached %d of 10 tenants", len(uhits))
	}
}

func TestSettleTime(t *testing.T) {
	t.Parallel()
	// timeline returns completions at rate(t) requests per second over dur.
	timeline := func(dur time.Duration, rate func(time.Duration) float64) []time.Duration {
		var out []time.Duration
		for t := time.Duration(0); t < dur; t += 10 * time.Millisecond {
			for range int(rate(t) / 100) {
				out = append(out, t)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		rate   func(time.Duration) float64
		want   time.Duration
		wantOK bool
	}{
		{"steady from the start", func(time.Duration) float64 { return 1000 }, 0, true},
		{"cold for 2s", func(t time.Duration) float64 {
			if t < 2*time.Second {
				return 200
			}
			return 1000
		}, 2 * time.Second, true},
		{"a dip later counts", func(t time.Duration) float64 {
			if t >= 3*time.Second && t < 3500*time.Millisecond {
				return 100
			}
			return 1000
		}, 3500 * time.Millisecond, true},
		{"never settles", func(time.Duration) float64 { return 500 }, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := settleTime(timeline(6*time.Second, tt.rate), 6*time.Second, 1000)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("settleTime = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
