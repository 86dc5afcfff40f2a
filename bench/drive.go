package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-tenancy/tenancy/bench/internal/fixture"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// driver sends the load and checks every answer.
type driver struct {
	client  *http.Client
	data    *fixtureData
	clients int
	// admins find the servers' PostgreSQL backends, to measure their CPU:
	// a pool on each PostgreSQL server of the run.
	admins []*pgxpool.Pool
	seed   uint64
}

// cell is one measurement of one mode under one scenario.
type cell struct {
	requests int64
	errors   int64
	// wrong counts answers for another tenant than the one asked for; they
	// are errors too.
	wrong   int64
	lat     []time.Duration
	elapsed time.Duration
	// srvCPU and pgCPU are the CPU time the server process and its
	// PostgreSQL backends spent in the cell; pgCPU is negative when the
	// backends' CPU cannot be read (a remote server).
	srvCPU, pgCPU time.Duration
	// driverCPU is the CPU time of the harness itself (clients, and the
	// delay proxy if any): it shares the machine with the server.
	driverCPU time.Duration
	// syscalls counts the server's read and write system calls.
	syscalls int64
	// rss and hwm are the server's resident and peak resident memory after
	// the cell, in bytes.
	rss, hwm int64
	// samples holds the first few error messages.
	samples []string
	// done holds when each successful request finished, from the start,
	// when the cell was driven with a timeline.
	done []time.Duration
}

// errWrongTenant marks an answer that carried another tenant's data.
var errWrongTenant = errors.New("answered for the wrong tenant")

// run drives s with d.clients clients for dur, every request for a random
// tenant, and returns what it measured.
func (d *driver) run(ctx context.Context, s *server, scenario string, dur time.Duration) cell {
	return d.drive(ctx, s, scenario, dur, false)
}

// drive is run; with timeline it also records when each successful request
// finished, as offsets from the start, in cell.done.
func (d *driver) drive(ctx context.Context, s *server, scenario string, dur time.Duration, timeline bool) cell {
	srv0, sys0, self0 := procCPU(s.pid()), procSyscalls(s.pid()), procCPU(os.Getpid())
	pg0 := d.backendCPU(ctx, s.name)
	var (
		mu  sync.Mutex
		c   cell
		wg  sync.WaitGroup
		now = time.Now()
	)
	deadline := now.Add(dur)
	for w := range d.clients {
		d.seed++
		rng := rand.New(rand.NewPCG(d.seed, uint64(w)))
		wg.Go(func() {
			var (
				lat, done       []time.Duration
				n, errs, wrong  int64
				samples         []string
				buf             bytes.Buffer
				expectListCount = min(fixture.ListLimit, d.data.notes)
			)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := s.pick(rng)
				t0 := time.Now()
				err := d.do(ctx, s, scenario, i, rng, &buf, expectListCount)
				lat = append(lat, time.Since(t0))
				if timeline && err == nil {
					done = append(done, time.Since(now))
				}
				n++
				if err != nil {
					errs++
					if errors.Is(err, errWrongTenant) {
						wrong++
					}
					if len(samples) < 3 {
						samples = append(samples, err.Error())
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			c.requests += n
			c.errors += errs
			c.wrong += wrong
			c.lat = append(c.lat, lat...)
			c.done = append(c.done, done...)
			if len(c.samples) < 5 {
				c.samples = append(c.samples, samples...)
			}
		})
	}
	wg.Wait()
	c.elapsed = time.Since(now)
	c.srvCPU = procCPU(s.pid()) - srv0
	c.syscalls = procSyscalls(s.pid()) - sys0
	c.driverCPU = procCPU(os.Getpid()) - self0
	if pg0 != nil {
		c.pgCPU = sumCPUSince(d.backendCPU(ctx, s.name), pg0)
	} else {
		c.pgCPU = -1
	}
	c.rss, c.hwm = procMemory(s.pid())
	return c
}

// do sends one request of scenario for tenant i and checks the answer.
func (d *driver) do(ctx context.Context, s *server, scenario string, i int, rng *rand.Rand, buf *bytes.Buffer, listCount int) error {
	if _, ok := appScenarios[scenario]; ok {
		return d.doApp(ctx, s, scenario, i, rng, buf)
	}
	tenantID := fixture.ID(i)
	switch scenario {
	case scenarioRead:
		id := d.data.ids[i][rng.IntN(len(d.data.ids[i]))]
		var n fixture.Note
		if err := d.call(ctx, s, http.MethodGet, "/notes/"+id, fixture.Identifier(i), nil, http.StatusOK, buf, &n); err != nil {
			return err
		}
		if n.TenantID != tenantID {
			return fmt.Errorf("read note %s for %s, got tenant_id %q: %w", id, tenantID, n.TenantID, errWrongTenant)
		}
		if n.ID != id {
			return fmt.Errorf("read note %s for %s, got note %q", id, tenantID, n.ID)
		}
	case scenarioList:
		var ns []fixture.Note
		if err := d.call(ctx, s, http.MethodGet, "/notes?limit="+strconv.Itoa(fixture.ListLimit), fixture.Identifier(i), nil, http.StatusOK, buf, &ns); err != nil {
			return err
		}
		for _, n := range ns {
			if n.TenantID != tenantID {
				return fmt.Errorf("listed notes for %s, got one with tenant_id %q: %w", tenantID, n.TenantID, errWrongTenant)
			}
		}
		// Notes are only ever added, so a tenant has at least its seeded
		// ones.
		if len(ns) < listCount || len(ns) > fixture.ListLimit {
			return fmt.Errorf("listed %d notes for %s, want %d to %d", len(ns), tenantID, listCount, fixture.ListLimit)
		}
	case scenarioCreate:
		title := "bench note " + strconv.FormatUint(rng.Uint64()%1_000_000, 10)
		body, _ := json.Marshal(fixture.NewNote{Title: title, Body: noteBody})
		var n fixture.Note
		if err := d.call(ctx, s, http.MethodPost, "/notes", fixture.Identifier(i), body, http.StatusCreated, buf, &n); err != nil {
			return err
		}
		if n.TenantID != tenantID {
			return fmt.Errorf("created a note for %s, got tenant_id %q: %w", tenantID, n.TenantID, errWrongTenant)
		}
		if n.Title != title || n.ID == "" {
			return fmt.Errorf("created a note for %s, got %+v", tenantID, n)
		}
	default:
		return fmt.Errorf("unknown scenario %q", scenario)
	}
	return nil
}

// call sends one request and decodes a JSON answer into out when the status
// is want.
func (d *driver) call(ctx context.Context, s *server, method, path, tenant string, body []byte, want int, buf *bytes.Buffer, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return err
	}
	if tenant != "" {
		req.Header.Set(fixture.Header, tenant)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return d.send(req, want, buf, out)
}

// send sends req and decodes a JSON answer into out when the status is
// want.
func (d *driver) send(req *http.Request, want int, buf *bytes.Buffer, out any) error {
	method, path, tenant := req.Method, req.URL.Path, req.Header.Get(fixture.Header)
	if tenant == "" {
		tenant = req.Host
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s as %s: status %d, want %d: %.200s", method, path, tenant, resp.StatusCode, want, buf.Bytes())
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// probe checks, before anything is timed, that s refuses what it must: a
// note of another tenant is not found, an unknown tenant is not found, and
// a request naming no tenant is refused.
func (d *driver) probe(ctx context.Context, s *server) error {
	var buf bytes.Buffer
	for i := range min(s.tenants, 5) {
		j := (i + 1) % s.tenants
		if j == i {
			break
		}
		other := d.data.ids[j][0]
		if err := d.call(ctx, s, http.MethodGet, "/notes/"+other, fixture.Identifier(i), nil, http.StatusNotFound, &buf, nil); err != nil {
			return fmt.Errorf("another tenant's note: %w", err)
		}
		if err := d.call(ctx, s, http.MethodGet, "/notes/"+d.data.ids[i][0], fixture.Identifier(i), nil, http.StatusOK, &buf, nil); err != nil {
			return fmt.Errorf("own note: %w", err)
		}
	}
	if err := d.call(ctx, s, http.MethodGet, "/notes", "nobody-here", nil, http.StatusNotFound, &buf, nil); err != nil {
		return fmt.Errorf("unknown tenant: %w", err)
	}
	if err := d.call(ctx, s, http.MethodGet, "/notes", "", nil, http.StatusBadRequest, &buf, nil); err != nil {
		return fmt.Errorf("no tenant: %w", err)
	}
	return nil
}

// backendCPU returns the CPU time of each PostgreSQL backend serving the
// server named name (by application_name), or nil when it cannot be read
// from /proc (PostgreSQL on another machine).
func (d *driver) backendCPU(ctx context.Context, name string) map[int]time.Duration {
	if len(d.admins) == 0 {
		return nil
	}
	out := map[int]time.Duration{}
	for _, admin := range d.admins {
		rows, err := admin.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", "bench-"+name)
		if err != nil {
			return nil
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return nil
		}
		for _, pid := range pids {
			if cpu := procCPU(pid); cpu >= 0 {
				out[pid] = cpu
			}
		}
	}
	return out
}

// sumCPUSince adds up how much CPU each backend in now used since before; a
// backend started meanwhile counts from zero.
func sumCPUSince(now, before map[int]time.Duration) time.Duration {
	var sum time.Duration
	for pid, cpu := range now {
		sum += cpu - before[pid]
	}
	return sum
}

// pick returns the tenant of the next request to s: by its access pattern,
// or uniformly over its tenants.
func (s *server) pick(rng *rand.Rand) int {
	if s.access.tenants == 0 {
		return rng.IntN(s.tenants)
	}
	return s.access.pick(rng)
}
