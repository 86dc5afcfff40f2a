package admin

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

var errNoMigrations = errors.New("this binary has no migrations")

func (r *runner) migrateCmd() *cobra.Command {
	var (
		opts        migrate.Options
		concurrency int
	)
	c := &cobra.Command{
		Use:   "migrate",
		Short: "apply the migrations to every target (status: show where each stands)",
		Long: `Apply the application's migrations to every target: the shared tables, and
each tenant's schema, database or file. One target's failure never stops
the others; run migrate again to retry the failed ones.

On a terminal a progress bar shows the run, with failed targets above it;
otherwise an aligned table lists every target. A summary line ends the
output.`,
		Args: r.positional(),
	}
	f := c.Flags()
	f.StringVar(&opts.Tenant, "tenant", "", "migrate only the targets of the tenant with this `IDENTIFIER`")
	f.IntVar(&concurrency, "concurrency", 0, "migrate `N` targets at once (default: the application's)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "report what would be applied, apply nothing")
	f.IntVar(&opts.Canary, "canary", 0, "migrate `N` targets first; halt the rollout if more than --max-failure-rate of them fail")
	f.StringVar(&opts.CanaryTier, "canary-tier", "", "migrate the targets of tenants of this `TIER` first (at most --canary of them)")
	f.Float64Var(&opts.MaxFailureRate, "max-failure-rate", 0, "share of canary targets, 0 to 1, that may fail before the rollout halts")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if opts.Tenant != "" {
			if err := validIdentifier(opts.Tenant); err != nil {
				return err
			}
		}
		if concurrency < 0 {
			return usagef("migrate: --concurrency must be at least 1")
		}
		if opts.Canary < 0 || opts.MaxFailureRate < 0 || opts.MaxFailureRate > 1 {
			return usagef("migrate: --canary must not be negative and --max-failure-rate must be from 0 to 1")
		}
		ctx := cmd.Context()
		connect := r.connect()
		connect.Concurrency = concurrency
		return r.withEnv(ctx, connect, func(env *Env) error {
			if env.Migrator == nil {
				return errNoMigrations
			}
			p := &progress{w: r.stdout, enabled: !r.json && r.isTerminal(r.stdout)}
			opts.Progress = p.step
			report, err := env.Migrator.Up(ctx, opts)
			p.finish(report != nil)
			if report == nil {
				if err == nil {
					err = errors.New("migrate: no report")
				}
				if opts.Tenant != "" && errors.Is(err, tenancy.ErrTenantNotFound) {
					return fmt.Errorf("tenant %q not found", opts.Tenant)
				}
				return err
			}
			if r.json {
				if err := writeJSON(r.stdout, report); err != nil {
					return err
				}
			} else {
				if !p.enabled {
					printResults(r.stdout, report.Results)
				}
				suffix := ""
				if opts.DryRun {
					suffix = " (dry run: nothing applied)"
				}
				fmt.Fprintf(r.stdout, "%s in %s%s\n", summary(report), formatDuration(report.Duration), suffix)
			}
			if failed := report.Failed(); len(failed) > 0 {
				if held := report.Count(migrate.StatusHeld); held > 0 {
					return fmt.Errorf("%w; rollout halted by the canary, %d targets held", failedTargets(r.name, failed, len(report.Results)), held)
				}
				return failedTargets(r.name, failed, len(report.Results))
			}
			return err
		})
	}
	c.AddCommand(r.migrateStatusCmd())
	return c
}

func (r *runner) migrateStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "show each target's version and state; apply nothing",
		Args:  r.positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			conn := r.connect()
			conn.ReadOnly = true
			return r.withEnv(ctx, conn, func(env *Env) error {
				if env.Migrator == nil {
					return errNoMigrations
				}
				report, err := env.Migrator.Status(ctx)
				if err != nil {
					return err
				}
				if r.json {
					return writeJSON(r.stdout, report)
				}
				if len(report.Results) > 0 {
					tw := tabwriter.NewWriter(r.stdout, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "TENANT\tTARGET\tVERSION\tLATEST\tSTATUS\tERROR")
					for _, res := range report.Results {
						fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", orDash(res.Identifier), clean(res.Target), res.From,
							report.Latest, res.Status, orDash(oneLine(res.Error)))
					}
					_ = tw.Flush()
				}
				fmt.Fprintln(r.stdout, summary(report))
				return nil
			})
		},
	}
}

// printResults prints a run's results as an aligned table.
func printResults(w io.Writer, results []migrate.Result) {
	if len(results) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tTARGET\tFROM\tTO\tSTATUS\tDURATION\tERROR")
	for _, res := range results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", orDash(res.Identifier), clean(res.Target), res.From, res.To,
			res.Status, formatDuration(res.Duration), orDash(oneLine(res.Error)))
	}
	_ = tw.Flush()
}

// failedTargets is the error line of a run with failed targets.
func failedTargets(name string, failed []migrate.Result, total int) error {
	const show = 10
	names := make([]string, 0, min(len(failed), show))
	for i, f := range failed {
		if i == show {
			names = append(names, fmt.Sprintf("and %d more", len(failed)-show))
			break
		}
		names = append(names, targetName(f))
	}
	return fmt.Errorf("migrate: %d of %d targets failed: %s (run %q again to retry them)", len(failed), total, strings.Join(names, ", "), name+" migrate")
}

func targetName(res migrate.Result) string {
	if res.Identifier != "" {
		return res.Identifier
	}
	return clean(res.Target)
}

// summary counts a report's results by status:
// "12 targets: 3 migrated, 8 skipped, 1 failed".
func summary(report *migrate.Report) string {
	n := len(report.Results)
	noun := "targets"
	if n == 1 {
		noun = "target"
	}
	var parts []string
	for _, s := range []migrate.Status{migrate.StatusMigrated, migrate.StatusCurrent, migrate.StatusSkipped, migrate.StatusPending, migrate.StatusFailed, migrate.StatusHeld} {
		if k := report.Count(s); k > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", k, s))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %s: %s", n, noun, strings.Join(parts, ", "))
}

// resultLine is one failed target, printed above the progress bar:
// "acme-corp  1 -> 5  failed  42ms  <error>".
func resultLine(res migrate.Result) string {
	line := fmt.Sprintf("%s  %d -> %d  %s  %s", targetName(res), res.From, res.To, res.Status, formatDuration(res.Duration))
	if res.Error != "" {
		line += "  " + oneLine(res.Error)
	}
	return line
}

// progress draws a bar on a terminal as targets finish, with failed
// targets above it; it draws nothing when not enabled.
type progress struct {
	w       io.Writer
	enabled bool
	bar     *progressbar.ProgressBar
}

// step is migrate.Options.Progress; the runner serializes its calls.
func (p *progress) step(_, total int, res migrate.Result) {
	if !p.enabled {
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("migrating"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(65*time.Millisecond),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	if res.Status == migrate.StatusFailed {
		// Above the bar, which the next render draws again.
		_ = p.bar.Clear()
		fmt.Fprintln(p.w, resultLine(res))
	}
	_ = p.bar.Add(1)
}

// finish ends the bar's line, showing it complete when the run was.
func (p *progress) finish(complete bool) {
	if p.bar == nil {
		return
	}
	if complete {
		_ = p.bar.Finish()
	} else {
		_ = p.bar.Exit()
	}
	fmt.Fprintln(p.w)
}
