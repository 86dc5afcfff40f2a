package admin

import (
	"context"
	"errors"
	"fmt"
)

var errNoDoctor = errors.New("doctor needs PostgreSQL (set DATABASE_URL to a postgres:// URL)")

func (r *runner) parseDoctor(args []string) (*invocation, error) {
	c := r.command("doctor", "doctor")
	if _, err := c.parse(args); err != nil {
		return nil, err
	}
	return &invocation{connect: c.connect(), run: func(ctx context.Context, env *Env) error {
		if env.Doctor == nil {
			return errNoDoctor
		}
		report, err := env.Doctor(ctx)
		if err != nil {
			return err
		}
		if c.json {
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
	}}, nil
}
