package main

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/examples/internal/service"
)

// Config is the service's configuration, read from the environment: the
// examples' common one (see service.Config) and Invoicer's own variables.
// Only the example reads environment variables; the library packages take
// Config structs.
type Config struct {
	service.Config
	// BaseDomain is the domain tenants get subdomains of (BASE_DOMAIN):
	// acme.localhost is the tenant or alias acme. Default "localhost".
	BaseDomain string
	// HeaderFallback accepts the X-Tenant-ID header where the host names no
	// tenant (HEADER_FALLBACK), for local development and tools. When both
	// name a tenant they must agree, or the request is refused (403).
	// Default true.
	HeaderFallback bool
	// TrustedProxies are the peers whose X-Forwarded-Host is believed
	// (TRUSTED_PROXIES, comma-separated CIDR prefixes or addresses).
	// Default none: X-Forwarded-Host is ignored, so a client cannot pick
	// its tenant by sending it.
	TrustedProxies []netip.Prefix
	// SeedDemoData loads billing's demo customers and invoices into the
	// demo tenants when they are seeded (SEED_DEMO_DATA). Default false:
	// the demo tenants start empty.
	SeedDemoData bool
}

// loadConfig reads the configuration through getenv (os.Getenv in main).
// DATA_DIR defaults to ./data/invoicer, REDIS_PREFIX to "invoicer:" and
// TENANT_STORE to db, so that the admin subcommands reach the running
// server.
func loadConfig(getenv func(string) string) (Config, error) {
	env := service.NewEnv(getenv)
	c := Config{Config: service.LoadConfig(env, service.Defaults{Name: "invoicer", TenantStore: service.StoreDB})}
	base, ok := tenancy.NormalizeHost(env.String("BASE_DOMAIN", "localhost"))
	c.BaseDomain = base
	if !ok {
		env.Fail(errors.New("BASE_DOMAIN must be a domain name without a port, such as localhost or example.com"))
	}
	c.HeaderFallback = env.Bool("HEADER_FALLBACK", true)
	c.SeedDemoData = env.Bool("SEED_DEMO_DATA", false)
	if v, ok := env.Lookup("TRUSTED_PROXIES"); ok {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					env.Fail(errors.New("TRUSTED_PROXIES must be comma-separated addresses or CIDR prefixes, such as 10.0.0.0/8"))
					break
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			c.TrustedProxies = append(c.TrustedProxies, p.Masked())
		}
	}
	if err := env.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}
