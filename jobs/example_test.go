package jobs_test

import (
	"context"
	"fmt"
	"log"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/jobs"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// SendInvoiceArgs is a job of one tenant.
type SendInvoiceArgs struct {
	jobs.TenantArgs
	InvoiceID string `json:"invoice_id"`
}

func (SendInvoiceArgs) Kind() string { return "send_invoice" }

type SendInvoiceWorker struct {
	river.WorkerDefaults[SendInvoiceArgs]
	Notes *postgres.RLS
}

func (w *SendInvoiceWorker) Work(ctx context.Context, job *river.Job[SendInvoiceArgs]) error {
	t, _ := tenancy.FromContext(ctx) // the job's tenant, loaded on this attempt
	jobs.Logger(ctx).InfoContext(ctx, "sending invoice", "invoice", job.Args.InvoiceID)
	// Statements through the provider run in the tenant's scope.
	_, err := postgres.For(w.Notes, t).Exec(ctx, "UPDATE invoices SET sent_at = now() WHERE id = $1", job.Args.InvoiceID)
	return err
}

// A River client with the middleware, and an invoice inserted with its job
// in one tenant transaction.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@localhost/app")
	if err != nil {
		log.Fatal(err)
	}
	// Once, from the migration step (as a role that may create the schema).
	if err := jobs.MigratePostgres(ctx, pool, jobs.PostgresConfig{}); err != nil {
		log.Fatal(err)
	}
	provider, err := postgres.NewRLS(ctx, pool, postgres.Config{})
	if err != nil {
		log.Fatal(err)
	}
	store := memstore.New()
	mw, err := jobs.NewMiddleware(jobs.Config{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &SendInvoiceWorker{Notes: provider})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:     jobs.DefaultSchema,
		Queues:     map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers:    workers,
		Middleware: []rivertype.Middleware{mw},
	})
	if err != nil {
		log.Fatal(err)
	}

	t, _ := store.GetByIdentifier(ctx, "acme-corp")
	// The invoice and its job commit together, or neither does.
	err = pgx.BeginFunc(ctx, postgres.For(provider, t), func(tx pgx.Tx) error {
		var id string
		if err := tx.QueryRow(ctx, "INSERT INTO invoices (total) VALUES (100) RETURNING id").Scan(&id); err != nil {
			return err
		}
		_, err := client.InsertTx(ctx, tx, SendInvoiceArgs{TenantArgs: jobs.For(t), InvoiceID: id}, nil)
		return err
	})
	fmt.Println(err)
}

// A database per tenant: the job goes through the tenant's outbox, relayed
// to the queue after the commit.
func ExampleEnqueuer() {
	ctx := context.Background()
	var (
		provider *postgres.Database    // tenants' databases
		client   *river.Client[pgx.Tx] // the queue, with the middleware
		store    tenancy.Store
		t        *tenancy.Tenant
	)
	enq, err := jobs.NewEnqueuer(jobs.EnqueuerConfig{Provider: provider, Client: client, Store: store})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = enq.Run(ctx) }() // relays after commits, sweeps every minute

	err = enq.Tx(ctx, t, func(tx *jobs.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO invoices (id, total) VALUES ('inv-1', 100)"); err != nil {
			return err
		}
		return tx.Insert(ctx, SendInvoiceArgs{TenantArgs: jobs.For(t), InvoiceID: "inv-1"}, nil)
	})
	fmt.Println(err)
}
