package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultServer names the server of tenants without a Placement in a server
// map (ParseServers). A tenant whose Placement is DefaultServer is placed
// there too.
const DefaultServer = "default"

// serverName returns the key of a placement in a provider's servers: ""
// for the default server, under either of its names.
func serverName(placement string) string {
	if placement == DefaultServer {
		return ""
	}
	return placement
}

// ParseServers parses a server map, such as a DATABASE_URLS variable or the
// lines of a configuration file:
//
//	default=postgres://app@db1/app,eu=postgres://app@db-eu/app
//
// Entries are separated by commas or line breaks; blank lines and lines
// starting with '#' are left out. Each entry is a placement name (a-z, 0-9,
// '-' or '_', starting with a letter), '=' and a postgres:// URL; a URL may
// itself hold commas (several hosts). The entry named DefaultServer, or a
// single URL without a name, is the default server, returned under the key
// "" (tenants without a Placement, the tenant store and the job queue live
// there). Messages never repeat a URL: it may hold a password.
func ParseServers(s string) (map[string]string, error) {
	var entries []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, part := range strings.Split(line, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			// A piece that follows a URL still in its host list continues it.
			if len(entries) > 0 && inHostList(entries[len(entries)-1]) && !startsWithName(part) {
				entries[len(entries)-1] += "," + part
				continue
			}
			entries = append(entries, part)
		}
	}
	if len(entries) == 0 {
		return nil, errors.New("tenancy: server map is empty")
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		name, url, ok := strings.Cut(e, "=")
		name, url = strings.TrimSpace(name), strings.TrimSpace(url)
		if !ok || !startsWithName(e) {
			if len(entries) == 1 && isPostgresURL(e) {
				out[""] = e
				continue
			}
			return nil, fmt.Errorf("tenancy: server map entry %d must be name=postgres://host/db", len(out)+1)
		}
		if !isPostgresURL(url) {
			return nil, fmt.Errorf("tenancy: server %q needs a postgres:// URL", name)
		}
		key := serverName(name)
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("tenancy: server %q is listed twice", name)
		}
		out[key] = url
	}
	if _, ok := out[""]; !ok {
		return nil, fmt.Errorf("tenancy: server map names no %q server", DefaultServer)
	}
	return out, nil
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// startsWithName reports whether s starts with a placement name and '='.
func startsWithName(s string) bool {
	name, _, ok := strings.Cut(s, "=")
	return ok && placementValid(strings.TrimSpace(name))
}

// inHostList reports whether entry ends inside its URL's host list (no path
// or query yet), where a comma separates hosts.
func inHostList(entry string) bool {
	_, rest, ok := strings.Cut(entry, "://")
	return ok && !strings.ContainsAny(rest, "/?")
}

func placementValid(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Servers are pools on the PostgreSQL servers tenants are placed on, keyed
// by placement: "" is the default server.
type Servers map[string]*pgxpool.Pool

// OpenServers opens a pool on each URL of a server map (ParseServers's),
// with configure applied to each pool's configuration. On error the pools
// opened so far are closed. Close closes them all.
func OpenServers(ctx context.Context, urls map[string]string, configure func(name string, cfg *pgxpool.Config)) (Servers, error) {
	out := make(Servers, len(urls))
	for _, name := range sortedNames(urls) {
		cfg, err := pgxpool.ParseConfig(urls[name])
		if err != nil {
			out.Close()
			return nil, fmt.Errorf("tenancy: server %q: the URL is not a valid PostgreSQL URL", displayName(name))
		}
		if configure != nil {
			configure(name, cfg)
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			out.Close()
			return nil, fmt.Errorf("tenancy: server %q: %w", displayName(name), err)
		}
		out[name] = pool
	}
	return out, nil
}

// Default returns the default server's pool.
func (s Servers) Default() *pgxpool.Pool { return s[""] }

// Placements returns the pools of the servers other than the default, for
// Config.Placements.
func (s Servers) Placements() map[string]*pgxpool.Pool {
	out := make(map[string]*pgxpool.Pool, len(s))
	for name, p := range s {
		if name != "" {
			out[name] = p
		}
	}
	return out
}

// Ping checks that every server answers.
func (s Servers) Ping(ctx context.Context) error {
	var errs []error
	for _, name := range sortedNames(s) {
		if err := s[name].Ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("server %q: %w", displayName(name), err))
		}
	}
	return errors.Join(errs...)
}

// Close closes every pool.
func (s Servers) Close() {
	for _, p := range s {
		p.Close()
	}
}

// CheckPlacements reports every tenant whose Placement names none of
// servers, each as an error wrapping isolation.ErrUnknownPlacement.
func CheckPlacements(tenants []*tenancy.Tenant, servers Servers) error {
	var errs []error
	for _, t := range tenants {
		if t == nil {
			continue
		}
		if _, ok := servers[serverName(t.Placement)]; !ok {
			errs = append(errs, fmt.Errorf("tenant %s placement %q: %w", t.Identifier, t.Placement, isolation.ErrUnknownPlacement))
		}
	}
	return errors.Join(errs...)
}

// DoctorServers runs Doctor on every server and merges the reports, each
// finding naming its server (Finding.Server; DefaultServer for the
// default). With tenants given, a tenant whose Placement names none of
// servers is a finding too (FindingPlacementUnknown).
func DoctorServers(ctx context.Context, servers Servers, cfg DoctorConfig, tenants []*tenancy.Tenant) (*Report, error) {
	out := &Report{Findings: []Finding{}, Info: []string{}}
	for _, name := range sortedNames(servers) {
		r, err := Doctor(ctx, servers[name], cfg)
		if err != nil {
			return nil, fmt.Errorf("server %q: %w", displayName(name), err)
		}
		for _, f := range r.Findings {
			f.Server = displayName(name)
			out.Findings = append(out.Findings, f)
		}
		for _, info := range r.Info {
			out.Info = append(out.Info, displayName(name)+": "+info)
		}
	}
	for _, t := range tenants {
		if t == nil {
			continue
		}
		if _, ok := servers[serverName(t.Placement)]; !ok {
			out.Findings = append(out.Findings, Finding{Code: FindingPlacementUnknown, Object: "tenant " + t.Identifier,
				Message: fmt.Sprintf("placement %q names no configured server: the tenant's requests are refused", t.Placement)})
		}
	}
	return out, nil
}

func displayName(name string) string {
	if name == "" {
		return DefaultServer
	}
	return name
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// onServer returns a copy of t placed on server name, for the work that
// covers every server (purge, residue).
func onServer(t *tenancy.Tenant, name string) *tenancy.Tenant {
	c := *t
	c.Placement = name
	return &c
}

// serverErr names the server err happened on when there are several.
func serverErr(servers map[string]*server, name string, err error) error {
	if len(servers) < 2 {
		return err
	}
	return fmt.Errorf("server %q: %w", displayName(name), err)
}

// onServerMsg names the server a residue is on when there are several.
func onServerMsg(servers map[string]*server, name, msg string) string {
	if len(servers) < 2 {
		return msg
	}
	return msg + " on server " + displayName(name)
}
