package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serverSpec says how to start one server process.
type serverSpec struct {
	// name is the mode's row name (schema-1000 for schema mode over 1,000
	// tenants); mode is what the server's -mode flag gets.
	name, mode string
	tenants    int
	pool       int
	stmtCache  int
	dsn        string
	sqliteDir  string
	// prefix is the tenant-schema prefix of schema and hybrid modes.
	prefix string
	// partitions is passed to schema-mode servers.
	partitions int
	// dsn2 is the second server of a two-server mode, holding the tenants
	// from secondFrom on.
	dsn2       string
	secondFrom int
	// citus says dsn is a Citus coordinator.
	citus bool
}

// server is one running server process.
type server struct {
	name    string
	tenants int
	base    string // http://addr
	debug   string // http://addr of net/http/pprof
	cmd     *exec.Cmd
	stderr  *tailBuffer
	exited  chan struct{}
	// spec started the server, to start it again fresh.
	spec serverSpec
	// access picks the tenant of each request.
	access access
}

// startServer starts the server binary for spec and waits until it answers
// /healthz.
func startServer(ctx context.Context, bin string, spec serverSpec) (*server, error) {
	args := []string{"-mode", spec.mode, "-tenants", strconv.Itoa(spec.tenants), "-pool", strconv.Itoa(spec.pool),
		"-stmt-cache", strconv.Itoa(spec.stmtCache)}
	if spec.mode == "sqlite" {
		args = append(args, "-sqlite-dir", spec.sqliteDir)
	} else {
		args = append(args, "-dsn", spec.dsn)
	}
	if spec.prefix != "" {
		args = append(args, "-prefix", spec.prefix)
	}
	if spec.dsn2 != "" {
		args = append(args, "-dsn2", spec.dsn2, "-second-from", strconv.Itoa(spec.secondFrom))
	}
	if spec.citus {
		args = append(args, "-citus")
	}
	if spec.partitions > 0 && spec.mode == "schema" {
		args = append(args, "-partitions", strconv.Itoa(spec.partitions))
	}
	cmd := exec.Command(bin, args...)
	// The servers die with the harness, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s := &server{name: spec.name, tenants: spec.tenants, cmd: cmd, stderr: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server %s: %w", spec.name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		var httpAddr, debugAddr string
		if ok {
			_, _ = fmt.Sscanf(line, "listening http=%s debug=%s", &httpAddr, &debugAddr)
		}
		if httpAddr == "" || debugAddr == "" {
			s.stop()
			return nil, fmt.Errorf("server %s did not start:\n%s", spec.name, s.stderr.String())
		}
		s.base, s.debug = "http://"+httpAddr, "http://"+debugAddr
	case <-time.After(60 * time.Second):
		s.stop()
		return nil, fmt.Errorf("server %s did not start within 60s:\n%s", spec.name, s.stderr.String())
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return s, nil
			}
		}
		if time.Now().After(deadline) || !s.alive() {
			s.stop()
			return nil, fmt.Errorf("server %s is not healthy:\n%s", spec.name, s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pid returns the server's process ID, or -1 for a server this harness
// did not start (whose process is not measured).
func (s *server) pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return -1
	}
	return s.cmd.Process.Pid
}

func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop asks the server to shut down and kills it if it has not within 5s.
func (s *server) stop() {
	if !s.alive() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// cpuProfile saves a CPU profile of secs seconds of the server to path.
func (s *server) cpuProfile(ctx context.Context, secs int, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.debug+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// clockTick is the unit of /proc/<pid>/stat times: USER_HZ, 100 on Linux.
const clockTick = 10 * time.Millisecond

// procCPU returns the user plus system CPU time of process pid, or -1 when
// it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	cpu, err := parseStatCPU(b)
	if err != nil {
		return -1
	}
	return cpu
}

// parseStatCPU reads utime and stime (fields 14 and 15) from the contents
// of /proc/<pid>/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its closing parenthesis.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("too few fields")
	}
	u, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, err
	}
	s, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(u+s) * clockTick, nil
}

// procSyscalls returns how many read and write system calls process pid
// has made (syscr + syscw of /proc/<pid>/io), or -1.
func procSyscalls(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return -1
	}
	var n int64
	for line := range strings.SplitSeq(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "syscr" && key != "syscw") {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return -1
		}
		n += v
	}
	return n
}

// procMemory returns VmRSS and VmHWM of process pid in bytes, or zeros.
func procMemory(pid int) (rss, hwm int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	return parseStatusMemory(b)
}

// parseStatusMemory reads VmRSS and VmHWM (in kB) from /proc/<pid>/status.
func parseStatusMemory(b []byte) (rss, hwm int64) {
	for line := range strings.SplitSeq(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// cpuModel returns the CPU's model name from /proc/cpuinfo, if any.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if key, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return "unknown CPU"
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
