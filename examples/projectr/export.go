package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/jobs"
	"github.com/riverqueue/river"
)

// ExportArgs are the args of a project export job. They carry the tenant
// (jobs.TenantArgs), so the job runs in it on every attempt.
type ExportArgs struct {
	jobs.TenantArgs
	// ExportID is the export request the job fulfils.
	ExportID string `json:"export_id"`
}

// Kind implements river.JobArgs.
func (ExportArgs) Kind() string { return "projectr_export" }

// exportWorker runs export jobs: it marks the request running, counts the
// project's tasks by status in the tenant's scope, and stores the result.
// The jobs middleware has put the tenant in ctx, loaded from the store on
// this attempt: a suspended tenant's job never reaches Work.
type exportWorker struct {
	river.WorkerDefaults[ExportArgs]
	store *GORMStore
	// before, when set, runs before each attempt's work; tests use it to
	// fail attempts.
	before func(ctx context.Context, job *river.Job[ExportArgs]) error
}

// Timeout implements river.Worker.
func (w *exportWorker) Timeout(*river.Job[ExportArgs]) time.Duration { return time.Minute }

// Work implements river.Worker.
func (w *exportWorker) Work(ctx context.Context, job *river.Job[ExportArgs]) error {
	t, ok := tenancy.FromContext(ctx)
	if !ok || t.ID != job.Args.TenantID {
		return river.JobCancel(errors.New("export job runs without its tenant"))
	}
	err := w.work(ctx, t, job)
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrJobNotFound) {
		// The request is gone (its project was deleted): nothing to do.
		return river.JobCancel(err)
	}
	if job.Attempt >= job.MaxAttempts {
		// The last attempt: say so where GET /jobs/{id} looks.
		if serr := w.store.setExport(context.WithoutCancel(ctx), t, job.Args.ExportID, ExportFailed, nil, err.Error()); serr != nil {
			jobs.Logger(ctx).ErrorContext(ctx, "record export failure", "error", serr)
		}
	}
	return err
}

func (w *exportWorker) work(ctx context.Context, t *tenancy.Tenant, job *river.Job[ExportArgs]) error {
	if err := w.store.setExport(ctx, t, job.Args.ExportID, ExportRunning, nil, ""); err != nil {
		return err
	}
	if w.before != nil {
		if err := w.before(ctx, job); err != nil {
			return err
		}
	}
	res, err := w.store.exportProject(ctx, t, job.Args.ExportID)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return w.store.setExport(ctx, t, job.Args.ExportID, ExportDone, res, "")
}
