package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/internal/netproxy"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	gormpg "gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// gormNote is the suite's notes table as a GORM model; tenant_id is read
// only: the database fills it from the tenant the connector sets.
type gormNote struct {
	ID       string `gorm:"primaryKey"`
	TenantID string `gorm:"->"`
	Title    string
}

func (gormNote) TableName() string { return "notes" }

// bunNote is the same table as a bun model.
type bunNote struct {
	bun.BaseModel `bun:"table:notes"`
	ID            string `bun:"id,pk"`
	TenantID      string `bun:"tenant_id,scanonly"`
	Title         string `bun:"title"`
}

// sqlStrategies are the strategies the database/sql connector serves.
var sqlStrategies = []strategy{{"rls", openRLS}, {"schema", openSchema}, {"hybrid", openHybrid}}

func openGORM(t *testing.T, db *sql.DB, prepare bool) *gorm.DB {
	t.Helper()
	g, err := gorm.Open(gormpg.New(gormpg.Config{Conn: db}), &gorm.Config{
		SkipDefaultTransaction: true, PrepareStmt: prepare, Logger: logger.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGORM runs GORM through the connector, as the application role and a
// superuser: every call runs in its context's tenant, transactions commit
// and roll back in scope, and a shared prepared statement serves each
// tenant in its own scope.
func TestGORM(t *testing.T) {
	t.Parallel()
	for _, s := range sqlStrategies {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for _, kind := range []string{"app", "superuser"} {
				for _, prepare := range []bool{false, true} {
					t.Run(kind+map[bool]string{true: "/prepared"}[prepare], func(t *testing.T) {
						tenants := newTenants(2)
						db, err := postgres.OpenDB(s.open(t, e, e.dsn(kind), tenants, nil))
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { _ = db.Close() })
						checkGORM(t, openGORM(t, db, prepare), tenants[0], tenants[1])
					})
				}
			}
		})
	}
}

func checkGORM(t *testing.T, g *gorm.DB, a, b *tenancy.Tenant) {
	t.Helper()
	ctx := context.Background()
	ctxA, ctxB := tenancy.WithTenant(ctx, a), tenancy.WithTenant(ctx, b)
	if err := g.WithContext(ctxA).Create(&gormNote{ID: "a1", Title: "a-secret"}).Error; err != nil {
		t.Fatal(err)
	}
	if err := g.WithContext(ctxB).Create(&gormNote{ID: "b1", Title: "b-own"}).Error; err != nil {
		t.Fatal(err)
	}
	var n gormNote
	if err := g.WithContext(ctxB).First(&n, "id = ?", "a1").Error; !errors.Is(err, gorm.ErrRecordNotFound) {
		t.Fatalf("B read A's note: %+v %v", n, err)
	}
	if res := g.WithContext(ctxB).Model(&gormNote{}).Where("id = ?", "a1").Update("title", "pwned"); res.Error != nil || res.RowsAffected != 0 {
		t.Fatalf("B updated A's note: %d rows, err %v", res.RowsAffected, res.Error)
	}
	if res := g.WithContext(ctxB).Where("id = ?", "a1").Delete(&gormNote{}); res.Error != nil || res.RowsAffected != 0 {
		t.Fatalf("B deleted A's note: %d rows, err %v", res.RowsAffected, res.Error)
	}
	boom := errors.New("boom")
	if err := g.WithContext(ctxA).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&gormNote{ID: "a2", Title: "rolled back"}).Error; err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("want the callback's error, got %v", err)
	}
	if err := g.WithContext(ctxA).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&gormNote{ID: "a3", Title: "a-committed"}).Error; err != nil {
			return err
		}
		// A statement for another tenant inside A's transaction is refused.
		if err := tx.WithContext(ctxB).Create(&gormNote{ID: "b2", Title: "smuggled"}).Error; err == nil || !strings.Contains(err.Error(), "inside a transaction of tenant") {
			t.Errorf("B's statement in A's transaction: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	titles := func(ctx context.Context) []string {
		var notes []gormNote
		if err := g.WithContext(ctx).Order("title").Find(&notes).Error; err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range notes {
			out = append(out, n.TenantID+":"+n.Title)
		}
		return out
	}
	if got := titles(ctxA); !slices.Equal(got, []string{a.ID + ":a-committed", a.ID + ":a-secret"}) {
		t.Fatalf("A finds %v", got)
	}
	if got := titles(ctxB); !slices.Equal(got, []string{b.ID + ":b-own"}) {
		t.Fatalf("B finds %v", got)
	}
	if err := g.WithContext(ctx).Find(&[]gormNote{}).Error; !errors.Is(err, tenancy.ErrNoTenant) {
		t.Fatalf("a call without a tenant: want ErrNoTenant, got %v", err)
	}
}

// TestBunAndSQLX: bun and sqlx through the connector stay in their
// context's tenant.
func TestBunAndSQLX(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	for _, s := range sqlStrategies {
		t.Run(s.name, func(t *testing.T) {
			tenants := newTenants(2)
			a, b := tenants[0], tenants[1]
			ctxA, ctxB := tenancy.WithTenant(ctx, a), tenancy.WithTenant(ctx, b)
			db, err := postgres.OpenDB(s.open(t, e, e.app, tenants, nil))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })

			bdb := bun.NewDB(db, pgdialect.New())
			if _, err := bdb.NewInsert().Model(&bunNote{ID: "a1", Title: "a-bun"}).Exec(ctxA); err != nil {
				t.Fatal(err)
			}
			var bn bunNote
			if err := bdb.NewSelect().Model(&bn).Where("id = ?", "a1").Scan(ctxB); !errors.Is(err, sql.ErrNoRows) {
				t.Fatalf("bun: B read A's note: %+v %v", bn, err)
			}
			if err := bdb.NewSelect().Model(&bn).ColumnExpr("id, tenant_id, title").Where("id = ?", "a1").Scan(ctxA); err != nil || bn.TenantID != a.ID {
				t.Fatalf("bun: A's note %+v %v", bn, err)
			}
			if err := bdb.RunInTx(ctxB, nil, func(ctx context.Context, tx bun.Tx) error {
				_, err := tx.NewInsert().Model(&bunNote{ID: "b1", Title: "b-bun"}).Exec(ctx)
				return err
			}); err != nil {
				t.Fatal(err)
			}

			xdb := sqlx.NewDb(db, "pgx")
			type note struct {
				ID       string `db:"id"`
				TenantID string `db:"tenant_id"`
				Title    string `db:"title"`
			}
			if _, err := xdb.NamedExecContext(ctxB, "INSERT INTO notes (id, title) VALUES (:id, :title)", note{ID: "b2", Title: "b-sqlx"}); err != nil {
				t.Fatal(err)
			}
			var notes []note
			if err := xdb.SelectContext(ctxB, &notes, "SELECT id, tenant_id, title FROM notes ORDER BY title"); err != nil {
				t.Fatal(err)
			}
			if len(notes) != 2 || notes[0].Title != "b-bun" || notes[1].Title != "b-sqlx" || notes[0].TenantID != b.ID {
				t.Fatalf("sqlx: B selects %+v", notes)
			}
			var n note
			if err := xdb.GetContext(ctxA, &n, "SELECT id, tenant_id, title FROM notes WHERE id = $1", "b2"); !errors.Is(err, sql.ErrNoRows) {
				t.Fatalf("sqlx: A read B's note: %+v %v", n, err)
			}
		})
	}
}

// TestConnectorUnscoped: the sanctioned unscoped path runs as the
// connecting role and logs its reason; without it, no tenant is an error.
func TestConnectorUnscoped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tenants := newTenants(2)
	for _, kind := range []string{"app", "superuser"} {
		p := openRLS(t, e, e.dsn(kind), tenants, nil)
		insertNote(t, p, tenants[0], "a-"+kind)
		insertNote(t, p, tenants[1], "b-"+kind)
		db, err := postgres.OpenDB(p)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM notes").Scan(&n); !errors.Is(err, tenancy.ErrNoTenant) {
			t.Fatalf("%s: a tenant-less statement ran: %d, %v", kind, n, err)
		}
		if _, err := db.BeginTx(ctx, nil); !errors.Is(err, tenancy.ErrNoTenant) {
			t.Fatalf("%s: a tenant-less transaction began: %v", kind, err)
		}
		if err := db.PingContext(ctx); err != nil {
			t.Fatalf("%s: ping: %v", kind, err)
		}
		report := postgres.UnscopedContext(ctx, "count every tenant's notes for the monthly report")
		if err := db.QueryRowContext(report, "SELECT count(*) FROM notes").Scan(&n); err != nil {
			t.Fatal(err)
		}
		// The app role is bound by FORCE ROW LEVEL SECURITY and sees no row
		// without a tenant; a superuser bypasses policies and sees all.
		if want := map[string]int{"app": 0, "superuser": 4}[kind]; n != want {
			t.Fatalf("%s unscoped count %d, want %d", kind, n, want)
		}
		_ = db.Close()
	}
	if _, err := postgres.Unscoped(openRLS(t, e, e.app, nil, nil), ""); err == nil {
		t.Fatal("unscoped access without a reason was granted")
	}
	if _, err := postgres.NewConnector(openDatabase(t, e, e.app, nil, nil)); err == nil {
		t.Fatal("a connector over database per tenant was made")
	}
}

// TestConnectorOneRoundTrip: a single statement through the connector
// (GORM with SkipDefaultTransaction) costs one round trip, tenant included.
func TestConnectorOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	target, err := url.Parse(e.app)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := netproxy.Start(target.Host, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	target.Host = proxy.Addr()
	tenants := newTenants(1)
	a := tenants[0]
	ctxA := tenancy.WithTenant(ctx, a)
	p := openSchema(t, e, target.String(), tenants, func(c *pgxpool.Config) { c.MaxConns = 1 })
	db, err := postgres.OpenDB(p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	g := openGORM(t, db, false)
	if err := g.WithContext(ctxA).Create(&gormNote{ID: "a1", Title: "a"}).Error; err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"First": func() error { var n gormNote; return g.WithContext(ctxA).First(&n, "id = ?", "a1").Error },
		"Update": func() error {
			return g.WithContext(ctxA).Model(&gormNote{}).Where("id = ?", "a1").Update("title", "b").Error
		},
		"sql.QueryRow": func() error {
			var n int
			return db.QueryRowContext(ctxA, "SELECT count(*) FROM notes").Scan(&n)
		},
	}
	for name, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		before := proxy.Exchanges()
		if err := call(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := proxy.Exchanges() - before; got != 1 {
			t.Errorf("%s took %d round trips, want 1", name, got)
		}
	}
	before := proxy.Exchanges()
	if err := g.WithContext(ctxA).Transaction(func(tx *gorm.DB) error {
		var n gormNote
		return tx.First(&n, "id = ?", "a1").Error
	}); err != nil {
		t.Fatal(err)
	}
	if got := proxy.Exchanges() - before; got != 3 {
		t.Errorf("a transaction of one statement took %d round trips, want 3", got)
	}
}
