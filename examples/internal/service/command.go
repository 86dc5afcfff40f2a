package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-tenancy/tenancy/admin"
	"github.com/spf13/cobra"
)

// NoArgs refuses arguments as a usage error (exit 2), for cobra's Args.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return admin.UsageError(fmt.Errorf("%s: unexpected argument %q (usage: %s)", cmd.Name(), args[0], cmd.UseLine()))
	}
	return nil
}

// ServeCommand returns the serve command: it runs serve with a context that
// ends at the first SIGINT or SIGTERM (a second one ends the process at
// once). long is the command's help, which should name the configuration
// variables.
func ServeCommand(ctx context.Context, long string, serve func(ctx context.Context) error) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "start the HTTP service (the default)",
		Long:  long,
		Args:  NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				// After the first signal, a second one ends the process at once.
				<-ctx.Done()
				stop()
			}()
			return serve(ctx)
		},
	}
}

// HealthcheckCommand returns the healthcheck command, which asks a running
// server whether it is ready: container images of the examples have no
// curl, so Docker's healthcheck runs the binary itself. getenv gives PORT.
func HealthcheckCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	var (
		url     string
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "exit 0 when the server on PORT answers GET /readyz with 200",
		Long: `Ask the server on this machine whether it is ready: GET /readyz on
127.0.0.1:$PORT (default 8000) must answer 200 in time. For container
healthchecks, since the image has no shell and no curl.`,
		Args: NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				port := NewEnv(getenv).String("PORT", "8000")
				url = "http://127.0.0.1:" + port + "/readyz"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return admin.UsageError(errors.New("healthcheck: --url must be an http:// URL"))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck: %s answered %s", req.URL.Path, resp.Status)
			}
			fmt.Fprintln(stdout, "ok")
			return nil
		},
	}
	c.Flags().StringVar(&url, "url", "", "`URL` to check (default http://127.0.0.1:$PORT/readyz)")
	c.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return c
}

// OpenAPICommand returns the openapi command, which prints the OpenAPI
// document of a, as /openapi.json serves it.
func OpenAPICommand(stdout io.Writer, a API) *cobra.Command {
	return &cobra.Command{
		Use:   "openapi",
		Short: "print the OpenAPI 3.1 document of the API",
		Args:  NoArgs,
		RunE: func(*cobra.Command, []string) error {
			api := NewAPI(http.NewServeMux(), a, nil, nil)
			return writeOpenAPI(stdout, api)
		},
	}
}

func writeOpenAPI(w io.Writer, api huma.API) error {
	b, err := json.MarshalIndent(api.OpenAPI(), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
