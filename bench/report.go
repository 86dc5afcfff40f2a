package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"text/tabwriter"
	"time"
)

// results gathers the cells of every round.
type results struct {
	cfg       Config
	machine   machine
	modes     []string
	scenarios []string
	cells     map[cellKey]*aggregate
	tenants   map[string]int
	settles   map[cellKey]settleResult
}

// settleResult is how a fresh server warmed up.
type settleResult struct {
	// at is when its throughput started to hold 90% of the steady state;
	// ok is false when it did not within watched.
	at      time.Duration
	ok      bool
	watched time.Duration
	// first is its throughput in the first second, in requests per second.
	first         float64
	errors, wrong int64
	samples       []string
}

type cellKey struct{ mode, scenario string }

// aggregate is a cell over all rounds.
type aggregate struct {
	requests, errors, wrong int64
	lat                     []time.Duration
	elapsed                 time.Duration
	srvCPU, pgCPU           time.Duration
	driverCPU               time.Duration
	syscalls                int64
	pgUnknown               bool
	rss, hwm                int64
	roundRPS                []float64
	samples                 []string
}

func newResults(cfg Config, m machine, modes, scenarios []string) *results {
	r := &results{cfg: cfg, machine: m, modes: modes, scenarios: scenarios, cells: map[cellKey]*aggregate{}, tenants: map[string]int{}, settles: map[cellKey]settleResult{}}
	for _, mode := range modes {
		r.tenants[mode] = cfg.Tenants
		if fm, ok := cfg.fleetMode(mode); ok {
			r.tenants[mode] = fm.tenants
		}
	}
	return r
}

func (r *results) add(mode, scenario string, c cell) {
	k := cellKey{mode, scenario}
	a := r.cells[k]
	if a == nil {
		a = &aggregate{}
		r.cells[k] = a
	}
	a.requests += c.requests
	a.errors += c.errors
	a.wrong += c.wrong
	a.lat = append(a.lat, c.lat...)
	a.elapsed += c.elapsed
	a.srvCPU += c.srvCPU
	a.driverCPU += c.driverCPU
	a.syscalls += c.syscalls
	if c.pgCPU < 0 {
		a.pgUnknown = true
	}
	a.pgCPU += c.pgCPU
	a.rss = max(a.rss, c.rss)
	a.hwm = max(a.hwm, c.hwm)
	a.roundRPS = append(a.roundRPS, float64(c.requests)/c.elapsed.Seconds())
	for _, s := range c.samples {
		if len(a.samples) < 5 {
			a.samples = append(a.samples, s)
		}
	}
}

// addSettle records the cell of a fresh server against the steady
// throughput the rounds measured for the same mode and scenario.
func (r *results) addSettle(mode, scenario string, c cell, watched time.Duration) {
	k := cellKey{mode, scenario}
	steady := 0.0
	if a := r.cells[k]; a != nil && a.elapsed > 0 {
		steady = float64(a.requests) / a.elapsed.Seconds()
	}
	at, ok := settleTime(c.done, watched, steady)
	first := 0
	for _, t := range c.done {
		if t < time.Second {
			first++
		}
	}
	r.settles[k] = settleResult{at: at, ok: ok, watched: watched, first: float64(first), errors: c.errors, wrong: c.wrong, samples: c.samples}
}

// errors returns the failed requests of the whole run and how many of them
// were answered for the wrong tenant.
func (r *results) errors() (n, wrong int64) {
	for _, a := range r.cells {
		n += a.errors
		wrong += a.wrong
	}
	for _, s := range r.settles {
		n += s.errors
		wrong += s.wrong
	}
	return n, wrong
}

// Row is one line of a table, as written to JSON.
type Row struct {
	Scenario string  `json:"scenario"`
	Mode     string  `json:"mode"`
	Tenants  int     `json:"tenants"`
	Requests int64   `json:"requests"`
	Seconds  float64 `json:"seconds"`
	// RPS is requests per second over all rounds; RoundRPS per round.
	RPS      float64   `json:"rps"`
	RoundRPS []float64 `json:"rps_rounds"`
	// RPSRatio and P50Ratio compare with the baseline of the same scenario
	// (null without one).
	RPSRatio *float64 `json:"rps_ratio"`
	P50      float64  `json:"p50_ms"`
	P99      float64  `json:"p99_ms"`
	P50Ratio *float64 `json:"p50_ratio"`
	Errors   int64    `json:"errors"`
	// WrongTenant counts answers carrying another tenant's data (also
	// counted in Errors).
	WrongTenant int64 `json:"wrong_tenant"`
	// ServerCPU and PostgresCPU are CPU microseconds per request of the
	// server process and of its PostgreSQL backends (null when unknown).
	ServerCPU   float64  `json:"server_cpu_us_per_req"`
	PostgresCPU *float64 `json:"postgres_cpu_us_per_req"`
	// DriverCPU is the harness's own CPU microseconds per request (the
	// clients, and the delay proxy if any).
	DriverCPU float64 `json:"driver_cpu_us_per_req"`
	// Syscalls is the server's read and write system calls per request.
	Syscalls float64 `json:"server_rw_syscalls_per_req"`
	// RSS is the server's largest VmRSS after a cell; PeakRSS its VmHWM.
	RSS          float64  `json:"rss_mib"`
	PeakRSS      float64  `json:"peak_rss_mib"`
	ErrorSamples []string `json:"error_samples,omitempty"`
	// SettleS is how long the server, restarted fresh, took to hold 90% of
	// RPS (null when not watched, or not reached within SettleWatchedS);
	// FirstSecondRatio is its throughput in its first second against RPS.
	SettleS          *float64 `json:"settle_s,omitempty"`
	SettleWatchedS   float64  `json:"settle_watched_s,omitempty"`
	FirstSecondRatio *float64 `json:"first_second_ratio,omitempty"`
}

func (r *results) rows(scenario string) []Row {
	var out []Row
	var base *Row
	for _, mode := range r.modes {
		a := r.cells[cellKey{mode, scenario}]
		if a == nil || a.requests == 0 {
			continue
		}
		slices.Sort(a.lat)
		row := Row{
			Scenario: scenario, Mode: mode, Tenants: r.tenants[mode],
			Requests: a.requests, Seconds: a.elapsed.Seconds(),
			RPS: float64(a.requests) / a.elapsed.Seconds(), RoundRPS: a.roundRPS,
			P50: ms(percentile(a.lat, 0.50)), P99: ms(percentile(a.lat, 0.99)),
			Errors: a.errors, WrongTenant: a.wrong,
			ServerCPU: perRequest(a.srvCPU, a.requests),
			Syscalls:  float64(a.syscalls) / float64(a.requests),
			DriverCPU: perRequest(a.driverCPU, a.requests),
			RSS:       mib(a.rss), PeakRSS: mib(a.hwm),
			ErrorSamples: a.samples,
		}
		if st, ok := r.settles[cellKey{mode, scenario}]; ok {
			row.SettleWatchedS = st.watched.Seconds()
			if st.ok {
				v := st.at.Seconds()
				row.SettleS = &v
			}
			first := st.first / row.RPS
			row.FirstSecondRatio = &first
			row.ErrorSamples = append(row.ErrorSamples, st.samples...)
		}
		if !a.pgUnknown && mode != "sqlite" {
			v := perRequest(a.pgCPU, a.requests)
			row.PostgresCPU = &v
		}
		out = append(out, row)
		if mode == baselineOf(scenario) {
			base = &out[len(out)-1]
		}
	}
	if base != nil {
		b := *base
		for i := range out {
			rps, p50 := out[i].RPS/b.RPS, out[i].P50/b.P50
			out[i].RPSRatio, out[i].P50Ratio = &rps, &p50
		}
	}
	return out
}

var scenarioTitles = map[string]string{
	scenarioRead:    "read: GET /notes/{id}",
	scenarioList:    "list: GET /notes?limit=20",
	scenarioCreate:  "create: POST /notes",
	scenarioInvoice: "invoice (Invoicer): GET /invoices/{id} on the tenant's subdomain",
	scenarioProject: "project (Projectr): GET /projects/{id} with a bearer token",
}

func (r *results) print(w io.Writer) {
	c := r.cfg
	delay := "no delay"
	if c.Delay > 0 {
		delay = fmt.Sprintf("+%s each way to PostgreSQL", c.Delay)
	}
	for _, sc := range r.scenarios {
		fmt.Fprintf(w, "\n== %s (T=%d, N=%d, C=%d, %d x %s, pool %d, %s)\n", scenarioTitles[sc], c.Tenants, c.Notes, c.Clients, c.Rounds, c.Duration, c.Pool, delay)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "mode\treq/s\tx base\tspread\tp50\tx base\tp99\terrors\twrong\tsrv CPU/req\tpg CPU/req\tsrv r+w/req\tRSS MiB\tpeak MiB\t")
		rows := r.rows(sc)
		for _, row := range rows {
			fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%.0fµs\t%s\t%.1f\t%.1f\t%.1f\t\n",
				row.Mode, row.RPS, ratio(row.RPSRatio), spread(row.RoundRPS),
				fmtMS(row.P50), ratio(row.P50Ratio), fmtMS(row.P99),
				row.Errors, row.WrongTenant, row.ServerCPU, usOrDash(row.PostgresCPU), row.Syscalls, row.RSS, row.PeakRSS)
		}
		_ = tw.Flush()
		if len(rows) > 0 && rows[0].SettleWatchedS > 0 {
			fmt.Fprintf(w, "\nwarm-up: each server restarted fresh and driven %s; time until its req/s holds 90%% of the steady state above\n", time.Duration(rows[0].SettleWatchedS*float64(time.Second)))
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "mode\ttenants\tsteady req/s\tfirst second\tx steady\tsettled after\t")
			for _, row := range rows {
				fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%s\t%s\t\n", row.Mode, row.Tenants, row.RPS, deref(row.FirstSecondRatio)*row.RPS, ratio(row.FirstSecondRatio), settled(row))
			}
			_ = tw.Flush()
		}
		for _, row := range rows {
			for _, s := range row.ErrorSamples {
				fmt.Fprintf(w, "  %s error: %s\n", row.Mode, s)
			}
		}
	}
}

// Report is the JSON document -json writes.
type Report struct {
	Machine machine    `json:"machine"`
	Config  jsonConfig `json:"config"`
	Rows    []Row      `json:"results"`
}

type jsonConfig struct {
	Tenants       int      `json:"tenants"`
	Notes         int      `json:"notes"`
	Clients       int      `json:"clients"`
	DurationS     float64  `json:"duration_s"`
	Rounds        int      `json:"rounds"`
	WarmupS       float64  `json:"warmup_s"`
	Pool          int      `json:"pool"`
	DelayMS       float64  `json:"delay_ms"`
	SchemaTenants []int    `json:"schema_tenants"`
	Active        int      `json:"active"`
	SettleS       float64  `json:"settle_s"`
	StmtCache     int      `json:"stmt_cache"`
	Partitions    int      `json:"partitions"`
	Modes         []string `json:"modes"`
	Scenarios     []string `json:"scenarios"`
}

func (r *results) report() Report {
	c := r.cfg
	rep := Report{Machine: r.machine, Config: jsonConfig{
		Tenants: c.Tenants, Notes: c.Notes, Clients: c.Clients, DurationS: c.Duration.Seconds(), Rounds: c.Rounds,
		WarmupS: c.Warmup.Seconds(), Pool: c.Pool, DelayMS: ms(c.Delay), SchemaTenants: c.SchemaTenants, StmtCache: c.StmtCache,
		Active: c.Active, SettleS: c.Settle.Seconds(), Partitions: c.Partitions,
		Modes: r.modes, Scenarios: r.scenarios,
	}}
	for _, sc := range r.scenarios {
		rep.Rows = append(rep.Rows, r.rows(sc)...)
	}
	return rep
}

func (r *results) writeJSON(path string) error {
	b, err := json.MarshalIndent(r.report(), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func perRequest(d time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d) / float64(time.Microsecond) / float64(n)
}

func ratio(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *v)
}

func fmtMS(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2fms", v)
	}
	return fmt.Sprintf("%.1fms", v)
}

func usOrDash(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.0fµs", *v)
}

// spread is the range of the rounds' req/s relative to their mean: how
// much the machine drifted under this cell.
func spread(rps []float64) string {
	if len(rps) < 2 {
		return "-"
	}
	lo, hi, sum := slices.Min(rps), slices.Max(rps), 0.0
	for _, v := range rps {
		sum += v
	}
	return fmt.Sprintf("±%.0f%%", 50*(hi-lo)/(sum/float64(len(rps))))
}

func deref(v *float64) float64 {
	if v == nil {
		return 0
	}
	return *v
}

// settled formats a row's time to the steady state.
func settled(row Row) string {
	if row.SettleS == nil {
		return fmt.Sprintf("> %.0fs", row.SettleWatchedS)
	}
	return fmt.Sprintf("%.2fs", *row.SettleS)
}
