package admin

import (
	"bufio"
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
	"github.com/spf13/cobra"
)

// errInMemory refuses tenant writes against a store in the CLI's own memory.
var errInMemory = errors.New("the tenant store is in memory, so this change could not reach a running server; configure a persistent tenant store (such as TENANT_STORE=db)")

func (r *runner) tenantsCmd() *cobra.Command {
	return r.group("tenants", "create, list, show and change tenants", `Create, list, show and change the tenants of the service.

A tenant is created provisioning and activated once its storage exists and
is migrated. Suspended and deleted tenants are refused (403) but keep their
data; purge removes everything of a tenant and then checks that nothing is
left.`, "create, list, show, suspend, activate, delete, retry, purge, alias, domain, set-tier, move, export or import",
		r.createCmd(), r.listCmd(),
		r.oneTenantCmd("show", "show a tenant", false, (*runner).show),
		r.suspendCmd(),
		r.oneTenantCmd("activate", "serve a suspended or deleted tenant again", true, (*runner).activate),
		r.oneTenantCmd("delete", "refuse a tenant's requests, keeping its data (purge removes it)", true, (*runner).delete),
		r.oneTenantCmd("retry", "run a failed tenant's provisioning again", true, (*runner).retry),
		r.purgeCmd(), r.aliasCmd(), r.domainCmd(),
		r.setTierCmd(), r.moveCmd(), r.exportCmd(), r.importCmd())
}

func (r *runner) createCmd() *cobra.Command {
	var (
		t                tenancy.Tenant
		aliases, domains []string
		iso              string
	)
	c := &cobra.Command{
		Use:   "create --identifier X --name N",
		Short: "create and provision a tenant",
		Long: `Create a tenant and provision it: the record is created provisioning, the
tenant's storage is created and migrated, and only then is it activated.`,
		Args: r.positional(),
	}
	f := c.Flags()
	f.StringVar(&t.Identifier, "identifier", "", "the tenant's `IDENTIFIER`, the slug requests name it by (required)")
	f.StringVar(&t.Name, "name", "", "display `NAME` (required)")
	f.StringVar(&t.Tier, "tier", "", "plan `TIER`, such as starter or enterprise")
	f.StringArrayVar(&aliases, "alias", nil, "`ALIAS` under the base domain, such as acme for acme.example.com (repeatable)")
	f.StringArrayVar(&domains, "domain", nil, "custom `DOMAIN` outside the base domain, added unverified (repeatable; see tenants domain)")
	f.StringVar(&t.ID, "id", "", "tenant `ID` (default: a new UUID)")
	f.StringVar(&iso, "isolation", "", "`ISOLATION` strategy overriding the tier's: rls, schema or database")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if t.Identifier == "" {
			return usagef("tenants create: missing --identifier")
		}
		if err := validIdentifier(t.Identifier); err != nil {
			return err
		}
		if t.Name == "" {
			return usagef("tenants create: missing --name")
		}
		if t.ID != "" && tenancy.ValidateID(t.ID) != nil {
			return usagef("invalid tenant ID %s (1 to %d characters of letters, digits, '-' and '_', starting with a letter or digit)", quote(t.ID), tenancy.MaxIDLen)
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
			return &usageError{msg: err.Error(), err: err}
		}
		ctx := cmd.Context()
		return r.withEnv(ctx, r.connect(), func(env *Env) error {
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
			if r.json {
				return writeJSON(r.stdout, created)
			}
			fmt.Fprintf(r.stdout, "created %s (id %s, status %s)\n", created.Identifier, clean(created.ID), created.Status)
			if len(created.Domains) > 0 {
				fmt.Fprintf(r.stdout, "its custom domains resolve once verified: run %q for the DNS records to publish\n",
					r.name+" tenants domain list "+created.Identifier)
			}
			return nil
		})
	}
	return c
}

func (r *runner) listCmd() *cobra.Command {
	var status string
	c := &cobra.Command{
		Use:   "list",
		Short: "list the tenants, by identifier",
		Args:  r.positional(),
	}
	c.Flags().StringVar(&status, "status", "", "only tenants with this `STATUS`: "+statusList())
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if status != "" && !tenancy.Status(status).Valid() {
			return usagef("tenants list: invalid status %s (one of %s)", quote(status), statusList())
		}
		ctx := cmd.Context()
		conn := r.connect()
		conn.ReadOnly = true
		return r.withEnv(ctx, conn, func(env *Env) error {
			if env.Store == nil {
				return errNoStore
			}
			tenants, err := tenancy.ListAll(ctx, env.Store, tenancy.Status(status))
			if err != nil {
				return err
			}
			if r.json {
				return writeJSON(r.stdout, tenants)
			}
			printTable(r.stdout, tenants, status)
			return nil
		})
	}
	return c
}

func statusList() string {
	s := make([]string, len(tenancy.Statuses))
	for i, st := range tenancy.Statuses {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// tenantFunc changes or reads one tenant, and returns it as it should be
// printed.
type tenantFunc func(r *runner, ctx context.Context, env *Env, t *tenancy.Tenant) (*tenancy.Tenant, error)

// oneTenantCmd is a command that takes one IDENTIFIER and no flags of its
// own.
func (r *runner) oneTenantCmd(name, short string, write bool, do tenantFunc) *cobra.Command {
	c := &cobra.Command{Use: name + " IDENTIFIER", Short: short}
	r.oneTenant(c, write, do)
	return c
}

func (r *runner) suspendCmd() *cobra.Command {
	var reason string
	c := &cobra.Command{Use: "suspend IDENTIFIER", Short: "refuse a tenant's requests (403) until it is activated"}
	c.Flags().StringVar(&reason, "reason", "", "`REASON` recorded with the status")
	r.oneTenant(c, true, func(r *runner, ctx context.Context, env *Env, t *tenancy.Tenant) (*tenancy.Tenant, error) {
		if err := writable(env); err != nil {
			return nil, err
		}
		if env.Lifecycle != nil {
			return env.Lifecycle.Suspend(ctx, t.ID, reason)
		}
		return env.Store.SetStatus(ctx, t.ID, tenancy.StatusSuspended, reason)
	})
	return c
}

func (r *runner) purgeCmd() *cobra.Command {
	var force, yes bool
	c := &cobra.Command{
		Use:   "purge IDENTIFIER",
		Short: "remove everything of a tenant, for good",
		Long: `Remove everything of a tenant: its data, its record, its cache entries and
its rate-limit budget, then check that nothing of it is left. It cannot be
undone. Delete the tenant first (it is then refused, data kept), or pass
--force to purge an active or suspended tenant.

On a terminal, purge asks for the identifier to be typed again; --yes
skips that, for scripts. Without a terminal, purging an active tenant
needs --force and --yes.`,
	}
	c.Flags().BoolVar(&force, "force", false, "purge even an active tenant (otherwise delete or suspend it first)")
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for the identifier to be typed again")
	r.oneTenant(c, true, func(r *runner, ctx context.Context, env *Env, t *tenancy.Tenant) (*tenancy.Tenant, error) {
		if err := writable(env); err != nil {
			return nil, err
		}
		if env.Lifecycle == nil {
			return nil, errors.New("tenants purge needs the application's binary: purging removes the tenant's storage, which only the application knows")
		}
		if t.Status == tenancy.StatusActive && !force {
			return nil, fmt.Errorf("tenant %q is active: delete it first (tenants delete %s), or pass --force", t.Identifier, t.Identifier)
		}
		if !yes {
			if r.interactive() {
				if err := r.confirm(t); err != nil {
					return nil, err
				}
			} else if t.Status == tenancy.StatusActive {
				return nil, fmt.Errorf("tenant %q is active: purging it needs --yes as well as --force when no one can confirm at a terminal", t.Identifier)
			}
		}
		if err := env.Lifecycle.Purge(ctx, t.ID); err != nil {
			return nil, err
		}
		return t, nil
	})
	return c
}

// errCancelled is a purge that was not confirmed.
var errCancelled = errors.New("purge cancelled: the identifier typed does not match")

// confirm asks for t's identifier to be typed again.
func (r *runner) confirm(t *tenancy.Tenant) error {
	fmt.Fprintf(r.stderr, "Purging %s (%s, %s) removes all of its data for good.\nType its identifier to confirm: ",
		t.Identifier, clean(t.Name), t.Status)
	line, err := bufio.NewReader(r.stdin).ReadString('\n')
	if err != nil && line == "" {
		return errCancelled
	}
	if strings.TrimSpace(line) != t.Identifier {
		return errCancelled
	}
	return nil
}

// oneTenant finishes a command on one tenant: the IDENTIFIER is checked,
// and at run time looked up and handed to do. The tenant do returns is
// printed. A write is refused before the lookup when it could not reach a
// running server.
func (r *runner) oneTenant(c *cobra.Command, write bool, do tenantFunc) {
	c.Args = r.positional("IDENTIFIER")
	c.ValidArgsFunction = r.completeTenants
	c.RunE = func(cmd *cobra.Command, args []string) error {
		identifier := args[0]
		if err := validIdentifier(identifier); err != nil {
			return err
		}
		verb := cmd.Name()
		ctx := cmd.Context()
		conn := r.connect()
		conn.ReadOnly = !write
		return r.withEnv(ctx, conn, func(env *Env) error {
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
			if r.json {
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
		})
	}
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
		return nil, fmt.Errorf("tenant %q is %s: run %q to provision it again", t.Identifier, t.Status, r.name+" tenants retry "+t.Identifier)
	}
	if env.Lifecycle != nil {
		return env.Lifecycle.Activate(ctx, t.ID)
	}
	return env.Store.SetStatus(ctx, t.ID, tenancy.StatusActive, "")
}

func (r *runner) retry(ctx context.Context, env *Env, t *tenancy.Tenant) (*tenancy.Tenant, error) {
	if err := writable(env); err != nil {
		return nil, err
	}
	if env.Lifecycle == nil {
		return nil, errors.New("tenants retry needs the application's binary: provisioning creates the tenant's storage, which only the application knows")
	}
	if t.Status != tenancy.StatusFailed && t.Status != tenancy.StatusProvisioning {
		return nil, fmt.Errorf("tenant %q is %s: only a failed or provisioning tenant is provisioned again", t.Identifier, t.Status)
	}
	return env.Lifecycle.Retry(ctx, t.ID)
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
