package admin

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/move"
	"github.com/spf13/cobra"
)

var errNoMover = errors.New("this binary's isolation cannot move tenants' data (moves need PostgreSQL with shared tables or a schema per tenant)")

// moveCmd is tenants move: a change of server or strategy while the tenant
// serves.
func (r *runner) moveCmd() *cobra.Command {
	var to, strategy string
	c := &cobra.Command{
		Use:   "move IDENTIFIER [--to SERVER] [--strategy schema|rls]",
		Short: "move a tenant's data to another server or isolation strategy while it serves",
		Long: `Copy the tenant's data to its new place while it serves, verify it (row
counts and a checksum per table), switch the tenant after a short freeze
of that tenant's statements only, then remove the old copy. A move stopped
at any step resumes when run again with the same destination.`,
	}
	c.Flags().StringVar(&to, "to", "", "`SERVER`: the placement to move to")
	c.Flags().StringVar(&strategy, "strategy", "", "`STRATEGY` to move to: schema or rls")
	r.moveTenant(c, func(*cobra.Command, []string) (move.To, error) {
		var dest move.To
		if c.Flags().Changed("to") {
			dest.Placement = &to
		}
		if strategy != "" {
			iso := tenancy.Isolation(strategy)
			if iso != tenancy.IsolationSchema && iso != tenancy.IsolationRLS {
				return dest, usagef("--strategy must be schema or rls, not %q", strategy)
			}
			dest.Isolation = &iso
		}
		if dest.Placement == nil && dest.Isolation == nil {
			return dest, usagef("tenants move: give --to SERVER, --strategy schema|rls, or both")
		}
		return dest, nil
	})
	return c
}

// setTierCmd is tenants set-tier: a change of tier, which moves the
// tenant's data when the tier maps to another strategy.
func (r *runner) setTierCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "set-tier IDENTIFIER TIER",
		Short: "change a tenant's tier, moving its data when the tier's isolation differs",
	}
	r.moveTenant(c, func(_ *cobra.Command, args []string) (move.To, error) {
		if args[1] == "" {
			return move.To{}, usagef("tenants set-tier: TIER may not be empty")
		}
		return move.To{Tier: &args[1]}, nil
	})
	c.Args = r.positional("IDENTIFIER", "TIER")
	return c
}

// moveTenant finishes a command that moves one tenant to where dest says.
func (r *runner) moveTenant(c *cobra.Command, dest func(*cobra.Command, []string) (move.To, error)) {
	c.Args = r.positional("IDENTIFIER")
	c.ValidArgsFunction = r.completeTenants
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if err := validIdentifier(args[0]); err != nil {
			return err
		}
		to, err := dest(cmd, args)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		return r.withEnv(ctx, r.connect(), func(env *Env) error {
			if err := writable(env); err != nil {
				return err
			}
			if env.Mover == nil && (to.Tier == nil || to.Isolation != nil || to.Placement != nil) {
				return errNoMover
			}
			t, err := lookupTenant(ctx, env, args[0])
			if err != nil {
				return err
			}
			if env.Mover == nil {
				// One place for every tier: only the record changes.
				out, err := env.Store.Update(ctx, t.ID, tenancy.Update{Tier: to.Tier})
				if err != nil {
					return err
				}
				if r.json {
					return writeJSON(r.stdout, out)
				}
				fmt.Fprintf(r.stdout, "%s: tier %q\n", out.Identifier, out.Tier)
				return nil
			}
			res, err := move.Tenant(ctx, *env.Mover, t.ID, to)
			if err != nil {
				return err
			}
			if r.json {
				return writeJSON(r.stdout, res)
			}
			if res.From.Same(res.To) {
				fmt.Fprintf(r.stdout, "%s: tier %q, %s (no data moved)\n", res.Tenant.Identifier, res.Tenant.Tier, res.To)
				return nil
			}
			fmt.Fprintf(r.stdout, "%s moved from %s to %s (tier %q); frozen %s\n",
				res.Tenant.Identifier, res.From, res.To, res.Tenant.Tier, res.Freeze.Round(1e6))
			return nil
		})
	}
}

// exportCmd is tenants export: a tenant's data as a portable archive.
func (r *runner) exportCmd() *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "export IDENTIFIER --output FILE",
		Short: "write a tenant's data to an archive (a consistent snapshot, taken while it serves)",
	}
	c.Flags().StringVarP(&output, "output", "o", "", "`FILE` to write the archive to (- for stdout)")
	c.Args = r.positional("IDENTIFIER")
	c.ValidArgsFunction = r.completeTenants
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if err := validIdentifier(args[0]); err != nil {
			return err
		}
		if output == "" {
			return usagef("tenants export: --output FILE is required (- for stdout)")
		}
		ctx := cmd.Context()
		conn := r.connect()
		conn.ReadOnly = true
		return r.withEnv(ctx, conn, func(env *Env) error {
			if env.Mover == nil {
				return errNoMover
			}
			t, err := lookupTenant(ctx, env, args[0])
			if err != nil {
				return err
			}
			var w io.Writer = r.stdout
			var f *os.File
			if output != "-" {
				if f, err = os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
					return err
				}
				w = f
			}
			man, err := move.Export(ctx, *env.Mover, t.ID, w)
			if f != nil {
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					_ = os.Remove(output)
				}
			}
			if err != nil {
				return err
			}
			if output != "-" {
				printManifest(r.stderr, "exported", t, man)
			}
			return nil
		})
	}
	return c
}

// importCmd is tenants import: restore a tenant's data from an archive.
func (r *runner) importCmd() *cobra.Command {
	var input string
	c := &cobra.Command{
		Use:   "import IDENTIFIER --input FILE",
		Short: "replace a tenant's data by an archive's, verified before anything changes",
	}
	c.Flags().StringVarP(&input, "input", "i", "", "`FILE` to read the archive from (- for stdin)")
	c.Args = r.positional("IDENTIFIER")
	c.ValidArgsFunction = r.completeTenants
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if err := validIdentifier(args[0]); err != nil {
			return err
		}
		if input == "" {
			return usagef("tenants import: --input FILE is required (- for stdin)")
		}
		ctx := cmd.Context()
		return r.withEnv(ctx, r.connect(), func(env *Env) error {
			if err := writable(env); err != nil {
				return err
			}
			if env.Mover == nil {
				return errNoMover
			}
			t, err := lookupTenant(ctx, env, args[0])
			if err != nil {
				return err
			}
			in := r.stdin
			if input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			man, err := move.Import(ctx, *env.Mover, t.ID, in)
			if err != nil {
				return err
			}
			printManifest(r.stdout, "imported", t, man)
			return nil
		})
	}
	return c
}

func printManifest(w io.Writer, verb string, t *tenancy.Tenant, man *move.Manifest) {
	var rows int64
	for _, tb := range man.Tables {
		rows += tb.Rows
	}
	fmt.Fprintf(w, "%s %s: %d tables, %d rows, verified\n", verb, t.Identifier, len(man.Tables), rows)
}
