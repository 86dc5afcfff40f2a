package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/customdomain"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/lifecycle"
	"github.com/go-tenancy/tenancy/migrate"
	"github.com/go-tenancy/tenancy/move"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Connect is what the CLI learned from the --database-url and --redis-url
// flags or, when unset, the DATABASE_URL / REDIS_URL environment variables,
// and what the command needs.
type Connect struct {
	DatabaseURL, RedisURL string
	// Concurrency is migrate --concurrency: how many targets to migrate at
	// once. Zero means the application's default; Open passes it to
	// migrate.Config.Concurrency when it builds the Runner.
	Concurrency int
	// ReadOnly is true for commands that only read (tenants list and show,
	// tenants domain list, migrate status, doctor, shell completion): Open
	// should then change nothing, neither migrate the tenant store nor
	// create the migration journal nor grant roles, so that these commands
	// work with the request role's DATABASE_URL alone.
	ReadOnly bool
}

// Env is what commands work on; the app builds it in App.Open.
//
// Give the Migrator and Lifecycle a logger that does not write to the
// terminal (slog.New(slog.DiscardHandler) will do): the commands report
// every outcome themselves, and stderr carries one line per error.
type Env struct {
	// Store keeps the tenant records; the tenants commands need it. Pass
	// the cache decorator when there is one, so that changes reach every
	// running instance.
	Store tenancy.Store
	// Persistent is false for a store in the CLI process's memory: tenant
	// writes are then refused with one clear line.
	Persistent bool
	// BaseDomain is the domain tenants get subdomains of, as the service's
	// host resolver has it (resolve.Host.BaseDomain), such as "example.com".
	// tenants domain add and tenants create --domain refuse custom domains
	// equal to it or under it, and are refused while it is empty.
	BaseDomain string
	// DNS looks up the TXT records that tenants domain verify checks.
	// Default net.DefaultResolver.
	DNS customdomain.Resolver
	// Lifecycle runs create (Provision), suspend, activate, delete and
	// purge. Build it with the application's components
	// (lifecycle.Config.Components: its cache, rate limiter, job queue), so
	// that a purge forgets the tenant there too and proves it. Nil: create
	// and purge are refused with a line saying they need the application
	// binary; suspend, activate and delete fall back to Store.SetStatus and
	// Store.Delete.
	Lifecycle *lifecycle.Manager
	// Migrator runs the migrate commands. Nil: they are refused ("this
	// binary has no migrations").
	Migrator *migrate.Runner
	// Doctor runs the isolation doctor. Nil: the doctor command is refused
	// ("doctor needs PostgreSQL").
	Doctor func(ctx context.Context) (*postgres.Report, error)
	// Mover moves, exports and imports tenants' data: tenants move,
	// set-tier, export and import. Nil: set-tier changes only the record,
	// and the others are refused.
	Mover *move.Mover
	// Close, when set, is called once the command is done.
	Close func()
}

// App is an administration CLI mounted in an application's binary.
type App struct {
	// Name is the binary name in usage and error lines, e.g. "notekeeper".
	// Default: the base name of os.Args[0].
	Name string
	// Short is the one-line description at the top of the help. Default:
	// "administer a multi-tenant service".
	Short string
	// Open builds the environment commands work on. It is called after the
	// command line was checked, so that bad input never opens anything.
	// Required.
	Open func(ctx context.Context, c Connect) (*Env, error)
	// Setup returns the roles and database the setup command writes SQL
	// for, from the application's configuration (SetupFromURLs reads them
	// from a request URL and a migration URL). Nil: setup is refused.
	Setup func(c Connect) (postgres.SetupConfig, error)
	// Commands are the application's own commands, mounted beside the
	// admin commands (Notekeeper's serve and healthcheck). Their errors are
	// reported like the admin commands': one line on Stderr and exit status
	// 1, or 2 for errors made with UsageError. Default none.
	Commands []*cobra.Command
	// Default names the command of Commands run when the command line
	// names none, such as "serve". Default: none, and a missing command is
	// a usage error.
	Default string
	// Stdout receives command output. Default os.Stdout.
	Stdout io.Writer
	// Stderr receives one line per error, and prompts. Default os.Stderr.
	Stderr io.Writer
	// Stdin answers prompts (tenants purge asks for the identifier to be
	// typed again). Default os.Stdin.
	Stdin io.Reader
	// Getenv reads DATABASE_URL, REDIS_URL and ADMIN_DATABASE_URL. Default
	// os.Getenv.
	Getenv func(string) string
	// IsTerminal reports whether w is a terminal, which turns on the
	// progress bar. Default: golang.org/x/term on an *os.File, false
	// otherwise.
	IsTerminal func(w io.Writer) bool
	// Interactive reports whether a person can answer prompts: then tenants
	// purge asks for the identifier to be typed again unless --yes is
	// given. Default: Stdin and Stderr are terminals.
	Interactive func() bool
}

// IsCommand reports whether arg, the first argument of an application's
// binary, names an admin command: "tenants", "migrate", "doctor", "setup",
// "help", "completion" (and cobra's hidden completion commands), "-h" or
// "--help".
func IsCommand(arg string) bool {
	switch arg {
	case "tenants", "migrate", "doctor", "setup", "help", "completion",
		cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd, "-h", "--help":
		return true
	}
	return false
}

// Exit statuses of Run.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// UsageError marks err as bad input on the command line: Run reports it
// with exit status 2. Application commands (App.Commands) return it for
// their own usage errors.
func UsageError(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{msg: err.Error(), err: err}
}

// usageError is bad input on the command line: exit status 2.
type usageError struct {
	msg string
	err error
}

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Run runs the command in args (the arguments after the binary name) and
// returns the exit status: ExitOK, ExitFailure or ExitUsage. Errors are
// written to Stderr as one line each; Run never panics.
func (a *App) Run(ctx context.Context, args []string) (code int) {
	r := &runner{app: a, name: a.Name, open: a.Open, stdout: a.Stdout, stderr: a.Stderr, stdin: a.Stdin,
		getenv: a.Getenv, isTerminal: a.IsTerminal, interactive: a.Interactive}
	if r.name == "" {
		r.name = filepath.Base(os.Args[0])
	}
	if r.stdout == nil {
		r.stdout = os.Stdout
	}
	if r.stderr == nil {
		r.stderr = os.Stderr
	}
	if r.stdin == nil {
		r.stdin = os.Stdin
	}
	if r.getenv == nil {
		r.getenv = os.Getenv
	}
	if r.isTerminal == nil {
		r.isTerminal = isTerminal
	}
	if r.interactive == nil {
		r.interactive = func() bool { return isTerminalReader(r.stdin) && r.isTerminal(r.stderr) }
	}
	defer func() {
		if v := recover(); v != nil {
			code = r.fail(ctx, fmt.Errorf("internal error: %v", v))
		}
	}()
	root := r.root()
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		return r.fail(ctx, err)
	}
	return ExitOK
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func isTerminalReader(rd io.Reader) bool {
	f, ok := rd.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// runner is one Run: the App's settings with defaults applied, and the
// flags every command shares.
type runner struct {
	app            *App
	name           string
	open           func(ctx context.Context, c Connect) (*Env, error)
	stdout, stderr io.Writer
	stdin          io.Reader
	getenv         func(string) string
	isTerminal     func(w io.Writer) bool
	interactive    func() bool

	json                  bool
	databaseURL, redisURL string
}

// root builds the command tree.
func (r *runner) root() *cobra.Command {
	short := r.app.Short
	if short == "" {
		short = "administer a multi-tenant service"
	}
	root := &cobra.Command{
		Use:   r.name,
		Short: short,
		Long: r.name + ": " + short + `.

Flags may come before or after arguments; "--" ends the flags.
Exit status: 0 success, 1 failure, 2 usage error.`,
		Args:          cobra.ArbitraryArgs,
		Annotations:   map[string]string{"group": "yes"},
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %s (run %q)", quote(args[0]), r.name+" help")
			}
			if r.app.Default != "" {
				for _, c := range cmd.Commands() {
					if c.Name() == r.app.Default && c.RunE != nil {
						return c.RunE(c, nil)
					}
				}
			}
			return usagef("missing command (run %q)", r.name+" help")
		},
	}
	root.CompletionOptions.HiddenDefaultCmd = false
	root.SetOut(r.stdout)
	root.SetErr(r.stderr)
	root.SetIn(r.stdin)
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if !c.HasParent() {
			return usagef("%v (run %q)", err, r.name+" help")
		}
		return usagef("%s: %v (run %q)", r.path(c), err, c.CommandPath()+" --help")
	})
	pf := root.PersistentFlags()
	pf.BoolVar(&r.json, "json", false, "print machine-readable JSON on stdout")
	pf.StringVar(&r.databaseURL, "database-url", "", "`URL` of the database to work on (default $DATABASE_URL)")
	pf.StringVar(&r.redisURL, "redis-url", "", "`URL` of the running servers' Redis (default $REDIS_URL)")
	root.AddCommand(r.tenantsCmd(), r.migrateCmd(), r.doctorCmd(), r.setupCmd())
	root.AddCommand(r.app.Commands...)
	return root
}

// path is the command's path without the binary name: "tenants list", or
// the binary name for the root.
func (r *runner) path(c *cobra.Command) string {
	p := c.CommandPath()
	if i := strings.IndexByte(p, ' '); i >= 0 {
		return p[i+1:]
	}
	return p
}

// usageTemplate is cobra's, with one usage line per command: a command
// that holds others is run through them.
const usageTemplate = `Usage:{{if not (index .Annotations "group")}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} <command> [flags]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Flags of every command:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Run "{{.CommandPath}} <command> --help" for a command's flags.{{end}}
`

// group is a command that only holds subcommands: without one, or with an
// unknown one, it is a usage error.
func (r *runner) group(use, short, long, names string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Long: long, Args: cobra.ArbitraryArgs, Annotations: map[string]string{"group": "yes"}}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		p := r.path(cmd)
		if len(args) == 0 {
			return usagef("%s: missing command: %s (run %q)", p, names, r.name+" help "+p)
		}
		return usagef("%s: unknown command %s (run %q)", p, quote(args[0]), r.name+" help "+p)
	}
	c.AddCommand(subs...)
	return c
}

// positional checks that a command got exactly the arguments names.
func (r *runner) positional(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		p := r.path(cmd)
		if len(args) < len(names) {
			return usagef("%s: missing %s (usage: %s)", p, names[len(args)], cmd.UseLine())
		}
		if len(args) > len(names) {
			return usagef("%s: unexpected argument %s (usage: %s)", p, quote(args[len(names)]), cmd.UseLine())
		}
		return nil
	}
}

// connect resolves the URLs: the flags, then the environment.
func (r *runner) connect() Connect {
	return Connect{
		DatabaseURL: first(r.databaseURL, r.getenv("DATABASE_URL")),
		RedisURL:    first(r.redisURL, r.getenv("REDIS_URL")),
	}
}

// withEnv opens the environment for c, runs fn on it and closes it.
func (r *runner) withEnv(ctx context.Context, c Connect, fn func(env *Env) error) error {
	if r.open == nil {
		return errors.New("admin.App.Open is not set")
	}
	env, err := r.open(ctx, c)
	if err != nil {
		return err
	}
	if env == nil {
		return errors.New("admin.App.Open returned no environment")
	}
	if env.Close != nil {
		defer env.Close()
	}
	return fn(env)
}

// fail writes err as one line, or one line per error when err joins
// several (errors.Join, possibly marked with UsageError), each starting
// with the name; it returns the exit status.
func (r *runner) fail(ctx context.Context, err error) int {
	inner := err
	var u *usageError
	if errors.As(err, &u) && u.err != nil {
		inner = u.err
	}
	if j, ok := inner.(interface{ Unwrap() []error }); ok && ctx.Err() == nil {
		for _, e := range j.Unwrap() {
			fmt.Fprintf(r.stderr, "%s: %s\n", r.name, oneLine(describe(ctx, e)))
		}
	} else {
		fmt.Fprintf(r.stderr, "%s: %s\n", r.name, oneLine(describe(ctx, err)))
	}
	if u != nil {
		return ExitUsage
	}
	return ExitFailure
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// validIdentifier checks an identifier from the command line before
// anything is opened.
func validIdentifier(s string) error {
	if s == "" {
		return usagef("missing tenant identifier")
	}
	if tenancy.ValidateIdentifier(s) != nil {
		return usagef("invalid tenant identifier %s (%d to %d characters of a-z, 0-9 and '-', starting with a letter and not ending with '-')",
			quote(s), tenancy.MinIdentifierLen, tenancy.MaxIdentifierLen)
	}
	return nil
}

// completeTenants completes a command's first argument with the
// identifiers of the tenants in the store, opened read-only.
func (r *runner) completeTenants(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 || r.open == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	c := r.connect()
	c.ReadOnly = true
	_ = r.withEnv(cmd.Context(), c, func(env *Env) error {
		if env.Store == nil {
			return nil
		}
		tenants, err := tenancy.ListAll(cmd.Context(), env.Store, "")
		if err != nil {
			return err
		}
		for _, t := range tenants {
			if strings.HasPrefix(t.Identifier, toComplete) {
				out = append(out, cobra.CompletionWithDesc(t.Identifier, clean(t.Name)))
			}
		}
		return nil
	})
	return out, cobra.ShellCompDirectiveNoFileComp
}
