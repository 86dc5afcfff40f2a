package quota_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/go-tenancy/tenancy/problem"
	"github.com/go-tenancy/tenancy/quota"
	"github.com/jackc/pgx/v5"
)

// A create handler: the unit and the row in one transaction.
func ExampleQuota_Acquire() {
	var provider isolation.Provider // RLS, schema, database or SQLite
	q, err := quota.New(quota.Config{
		Provider: provider,
		Tiers: map[string]quota.Limits{
			"enterprise": {"projects": 500},
			"starter":    {"projects": 3},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("POST /projects", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		t, _ := tenancy.FromContext(ctx)
		err := provider.Tx(ctx, t, func(tx isolation.Tx) error {
			if err := q.Acquire(ctx, tx, t, "projects"); err != nil {
				return err // *tenancy.QuotaError beyond the limit
			}
			_, err := tx.Exec(ctx, "INSERT INTO projects (name) VALUES ($1)", r.FormValue("name"))
			return err
		})
		if errors.Is(err, tenancy.ErrQuotaExceeded) {
			problem.WriteError(w, err) // 403 naming resource, limit, usage, tier
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	http.HandleFunc("GET /tenant", func(w http.ResponseWriter, r *http.Request) {
		t, _ := tenancy.FromContext(r.Context())
		usage, err := q.Usage(r.Context(), t)
		if err != nil {
			problem.WriteError(w, err)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": t.ID, "tier": t.Tier, "usage": usage})
	})
}

// The check and the insert in one round trip with the tenant statement.
func ExampleQuota_Queue() {
	ctx := context.Background()
	var (
		provider *postgres.RLS
		q        *quota.Quota
		t        *tenancy.Tenant
	)
	b := &pgx.Batch{}
	if err := q.Queue(b, t, "projects"); err != nil {
		log.Fatal(err)
	}
	b.Queue("INSERT INTO projects (name) VALUES ($1)", "apollo")
	br := postgres.For(provider, t).SendBatch(ctx, b)
	_, err := br.Exec() // the check: its refusal aborts the insert
	err = q.Error(t, "projects", err)
	if err == nil {
		_, err = br.Exec() // the insert
	}
	fmt.Println(errors.Join(err, br.Close()))
}
