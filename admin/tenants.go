package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/customdomain"
)

// errInMemory refuses tenant writes against a store in the CLI's own memory.
var errInMemory = errors.New("the tenant store is in memory, so this change could not reach a running server; configure a persistent tenant store (such as TENANT_STORE=db)")

func (r *runner) tenantsUsage() string {
	return strings.ReplaceAll(`usage: NAME tenants <command> [flags] [arguments]

Commands (flags go before arguments):
  create --identifier X --name N [--tier T] [--alias A]... [--domain D]... [--id ID] [--isolation I]
  list [--status S]
  show IDENTIFIER
  suspend [--reason R] IDENTIFIER
  activate IDENTIFIER
  delete IDENTIFIER
  purge [--force] IDENTIFIER
  alias add|remove IDENTIFIER ALIAS
  domain add|verify|remove IDENTIFIER DOMAIN
  domain list IDENTIFIER

Run "NAME help tenants <command>" for a command's flags.
`, "NAME", r.name)
}

func (r *runner) parseTenants(args []string) (*invocation, error) {
	if len(args) == 0 {
		return nil, usagef("tenants: missing command: create, list, show, suspend, activate, delete, purge, alias or domain (run %q)", r.name+" help tenants")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return nil, &errHelp{text: r.tenantsUsage()}
	case "create":
		return r.parseCreate(args[1:])
	case "list":
		return r.parseList(args[1:])
	case "show":
		return r.parseOne(args[1:], "show", (*runner).show)
	case "suspend":
		return r.parseSuspend(args[1:])
	case "activate":
		return r.parseOne(args[1:], "activate", (*runner).activate)
	case "delete":
		return r.parseOne(args[1:], "delete", (*runner).delete)
	case "purge":
		return r.parsePurge(args[1:])
	case "alias":
		return r.parseAlias(args[1:])
	case "domain":
		return r.parseDomain(args[1:])
	}
	return nil, usagef("tenants: unknown command %s (run %q)", quote(args[0]), r.name+" help tenants")
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func (r *runner) parseCreate(args []string) (*invocation, error) {
	c := r.command("tenants create", "tenants create --identifier X --name N [--tier T] [--alias A]... [--domain D]... [--id ID] [--isolation I]")
	var (
		t                tenancy.Tenant
		aliases, domains stringList
		iso              string
	)
	c.fs.StringVar(&t.Identifier, "identifier", "", "the tenant's `IDENTIFIER`, the slug requests name it by (required)")
	c.fs.StringVar(&t.Name, "name", "", "display `NAME` (required)")
	c.fs.StringVar(&t.Tier, "tier", "", "plan `TIER`, such as starter or enterprise")
	c.fs.Var(&aliases, "alias", "`ALIAS` under the base domain, such as acme for acme.example.com (repeatable)")
	c.fs.Var(&domains, "domain", "custom `DOMAIN` outside the base domain, added unverified (repeatable; see tenants domain)")
	c.fs.StringVar(&t.ID, "id", "", "tenant `ID` (default: a new UUID)")
	c.fs.StringVar(&iso, "isolation", "", "`ISOLATION` strategy overriding the tier's: rls, schema or database")
	if _, err := c.parse(args); err != nil {
		return nil, err
	}
	if t.Identifier == "" {
		return nil, usagef("tenants create: missing --identifier")
	}
	if err := validIdentifier(t.Identifier); err != nil {
		return nil, err
	}
	if t.Name == "" {
		return nil, usagef("tenants create: missing --name")
	}
	if t.ID != "" && tenancy.ValidateID(t.ID) != nil {
		return nil, usagef("invalid tenant ID %s (1 to %d characters of letters, digits, '-' and '_', starting with a letter or digit)", quote(t.ID), tenancy.MaxIDLen)
	}
	t.Aliases = aliases
	t.Domains = domains
	t.Isolation = tenancy.Isolation(iso)
	// Check every field now, as the store will, so that bad input never
	// opens anything. Validate wants an ID and a status; the store sets
	// both.
	check := t.Clone()
	if check.ID == "" {
		check.ID = "unset"
	}
	check.Status = tenancy.StatusProvisioning
	if err := check.Validate(); err != nil {
		return nil, &usageError{msg: err.Error()}
	}
	return &invocation{connect: c.connect(), run: func(ctx context.Context, env *Env) error {
		if err := writable(env); err != nil {
			return err
		}
		if env.Lifecycle == nil {
			return errors.New("tenants create needs the application's binary: provisioning creates the tenant's storage, which only the application knows")
		}
		if len(t.Domains) > 0 {
			if _, err := domainManager(env); err != nil {
				return err
			}
			for _, d := range t.Domains {
				if _, err := customdomain.CheckDomain(env.BaseDomain, d); err != nil {
					return err
				}
			}
		}
		created, err := env.Lifecycle.Provision(ctx, &t)
		if err != nil {
			return err
		}
		if c.json {
			return writeJSON(r.stdout, created)
		}
		fmt.Fprintf(r.stdout, "created %s (id %s, status %s)\n", created.Identifier, clean(created.ID), created.Status)
		if len(created.Domains) > 0 {
			fmt.Fprintf(r.stdout, "its custom domains resolve once verified: run %q for the DNS records to publish\n",
				r.name+" tenants domain list "+created.Identifier)
		}
		return nil
	}}, nil
}

func (r *runner) parseList(args []string) (*invocation, error) {
	c := r.command("tenants list", "tenants list [--status S]")
	var status string
	c.fs.StringVar(&status, "status", "", "only tenants with this `STATUS`: "+statusList())
	if _, err := c.parse(args); err != nil {
		return nil, err
	}
	if status != "" && !tenancy.Status(status).Valid() {
		return nil, usagef("tenants list: invalid status %s (one of %s)", quote(status), statusList())
	}
	return &invocation{connect: c.connect(), run: func(ctx context.Context, env *Env) error {
		if env.Store == nil {
			return errNoStore
		}
		tenants := []*tenancy.Tenant{}
		after := ""
		for {
			page, err := env.Store.List(ctx, tenancy.ListParams{Status: tenancy.Status(status), After: after, Limit: tenancy.MaxListLimit})
			if err != nil {
				return fmt.Errorf("list tenants: %w", err)
			}
			tenants = append(tenants, page...)
			if len(page) < tenancy.MaxListLimit {
				break
			}
			after = page[len(page)-1].Identifier
		}
		if c.json {
			return writeJSON(r.stdout, tenants)
		}
		printTable(r.stdout, tenants, status)
		return nil
	}}, nil
}

func statusList() string {
	s := make([]string, len(tenancy.Statuses))
	for i, st := range tenancy.Statuses {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// parseOne parses a command that takes one IDENTIFIER and no flags of its
// own.
func (r *runner) parseOne(args []string, name string, do func(*runner, context.Context, *Env, *tenancy.Tenant) (*tenancy.Tenant, error)) (*invocation, error) {
	c := r.command("tenants "+name, "tenants "+name+" IDENTIFIER")
	return r.oneTenant(c, args, name != "show", do)
}

func (r *runner) parseSuspend(args []string) (*invocation, error) {
	c := r.command("tenants suspend", "tenants suspend [--reason R] IDENTIFIER")
	var reason string
	c.fs.StringVar(&reason, "reason", "", "`REASON` recorded with the status")
	return r.oneTenant(c, args, true, func(r *runner, ctx context.Context, env *Env, t *tenancy.Tenant) (*tenancy.Tenant, error) {
		if err := writable(env); err != nil {
			return nil, err
		}
		if env.Lifecycle != nil {
			return env.Lifecycle.Suspend(ctx, t.ID, reason)
		}
		return env.Store.SetStatus(ctx, t.ID, tenancy.StatusSuspended, reason)
	})
}

func (r *runner) parsePurge(args []string) (*invocation, error) {
	c := r.command("tenants purge", "tenants purge [--force] IDENTIFIER")
	var force bool
	c.fs.BoolVar(&force, "force", false, "purge even an active tenant (otherwise delete or suspend it first)")
	return r.oneTenant(c, args, true, func(r *runner, ctx context.Context, env *Env, t *tenancy.Tenant) (*tenancy.Tenant, error) {
		if err := writable(env); err != nil {
			return nil, err
		}
		if env.Lifecycle == nil {
			return nil, errors.New("tenants purge needs the application's binary: purging removes the tenant's storage, which only the application knows")
		}
		if t.Status == tenancy.StatusActive && !force {
			return nil, fmt.Errorf("tenant %q is active: delete it first (tenants delete %s), or pass --force", t.Identifier, t.Identifier)
		}
		if err := env.Lifecycle.Purge(ctx, t.ID); err != nil {
			return nil, err
		}
		return t, nil
	})
}

// oneTenant finishes parsing a command on one tenant: the IDENTIFIER is
// checked, and at run time looked up and handed to do. The tenant do
// returns is printed. A write is refused before the lookup when it could
// not reach a running server.
func (r *runner) oneTenant(c *command, args []string, write bool, do func(*runner, context.Context, *Env, *tenancy.Tenant) (*tenancy.Tenant, error)) (*invocation, error) {
	rest, err := c.parse(args, "IDENTIFIER")
	if err != nil {
		return nil, err
	}
	identifier := rest[0]
	if err := validIdentifier(identifier); err != nil {
		return nil, err
	}
	verb := strings.TrimPrefix(c.path, "tenants ")
	return &invocation{connect: c.connect(), run: func(ctx context.Context, env *Env) error {
		if env.Store == nil {
			return errNoStore
		}
		if write && !env.Persistent {
			return errInMemory
		}
		t, err := lookupTenant(ctx, env, identifier)
		if err != nil {
			return err
		}
		out, err := do(r, ctx, env, t)
		if err != nil {
			if errors.Is(err, tenancy.ErrTenantNotFound) {
				// Purged or removed by someone else meanwhile.
				return fmt.Errorf("tenant %q not found", identifier)
			}
			return err
		}
		if c.json {
			return writeJSON(r.stdout, out)
		}
		switch verb {
		case "show":
			printTenant(r.stdout, out)
		case "purge":
			fmt.Fprintf(r.stdout, "purged %s\n", out.Identifier)
		default:
			fmt.Fprintf(r.stdout, "%s is now %s\n", out.Identifier, out.Status)
		}
		return nil
	}}, nil
}

var errNoStore = errors.New("this binary has no tenant store")

// lookupTenant returns the tenant with identifier, or an error line.
func lookupTenant(ctx context.Context, env *Env, identifier string) (*tenancy.Tenant, error) {
	t, err := env.Store.GetByIdentifier(ctx, identifier)
	if errors.Is(err, tenancy.ErrTenantNotFound) {
		return nil, fmt.Errorf("tenant %q not found", identifier)
	}
	if err != nil {
		return nil, fmt.Errorf("look up tenant %q: %w", identifier, err)
	}
	return t, nil
}

// writable refuses tenant writes that could not reach a running server.
func writable(env *Env) error {
	if env.Store == nil {
		return errNoStore
	}
	if !env.Persistent {
		return errInMemory
	}
	return nil
}

func (r *runner) show(_ context.Context, _ *Env, t *tenancy.Tenant) (*tenancy.Tenant, error) {
	return t, nil
}

func (r *runner) activate(ctx context.Context, env *Env, t *tenancy.Tenant) (*tenancy.Tenant, error) {
	if err := writable(env); err != nil {
		return nil, err
	}
	if t.Status == tenancy.StatusFailed || t.Status == tenancy.StatusProvisioning {
		return nil, fmt.Errorf("tenant %q is %s: its provisioning must be run again by the application, not activated", t.Identifier, t.Status)
	}
	if env.Lifecycle != nil {
		return env.Lifecycle.Activate(ctx, t.ID)
	}
	return env.Store.SetStatus(ctx, t.ID, tenancy.StatusActive, "")
}

func (r *runner) delete(ctx context.Context, env *Env, t *tenancy.Tenant) (*tenancy.Tenant, error) {
	if err := writable(env); err != nil {
		return nil, err
	}
	if env.Lifecycle != nil {
		return env.Lifecycle.Delete(ctx, t.ID)
	}
	return env.Store.Delete(ctx, t.ID)
}

// orDash prints empty values as "-", so that table columns stay aligned.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

func printTable(w io.Writer, tenants []*tenancy.Tenant, status string) {
	if len(tenants) == 0 {
		if status != "" {
			fmt.Fprintf(w, "no %s tenants\n", status)
		} else {
			fmt.Fprintln(w, "no tenants")
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IDENTIFIER\tNAME\tSTATUS\tTIER\tISOLATION\tALIASES\tDOMAINS\tID")
	for _, t := range tenants {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Identifier, orDash(t.Name), t.Status,
			orDash(t.Tier), orDash(string(t.Isolation)), orDash(strings.Join(t.Aliases, ",")),
			orDash(strings.Join(t.Domains, ",")), orDash(t.ID))
	}
	_ = tw.Flush()
}

func printTenant(w io.Writer, t *tenancy.Tenant) {
	status := string(t.Status)
	if t.StatusReason != "" {
		status += " (" + clean(t.StatusReason) + ")"
	}
	meta := ""
	if len(t.Metadata) > 0 {
		b, _ := json.Marshal(t.Metadata)
		meta = string(b)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, kv := range [][2]string{
		{"id", orDash(t.ID)},
		{"identifier", t.Identifier},
		{"name", orDash(t.Name)},
		{"status", status},
		{"tier", orDash(t.Tier)},
		{"isolation", orDash(string(t.Isolation))},
		{"placement", orDash(t.Placement)},
		{"aliases", orDash(strings.Join(t.Aliases, ", "))},
		{"domains", orDash(strings.Join(t.Domains, ", "))},
		{"metadata", orDash(meta)},
		{"created", t.CreatedAt.UTC().Format(time.RFC3339)},
		{"updated", t.UpdatedAt.UTC().Format(time.RFC3339)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	_ = tw.Flush()
}
