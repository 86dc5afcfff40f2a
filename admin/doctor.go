package admin

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

var errNoDoctor = errors.New("doctor needs PostgreSQL (set DATABASE_URL to a postgres:// URL)")

func (r *runner) doctorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "inspect the database for what would let tenants reach each other's rows",
		Long: `Inspect the live database for what would let one tenant reach another's
rows: tables without row-level security or policies, unsafe roles, views and
functions that bypass the policies. Exit status 1 when anything is found.`,
		Args: r.positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			conn := r.connect()
			conn.ReadOnly = true
			return r.withEnv(ctx, conn, func(env *Env) error {
				if env.Doctor == nil {
					return errNoDoctor
				}
				report, err := env.Doctor(ctx)
				if err != nil {
					return err
				}
				if r.json {
					if err := writeJSON(r.stdout, report); err != nil {
						return err
					}
				} else {
					for _, f := range report.Findings {
						fmt.Fprintln(r.stdout, oneLine(f.String()))
					}
					for _, info := range report.Info {
						fmt.Fprintln(r.stdout, "info: "+oneLine(info))
					}
					if len(report.Findings) == 0 {
						fmt.Fprintln(r.stdout, "no findings: tenant isolation looks sound")
					}
				}
				switch n := len(report.Findings); n {
				case 0:
					return nil
				case 1:
					return errors.New("doctor: 1 finding weakens tenant isolation")
				default:
					return fmt.Errorf("doctor: %d findings weaken tenant isolation", n)
				}
			})
		},
	}
}
