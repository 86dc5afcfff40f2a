package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/customdomain"
	"github.com/spf13/cobra"
)

func (r *runner) domainCmd() *cobra.Command {
	sub := func(name, args, short string, second string, check func(string) (string, error), write bool, do domainFunc) *cobra.Command {
		c := &cobra.Command{Use: name + " " + args, Short: short}
		r.tenantAnd(c, second, check, write, do)
		return c
	}
	return r.group("domain", "add, verify, remove and list a tenant's custom domains", `Custom domains are host names outside the service's base domain, such as
app.acme.com. One is added unverified, with a token to publish in a DNS TXT
record at _tenancy-challenge.<domain>; verify checks the record and, when it
holds the token, marks the domain verified: only then does it resolve.`, "add, verify, remove or list",
		sub("add", "IDENTIFIER DOMAIN", "add an unverified custom domain and print its record", "DOMAIN", checkDomainArg, true, (*runner).domainAdd),
		sub("verify", "IDENTIFIER DOMAIN", "check the domain's TXT record and mark it verified", "DOMAIN", checkDomainArg, true, (*runner).domainVerify),
		sub("remove", "IDENTIFIER DOMAIN", "remove a custom domain, verified or not", "DOMAIN", checkDomainArg, true, (*runner).domainRemove),
		sub("list", "IDENTIFIER", "list the tenant's custom domains and their state", "", nil, false, (*runner).domainList),
	)
}

func (r *runner) aliasCmd() *cobra.Command {
	sub := func(name, short string, do domainFunc) *cobra.Command {
		c := &cobra.Command{Use: name + " IDENTIFIER ALIAS", Short: short}
		r.tenantAnd(c, "ALIAS", checkAliasArg, true, do)
		return c
	}
	return r.group("alias", "add and remove a tenant's aliases", `An alias is one more name of a tenant under the service's base domain, such
as "acme" for acme-corp (acme.<base domain>). Aliases and identifiers share
one namespace: no alias equals another alias or any tenant's identifier.`, "add or remove",
		sub("add", "add an alias", (*runner).aliasAdd),
		sub("remove", "remove an alias", (*runner).aliasRemove),
	)
}

func checkDomainArg(s string) (string, error) {
	d, ok := tenancy.NormalizeDomain(s)
	if !ok {
		return "", usagef("invalid custom domain %s (a host name of two labels or more, not an IP address)", quote(s))
	}
	return d, nil
}

func checkAliasArg(s string) (string, error) {
	a, ok := tenancy.NormalizeAlias(s)
	if !ok {
		return "", usagef("invalid alias %s (one DNS label: 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-')", quote(s))
	}
	return a, nil
}

// domainFunc runs a command on a tenant and one more argument.
type domainFunc func(r *runner, ctx context.Context, env *Env, t *tenancy.Tenant, value string) error

// tenantAnd finishes a command on one tenant and, when second names it,
// one more argument that check normalizes. At run time the tenant is
// looked up and handed to do with that argument. A write is refused before
// the lookup when it could not reach a running server.
func (r *runner) tenantAnd(c *cobra.Command, second string, check func(string) (string, error), write bool, do domainFunc) {
	names := []string{"IDENTIFIER"}
	if second != "" {
		names = append(names, second)
	}
	c.Args = r.positional(names...)
	c.ValidArgsFunction = r.completeTenants
	c.RunE = func(cmd *cobra.Command, args []string) error {
		identifier := args[0]
		if err := validIdentifier(identifier); err != nil {
			return err
		}
		var value string
		if second != "" {
			var err error
			if value, err = check(args[1]); err != nil {
				return err
			}
		}
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
			if err := do(r, ctx, env, t, value); err != nil {
				if errors.Is(err, tenancy.ErrTenantNotFound) {
					return fmt.Errorf("tenant %q not found", identifier)
				}
				return err
			}
			return nil
		})
	}
}

// domainManager returns the custom domain manager of env, or why there is none.
func domainManager(env *Env) (customdomain.Manager, error) {
	if strings.Trim(env.BaseDomain, ".") == "" {
		return customdomain.Manager{}, errors.New("custom domains need the service's base domain, so that none is added under it: this binary sets no Env.BaseDomain")
	}
	return customdomain.Manager{Store: env.Store, BaseDomain: env.BaseDomain, Resolver: env.DNS}, nil
}

func (r *runner) domainAdd(ctx context.Context, env *Env, t *tenancy.Tenant, domain string) error {
	m, err := domainManager(env)
	if err != nil {
		return err
	}
	d, err := m.Add(ctx, t.ID, domain)
	if err != nil {
		return err
	}
	if r.json {
		return writeJSON(r.stdout, d)
	}
	if d.Verified() {
		fmt.Fprintf(r.stdout, "%s is already a verified domain of %s\n", d.Name, t.Identifier)
		return nil
	}
	fmt.Fprintf(r.stdout, "added %s to %s, unverified: it resolves once verified\n", d.Name, t.Identifier)
	fmt.Fprintf(r.stdout, "publish this DNS record, then run %q:\n", r.name+" tenants domain verify "+t.Identifier+" "+d.Name)
	fmt.Fprintf(r.stdout, "  %s. TXT %q\n", customdomain.ChallengeName(d.Name), d.Token)
	return nil
}

func (r *runner) domainVerify(ctx context.Context, env *Env, t *tenancy.Tenant, domain string) error {
	m, err := domainManager(env)
	if err != nil {
		return err
	}
	d, err := m.Verify(ctx, t.ID, domain)
	if errors.Is(err, tenancy.ErrDomainNotFound) {
		return fmt.Errorf("tenant %q has no custom domain %s (add it with %q)", t.Identifier, domain, r.name+" tenants domain add")
	}
	if err != nil {
		return err
	}
	if r.json {
		return writeJSON(r.stdout, d)
	}
	fmt.Fprintf(r.stdout, "%s is verified for %s\n", d.Name, t.Identifier)
	return nil
}

func (r *runner) domainRemove(ctx context.Context, env *Env, t *tenancy.Tenant, domain string) error {
	held, err := env.Store.ListDomains(ctx, t.ID)
	if err != nil {
		return fmt.Errorf("list domains of %q: %w", t.Identifier, err)
	}
	i := slices.IndexFunc(held, func(d tenancy.Domain) bool { return d.Name == domain })
	if err == nil && i >= 0 {
		err = env.Store.RemoveDomain(ctx, t.ID, domain)
	}
	if i < 0 || errors.Is(err, tenancy.ErrDomainNotFound) {
		return fmt.Errorf("tenant %q has no custom domain %s", t.Identifier, domain)
	}
	if err != nil {
		return err
	}
	if r.json {
		return writeJSON(r.stdout, held[i])
	}
	fmt.Fprintf(r.stdout, "removed %s from %s\n", domain, t.Identifier)
	return nil
}

func (r *runner) domainList(ctx context.Context, env *Env, t *tenancy.Tenant, _ string) error {
	held, err := env.Store.ListDomains(ctx, t.ID)
	if err != nil {
		return fmt.Errorf("list domains of %q: %w", t.Identifier, err)
	}
	if r.json {
		return writeJSON(r.stdout, held)
	}
	if len(held) == 0 {
		fmt.Fprintf(r.stdout, "%s has no custom domains\n", t.Identifier)
		return nil
	}
	tw := tabwriter.NewWriter(r.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tSTATUS\tVERIFIED\tCHALLENGE RECORD")
	for _, d := range held {
		status, verified := "unverified", "-"
		if d.Verified() {
			status, verified = "verified", d.VerifiedAt.UTC().Format(time.RFC3339)
		}
		if env.BaseDomain != "" {
			if _, err := customdomain.CheckDomain(env.BaseDomain, d.Name); err != nil {
				status = "never resolves (under the base domain)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s TXT %q\n", d.Name, status, verified, customdomain.ChallengeName(d.Name), d.Token)
	}
	return tw.Flush()
}

func (r *runner) aliasAdd(ctx context.Context, env *Env, t *tenancy.Tenant, alias string) error {
	out := t
	if !slices.Contains(t.Aliases, alias) {
		aliases := append(slices.Clone(t.Aliases), alias)
		var err error
		if out, err = env.Store.Update(ctx, t.ID, tenancy.Update{Aliases: &aliases}); err != nil {
			return err
		}
	}
	if r.json {
		return writeJSON(r.stdout, out)
	}
	fmt.Fprintf(r.stdout, "%s answers to the alias %s\n", out.Identifier, alias)
	return nil
}

func (r *runner) aliasRemove(ctx context.Context, env *Env, t *tenancy.Tenant, alias string) error {
	if !slices.Contains(t.Aliases, alias) {
		return fmt.Errorf("tenant %q has no alias %s", t.Identifier, alias)
	}
	aliases := slices.DeleteFunc(slices.Clone(t.Aliases), func(a string) bool { return a == alias })
	out, err := env.Store.Update(ctx, t.ID, tenancy.Update{Aliases: &aliases})
	if err != nil {
		return err
	}
	if r.json {
		return writeJSON(r.stdout, out)
	}
	fmt.Fprintf(r.stdout, "removed the alias %s from %s\n", alias, out.Identifier)
	return nil
}
