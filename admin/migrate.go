package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/schollz/progressbar/v3"
)

var errNoMigrations = errors.New("this binary has no migrations")

func (r *runner) parseMigrate(args []string) (*invocation, error) {
	if len(args) > 0 && args[0] == "status" {
		c := r.command("migrate status", "migrate status")
		if _, err := c.parse(args[1:]); err != nil {
			return nil, err
		}
		return r.migrateStatus(c), nil
	}
	c := r.command("migrate", "migrate [--tenant IDENTIFIER] [--concurrency N] [--dry-run]\n       "+r.name+" migrate status")
	var (
		opts        migrate.Options
		concurrency int
	)
	c.fs.StringVar(&opts.Tenant, "tenant", "", "migrate only the targets of the tenant with this `IDENTIFIER`")
	c.fs.IntVar(&concurrency, "concurrency", 0, "migrate `N` targets at once (default: the application's)")
	c.fs.BoolVar(&opts.DryRun, "dry-run", false, "report what would be applied, apply nothing")
	rest, err := c.parseFlags(args)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 && rest[0] == "status" {
		// "migrate --json status": the shared flags may come first.
		if opts.Tenant != "" || concurrency != 0 || opts.DryRun {
			return nil, usagef("migrate status: --tenant, --concurrency and --dry-run apply to migrate, not to its status")
		}
		if err := c.checkArgs(rest[1:]); err != nil {
			return nil, err
		}
		return r.migrateStatus(c), nil
	}
	if err := c.checkArgs(rest); err != nil {
		return nil, err
	}
	if opts.Tenant != "" {
		if err := validIdentifier(opts.Tenant); err != nil {
			return nil, err
		}
	}
	if concurrency < 0 {
		return nil, usagef("migrate: --concurrency must be at least 1")
	}
	connect := c.connect()
	connect.Concurrency = concurrency
	return &invocation{connect: connect, run: func(ctx context.Context, env *Env) error {
		if env.Migrator == nil {
			return errNoMigrations
		}
		p := &progress{w: r.stdout, quiet: c.json, terminal: r.isTerminal(r.stdout)}
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
		if c.json {
			if err := writeJSON(r.stdout, report); err != nil {
				return err
			}
		} else {
			suffix := ""
			if opts.DryRun {
				suffix = " (dry run: nothing applied)"
			}
			fmt.Fprintf(r.stdout, "%s in %s%s\n", summary(report), formatDuration(report.Duration), suffix)
		}
		if failed := report.Failed(); len(failed) > 0 {
			return failedTargets(r.name, failed, len(report.Results))
		}
		return err
	}}, nil
}

func (r *runner) migrateStatus(c *command) *invocation {
	return &invocation{connect: c.connect(), run: func(ctx context.Context, env *Env) error {
		if env.Migrator == nil {
			return errNoMigrations
		}
		report, err := env.Migrator.Status(ctx)
		if err != nil {
			return err
		}
		if c.json {
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
	}}
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
	for _, s := range []migrate.Status{migrate.StatusMigrated, migrate.StatusCurrent, migrate.StatusSkipped, migrate.StatusPending, migrate.StatusFailed} {
		if k := report.Count(s); k > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", k, s))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %s: %s", n, noun, strings.Join(parts, ", "))
}

// resultLine is one finished target: "acme-corp  1 -> 5  migrated  42ms".
func resultLine(res migrate.Result) string {
	line := fmt.Sprintf("%s  %d -> %d  %s  %s", targetName(res), res.From, res.To, res.Status, formatDuration(res.Duration))
	if res.Error != "" {
		line += "  " + oneLine(res.Error)
	}
	return line
}

// progress shows targets as they finish: a bar on a terminal, a line per
// target otherwise, nothing under --json.
type progress struct {
	w               io.Writer
	quiet, terminal bool
	bar             *progressbar.ProgressBar
}

// step is migrate.Options.Progress; the runner serializes its calls.
func (p *progress) step(_, total int, res migrate.Result) {
	switch {
	case p.quiet:
	case p.terminal:
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
	default:
		fmt.Fprintln(p.w, resultLine(res))
	}
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
