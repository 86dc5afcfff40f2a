// Package admin is the administration command line of a multi-tenant
// service, as a library: an application mounts it as subcommands of its own
// binary, so that the commands know the application's migrations, isolation
// strategy and lifecycle hooks.
//
//	func main() {
//		app := &admin.App{
//			Name:     "notekeeper",
//			Open:     openAdminEnv,
//			Commands: []*cobra.Command{serveCmd}, // the application's own
//			Default:  "serve",
//		}
//		os.Exit(app.Run(ctx, os.Args[1:]))
//	}
//
// The command line is parsed by cobra (github.com/spf13/cobra), so it
// behaves like git, kubectl and other cobra-based tools: flags may come
// before or after arguments ("--" ends them), "help COMMAND" and "--help"
// show a command's own help, and "completion bash|zsh|fish|powershell"
// prints a shell completion script, which completes tenant identifiers
// too. The commands:
//
//	tenants create --identifier X --name N [--tier T] [--alias A]... [--domain D]... [--id ID] [--isolation I]
//	tenants list [--status S]
//	tenants show IDENTIFIER
//	tenants suspend IDENTIFIER [--reason R]
//	tenants activate IDENTIFIER
//	tenants delete IDENTIFIER
//	tenants retry IDENTIFIER
//	tenants purge IDENTIFIER [--force] [--yes]
//	tenants alias add|remove IDENTIFIER ALIAS
//	tenants domain add|verify|remove IDENTIFIER DOMAIN
//	tenants domain list IDENTIFIER
//	migrate [--tenant IDENTIFIER] [--concurrency N] [--dry-run]
//	migrate status
//	doctor
//	setup [--apply --admin-url URL]
//
// Every command also takes --json, which prints machine-readable JSON on
// stdout and nothing else there (tenants as tenancy.Tenant, migrations as
// migrate.Report, the doctor's findings as postgres.Report, setup's SQL),
// and --database-url and --redis-url, which default to the DATABASE_URL and
// REDIS_URL environment variables and reach the application through
// Connect. Under --json, suspend, activate and delete print the tenant as
// it is after the change, and purge prints it as it was before. Commands
// that only read tell Open so (Connect.ReadOnly), and need no migration
// rights.
//
// Without --json, output is for people: an aligned table for tenants list,
// "key: value" lines for show, and for migrate a progress bar when stdout is
// a terminal (an aligned table of the targets otherwise) and a summary such
// as "12 targets: 3 migrated, 8 skipped, 1 failed in 1.2s". Stored text is
// printed with control characters escaped.
//
// setup prints the SQL that creates the service's PostgreSQL roles and
// database from an empty server (postgres.SetupSQL, for the roles
// App.Setup names), or with --apply runs what is missing as a superuser.
//
// Custom domains resolve only once verified: tenants domain add prints the
// DNS TXT record to publish (_tenancy-challenge.<domain>, holding a token),
// and tenants domain verify checks it (package customdomain) before marking
// the domain verified. Both need Env.BaseDomain, the service's base domain,
// and refuse domains under it: those names belong to identifiers and
// aliases, which share one namespace the store enforces.
//
// An active tenant is purged only with --force: delete or suspend it first,
// so that a mistyped identifier cannot erase a live tenant. On a terminal,
// purge asks for the identifier to be typed again; --yes skips that, and
// without a terminal an active tenant is purged only with --force --yes.
//
// Input is checked before anything is opened: a usage error (unknown command
// or flag, missing or extra argument, invalid identifier or flag value, and
// errors of the application's commands made with UsageError)
// exits with status 2, a failed operation (unknown tenant, unreachable
// database, failed migration targets, doctor findings) with status 1. Either
// way the reason is one line on stderr, "<name>: <message>", never a stack
// trace: even a panic is reported as one line.
//
// Tenant writes against a store that lives in the CLI process's memory are
// refused (Env.Persistent), since they could never reach a running server.
// Creating and purging a tenant go through the lifecycle manager, which only
// the application can build; the standalone binary cmd/tenancy refuses them.
package admin
