package admin

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
)

// SetupFromURLs returns the setup of a service whose requests connect with
// appURL (DATABASE_URL) and whose migrations connect with ownerURL
// (MIGRATION_DATABASE_URL), both postgres:// URLs: the database they name,
// their users and their passwords. The two must name the same database and
// different users. Errors never repeat a URL, which may hold a password.
func SetupFromURLs(appURL, ownerURL string) (postgres.SetupConfig, error) {
	app, err := parseUserURL("DATABASE_URL", appURL)
	if err != nil {
		return postgres.SetupConfig{}, err
	}
	owner, err := parseUserURL("MIGRATION_DATABASE_URL", ownerURL)
	if err != nil {
		return postgres.SetupConfig{}, err
	}
	if app.database != owner.database {
		return postgres.SetupConfig{}, errors.New("DATABASE_URL and MIGRATION_DATABASE_URL must name the same database")
	}
	if app.user == owner.user {
		return postgres.SetupConfig{}, errors.New("MIGRATION_DATABASE_URL must connect as another user than DATABASE_URL: requests must not connect as the tables' owner")
	}
	return postgres.SetupConfig{
		Database:      app.database,
		AppRole:       app.user,
		AppPassword:   app.password,
		OwnerRole:     owner.user,
		OwnerPassword: owner.password,
	}, nil
}

type userURL struct{ user, password, database string }

func parseUserURL(name, s string) (userURL, error) {
	if s == "" {
		return userURL{}, fmt.Errorf("%s is not set", name)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return userURL{}, fmt.Errorf("%s must be a postgres:// URL", name)
	}
	out := userURL{database: strings.TrimPrefix(u.Path, "/")}
	if u.User != nil {
		out.user = u.User.Username()
		out.password, _ = u.User.Password()
	}
	if out.user == "" {
		return userURL{}, fmt.Errorf("%s names no user", name)
	}
	if out.database == "" {
		return userURL{}, fmt.Errorf("%s names no database", name)
	}
	return out, nil
}

// setupOutput is setup's --json output.
type setupOutput struct {
	// SQL are the statements printed, or run with --apply.
	SQL []string `json:"sql"`
	// Applied is true with --apply.
	Applied bool `json:"applied"`
}

func (r *runner) setupCmd() *cobra.Command {
	var (
		apply    bool
		adminURL string
	)
	c := &cobra.Command{
		Use:   "setup",
		Short: "print (or run) the SQL that creates the database roles and the database",
		Long: `Print the SQL that sets up PostgreSQL for the service, from an empty server:
the login role requests connect as (DATABASE_URL's user, which owns
nothing), the owner that runs migrations (MIGRATION_DATABASE_URL's user,
which owns the database), the tenant role tenant statements switch to
(tenancy_tenant: NOLOGIN NOSUPERUSER NOBYPASSRLS, granted to both), the database, and no
temporary tables for anyone. Passwords in the URLs are printed with them.
Run it as a superuser, such as: ` + r.name + ` setup | psql -U postgres

With --apply it runs what the server still lacks instead, connected as
--admin-url (default $ADMIN_DATABASE_URL, a superuser or a role with
CREATEROLE and CREATEDB), and prints what it ran. It changes nothing that
is set up already, so it may run at every deploy.`,
		Args: r.positional(),
	}
	c.Flags().BoolVar(&apply, "apply", false, "run the missing statements instead of printing them all")
	c.Flags().StringVar(&adminURL, "admin-url", "", "`URL` of a superuser for --apply (default $ADMIN_DATABASE_URL)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		adminURL = first(adminURL, r.getenv("ADMIN_DATABASE_URL"))
		if adminURL != "" && !apply {
			return usagef("setup: --admin-url is for --apply")
		}
		if r.app.Setup == nil {
			return errors.New("setup: this binary does not know its database roles")
		}
		cfg, err := r.app.Setup(r.connect())
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		if !apply {
			sql, err := postgres.SetupSQL(cfg)
			if err != nil {
				return err
			}
			if r.json {
				return writeJSON(r.stdout, setupOutput{SQL: sql})
			}
			fmt.Fprintf(r.stdout, "-- Run as a PostgreSQL superuser, on a server without these roles and database.\n")
			for _, s := range sql {
				fmt.Fprintln(r.stdout, s)
			}
			return nil
		}
		if adminURL == "" {
			return usagef("setup: --apply needs --admin-url (or $ADMIN_DATABASE_URL): a superuser's postgres:// URL")
		}
		if u, err := url.Parse(adminURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return usagef("setup: --admin-url must be a postgres:// URL")
		}
		ctx := cmd.Context()
		ccfg, err := pgx.ParseConfig(adminURL)
		if err != nil {
			return usagef("setup: --admin-url is not a valid PostgreSQL URL")
		}
		if ccfg.ConnectTimeout == 0 {
			ccfg.ConnectTimeout = 10 * time.Second
		}
		conn, err := pgx.ConnectConfig(ctx, ccfg)
		if err != nil {
			return fmt.Errorf("setup: connect to --admin-url: %w", err)
		}
		defer func() { _ = conn.Close(ctx) }()
		ran, err := postgres.Setup(ctx, conn, cfg)
		if err != nil {
			return err
		}
		if r.json {
			return writeJSON(r.stdout, setupOutput{SQL: append([]string{}, ran...), Applied: true})
		}
		for _, s := range ran {
			fmt.Fprintln(r.stdout, redact(s))
		}
		if len(ran) == 0 {
			fmt.Fprintf(r.stdout, "nothing to do: %s and its roles are set up\n", cfg.Database)
		} else {
			fmt.Fprintf(r.stdout, "set up %s: %d statements run\n", cfg.Database, len(ran))
		}
		return nil
	}
	return c
}

// redact hides the password of a CREATE ROLE statement that was run: the
// output of --apply is a record, not something to run again.
func redact(stmt string) string {
	i := strings.Index(stmt, " PASSWORD '")
	if i < 0 {
		return stmt
	}
	j := strings.Index(stmt, "' NOSUPERUSER")
	if j < i {
		return stmt
	}
	return stmt[:i] + " PASSWORD '***'" + stmt[j+1:]
}
