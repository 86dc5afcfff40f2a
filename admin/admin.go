package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/customdomain"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/lifecycle"
	"github.com/go-tenancy/tenancy/migrate"
	"golang.org/x/term"
)

// Connect is what the CLI learned from global flags (--database-url,
// --redis-url) or, when unset, the DATABASE_URL / REDIS_URL environment
// variables.
type Connect struct {
	DatabaseURL, RedisURL string
	// Concurrency is migrate --concurrency: how many targets to migrate at
	// once. Zero means the application's default; Open passes it to
	// migrate.Config.Concurrency when it builds the Runner.
	Concurrency int
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
	// Close, when set, is called once the command is done.
	Close func()
}

// App is an administration CLI mounted in an application's binary.
type App struct {
	// Name is the binary name in usage and error lines, e.g. "notekeeper".
	// Default: the base name of os.Args[0].
	Name string
	// Open builds the environment commands work on. It is called after the
	// command line was checked, so that bad input never opens anything.
	// Required.
	Open func(ctx context.Context, c Connect) (*Env, error)
	// Stdout receives command output. Default os.Stdout.
	Stdout io.Writer
	// Stderr receives one line per error. Default os.Stderr.
	Stderr io.Writer
	// Getenv reads DATABASE_URL and REDIS_URL. Default os.Getenv.
	Getenv func(string) string
	// IsTerminal reports whether w is a terminal, which turns on the
	// progress bar. Default: golang.org/x/term on an *os.File, false
	// otherwise.
	IsTerminal func(w io.Writer) bool
}

// IsCommand reports whether arg, the first argument of an application's
// binary, names an admin command: "tenants", "migrate", "doctor", "help",
// "-h" or "--help". The URL flags go after the command when the CLI is
// mounted this way.
func IsCommand(arg string) bool {
	switch arg {
	case "tenants", "migrate", "doctor", "help", "-h", "--help":
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

// Run runs the command in args (the arguments after the binary name) and
// returns the exit status: ExitOK, ExitFailure or ExitUsage. Errors are
// written to Stderr as one line each; Run never panics.
func (a *App) Run(ctx context.Context, args []string) (code int) {
	r := &runner{
		name: a.Name, open: a.Open, stdout: a.Stdout, stderr: a.Stderr,
		getenv: a.Getenv, isTerminal: a.IsTerminal,
	}
	if r.name == "" {
		r.name = filepath.Base(os.Args[0])
	}
	if r.stdout == nil {
		r.stdout = os.Stdout
	}
	if r.stderr == nil {
		r.stderr = os.Stderr
	}
	if r.getenv == nil {
		r.getenv = os.Getenv
	}
	if r.isTerminal == nil {
		r.isTerminal = isTerminal
	}
	defer func() {
		if v := recover(); v != nil {
			code = r.fail(ctx, fmt.Errorf("internal error: %v", v))
		}
	}()
	return r.run(ctx, args)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// runner is one Run: the App's settings with defaults applied.
type runner struct {
	name           string
	open           func(ctx context.Context, c Connect) (*Env, error)
	stdout, stderr io.Writer
	getenv         func(string) string
	isTerminal     func(w io.Writer) bool
	global         urlFlags
}

// invocation is a checked command line, ready to run once Env is open.
type invocation struct {
	connect Connect
	run     func(ctx context.Context, env *Env) error
}

// usageError is bad input on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelp asks for usage on stdout and exit status 0.
type errHelp struct{ text string }

func (e *errHelp) Error() string { return "help requested" }

func (r *runner) run(ctx context.Context, args []string) int {
	inv, err := r.parse(args)
	var help *errHelp
	if errors.As(err, &help) {
		fmt.Fprint(r.stdout, help.text)
		return ExitOK
	}
	if err != nil {
		return r.fail(ctx, err)
	}
	if r.open == nil {
		return r.fail(ctx, errors.New("admin.App.Open is not set"))
	}
	env, err := r.open(ctx, inv.connect)
	if err != nil {
		return r.fail(ctx, err)
	}
	if env == nil {
		return r.fail(ctx, errors.New("admin.App.Open returned no environment"))
	}
	if env.Close != nil {
		defer env.Close()
	}
	if err := inv.run(ctx, env); err != nil {
		return r.fail(ctx, err)
	}
	return ExitOK
}

// fail writes err as one line and returns its exit status.
func (r *runner) fail(ctx context.Context, err error) int {
	fmt.Fprintf(r.stderr, "%s: %s\n", r.name, oneLine(describe(ctx, err)))
	var u *usageError
	if errors.As(err, &u) {
		return ExitUsage
	}
	return ExitFailure
}

// urlFlags are the flags every command shares with the global position.
type urlFlags struct {
	databaseURL, redisURL string
}

func (u *urlFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&u.databaseURL, "database-url", "", "`URL` of the database to work on (default $DATABASE_URL)")
	fs.StringVar(&u.redisURL, "redis-url", "", "`URL` of the running servers' Redis (default $REDIS_URL)")
}

func (r *runner) parse(args []string) (*invocation, error) {
	fs := flag.NewFlagSet(r.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	r.global.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, &errHelp{text: r.usage()}
		}
		return nil, usagef("%v (run %q)", err, r.name+" help")
	}
	args = fs.Args()
	if len(args) == 0 {
		return nil, usagef("missing command (run %q)", r.name+" help")
	}
	switch args[0] {
	case "help":
		return nil, &errHelp{text: r.helpTopic(args[1:])}
	case "tenants":
		return r.parseTenants(args[1:])
	case "migrate":
		return r.parseMigrate(args[1:])
	case "doctor":
		return r.parseDoctor(args[1:])
	}
	return nil, usagef("unknown command %s (run %q)", quote(args[0]), r.name+" help")
}

func (r *runner) helpTopic(args []string) string {
	if len(args) == 0 {
		return r.usage()
	}
	var err error
	switch args[0] {
	case "tenants":
		_, err = r.parseTenants(slices.Concat(args[1:], []string{"-h"}))
	case "migrate":
		_, err = r.parseMigrate(slices.Concat(args[1:], []string{"-h"}))
	case "doctor":
		_, err = r.parseDoctor([]string{"-h"})
	}
	var help *errHelp
	if errors.As(err, &help) {
		return help.text
	}
	return r.usage()
}

func (r *runner) usage() string {
	return strings.ReplaceAll(`usage: NAME <command> [flags] [arguments]

Commands (flags go before arguments):
  tenants create --identifier X --name N [--tier T] [--alias A]... [--domain D]... [--id ID] [--isolation I]
  tenants list [--status S]
  tenants show IDENTIFIER
  tenants suspend [--reason R] IDENTIFIER
  tenants activate IDENTIFIER
  tenants delete IDENTIFIER
  tenants purge [--force] IDENTIFIER
  tenants alias add|remove IDENTIFIER ALIAS
  tenants domain add|verify|remove IDENTIFIER DOMAIN
  tenants domain list IDENTIFIER
  migrate [--tenant IDENTIFIER] [--concurrency N] [--dry-run]
  migrate status
  doctor

Every command takes:
  --json               print machine-readable JSON on stdout
  --database-url URL   database to work on (default $DATABASE_URL)
  --redis-url URL      Redis of the running servers (default $REDIS_URL)

Run "NAME help <command>" for a command's flags.
Exit status: 0 success, 1 failure, 2 usage error.
`, "NAME", r.name)
}

// command is the flag set of one command, with the flags every command has.
type command struct {
	r    *runner
	path string // "tenants list"
	// synopsis is the command line shown in help, without the name.
	synopsis string
	fs       *flag.FlagSet
	json     bool
	urls     urlFlags
}

func (r *runner) command(path, synopsis string) *command {
	c := &command{r: r, path: path, synopsis: synopsis, fs: flag.NewFlagSet(path, flag.ContinueOnError)}
	// Flag errors are reported as one line by fail, not by the flag package.
	c.fs.SetOutput(io.Discard)
	c.fs.BoolVar(&c.json, "json", false, "print machine-readable JSON on stdout")
	c.urls.register(c.fs)
	return c
}

// parse parses args and returns the positional arguments, which must number
// exactly len(names).
func (c *command) parse(args []string, names ...string) ([]string, error) {
	rest, err := c.parseFlags(args)
	if err != nil {
		return nil, err
	}
	if err := c.checkArgs(rest, names...); err != nil {
		return nil, err
	}
	return rest, nil
}

// parseFlags parses the flags of args and returns the rest.
func (c *command) parseFlags(args []string) ([]string, error) {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, &errHelp{text: c.help()}
		}
		return nil, usagef("%s: %v (run %q)", c.path, err, c.r.name+" "+c.path+" -h")
	}
	return c.fs.Args(), nil
}

// checkArgs checks that rest holds exactly the arguments names.
func (c *command) checkArgs(rest []string, names ...string) error {
	if len(rest) < len(names) {
		return usagef("%s: missing %s (usage: %s %s)", c.path, names[len(rest)], c.r.name, c.synopsis)
	}
	if len(rest) > len(names) {
		extra := rest[len(names)]
		if strings.HasPrefix(extra, "-") {
			return usagef("%s: unexpected argument %s: flags go before arguments", c.path, quote(extra))
		}
		return usagef("%s: unexpected argument %s (usage: %s %s)", c.path, quote(extra), c.r.name, c.synopsis)
	}
	return nil
}

func (c *command) help() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s %s\n\nflags:\n", c.r.name, c.synopsis)
	tw := tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
	c.fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + strings.ToUpper(arg)
		}
		fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, arg, usage)
	})
	_ = tw.Flush()
	return b.String()
}

// connect resolves the URLs: the command's flags, then the global ones,
// then the environment.
func (c *command) connect() Connect {
	return Connect{
		DatabaseURL: first(c.urls.databaseURL, c.r.global.databaseURL, c.r.getenv("DATABASE_URL")),
		RedisURL:    first(c.urls.redisURL, c.r.global.redisURL, c.r.getenv("REDIS_URL")),
	}
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
