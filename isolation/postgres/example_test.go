package postgres_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	gormpg "gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// Tenant tables carry the tenant in their keys, so that a foreign key never
// ties one tenant's rows to another's.
func ExampleDDL() {
	d := postgres.DDL{TenantColumn: "org_id"}
	fmt.Println(`CREATE TABLE tasks (
	id bigint NOT NULL,
	` + d.Column() + `,
	project_id bigint NOT NULL,
	` + d.PrimaryKey("id") + `,
	` + d.ForeignKey([]string{"project_id"}, "projects", []string{"id"}) + `)`)
	for _, s := range d.EnableRLS("tasks") {
		fmt.Println(s)
	}
	// Output:
	// CREATE TABLE tasks (
	// 	id bigint NOT NULL,
	// 	org_id text NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), ''),
	// 	project_id bigint NOT NULL,
	// 	PRIMARY KEY (org_id, id),
	// 	FOREIGN KEY (org_id, project_id) REFERENCES projects (org_id, id))
	// ALTER TABLE "tasks" ENABLE ROW LEVEL SECURITY
	// ALTER TABLE "tasks" FORCE ROW LEVEL SECURITY
	// CREATE POLICY tenant_isolation ON "tasks" USING (org_id = NULLIF(current_setting('app.tenant_id', true), '')) WITH CHECK (org_id = NULLIF(current_setting('app.tenant_id', true), ''))
	// CREATE INDEX IF NOT EXISTS "tasks_org_id_idx" ON "tasks" (org_id)
}

// pgx code, sqlc's generated Queries included, runs on the request
// tenant's Querier: one round trip per statement, the tenant included.
func ExampleFor() {
	ctx := context.Background()
	pool, _ := pgxpool.New(ctx, "postgres://app@localhost/notes")
	p, _ := postgres.NewRLS(ctx, pool, postgres.Config{})

	handler := func(w http.ResponseWriter, r *http.Request) {
		t, _ := tenancy.FromContext(r.Context()) // set by the middleware
		q := postgres.For(p, t)                  // sqlc: queries := db.New(q)
		rows, _ := q.Query(r.Context(), "SELECT id, title FROM notes ORDER BY id")
		notes, _ := pgx.CollectRows(rows, pgx.RowToStructByName[struct {
			ID    int64
			Title string
		}])
		fmt.Fprintln(w, len(notes))
	}
	_ = handler
}

// GORM runs through the database/sql connector, which takes the tenant from
// each call's context.
func ExampleNewConnector() {
	ctx := context.Background()
	pool, _ := pgxpool.New(ctx, "postgres://app@localhost/notes")
	p, _ := postgres.NewRLS(ctx, pool, postgres.Config{})
	sqlDB, _ := postgres.OpenDB(p)
	db, _ := gorm.Open(gormpg.New(gormpg.Config{Conn: sqlDB}), &gorm.Config{})

	acme := &tenancy.Tenant{ID: "t-acme", Identifier: "acme-corp"}
	var count int64
	db.WithContext(tenancy.WithTenant(ctx, acme)).Table("notes").Count(&count) // acme's notes only
}
