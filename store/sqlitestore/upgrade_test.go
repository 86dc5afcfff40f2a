package sqlitestore

import (
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/pressly/goose/v3"
)

// TestUpgradeToAliasesAndVerifiedDomains migrates records written before
// aliases had a table of their own: single-label domains become aliases
// (the identifier keeps a name that both claimed, as the host resolver
// answered with it), IPv4 addresses go, and the remaining domains stay
// verified, so that the upgrade takes none offline.
func TestUpgradeToAliasesAndVerifiedDomains(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := sql.Open("sqlite", DSN(filepath.Join(t.TempDir(), "tenants.db"), 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithTableName(versionTable), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatalf("migrate to version 1: %v", err)
	}
	const ts = "2024-01-02T03:04:05.000000Z"
	_, err = db.ExecContext(ctx, `INSERT INTO tenants (id, identifier, name, status, created_at, updated_at) VALUES
	('t-acme', 'acme-corp', 'Acme', 'active', '`+ts+`', '`+ts+`'),
	('t-globex', 'globex', 'Globex', 'active', '`+ts+`', '`+ts+`'),
	('t-taker', 'taker', 'Taker', 'active', '`+ts+`', '`+ts+`');
INSERT INTO tenant_domains (domain, tenant_id) VALUES
	('acme', 't-acme'), ('app.acme.com', 't-acme'),
	('gx', 't-globex'),
	('globex', 't-taker'), ('acme.localhost', 't-taker'), ('10.0.0.1', 't-taker')`)
	if err != nil {
		t.Fatalf("seed version 1: %v", err)
	}

	s, err := New(ctx, db, Config{})
	if err != nil {
		t.Fatalf("New (migrates): %v", err)
	}
	for _, c := range []struct {
		id               string
		aliases, domains []string
	}{
		{"t-acme", []string{"acme"}, []string{"app.acme.com"}},
		{"t-globex", []string{"gx"}, nil},
		// "globex" stays globex's identifier; the taker's claim is gone.
		{"t-taker", nil, []string{"acme.localhost"}},
	} {
		got, err := s.Get(ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Aliases, c.aliases) || !slices.Equal(got.Domains, c.domains) {
			t.Errorf("%s: Aliases %q, Domains %q; want %q, %q", c.id, got.Aliases, got.Domains, c.aliases, c.domains)
		}
		l, err := s.ListDomains(ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range l {
			if !d.Verified() || len(d.Token) != 32 || d.CreatedAt.IsZero() {
				t.Errorf("%s: migrated domain %+v: want verified, with a token", c.id, d)
			}
		}
	}
	if got, err := s.GetByDomain(ctx, "app.acme.com"); err != nil || got.ID != "t-acme" {
		t.Errorf("GetByDomain(app.acme.com) = %v, %v", got, err)
	}
	if got, err := s.GetByAlias(ctx, "acme"); err != nil || got.ID != "t-acme" {
		t.Errorf("GetByAlias(acme) = %v, %v", got, err)
	}
	if _, err := s.GetByAlias(ctx, "globex"); err == nil {
		t.Error("GetByAlias(globex) found the taker")
	}
	_, err = s.Update(ctx, "t-taker", tenancy.Update{Aliases: &[]string{"acme-corp"}})
	var dup *tenancy.DuplicateError
	if !errors.As(err, &dup) || dup.Field != "alias" {
		t.Errorf("alias equal to a migrated identifier: %v", err)
	}
	if _, err := p.DownTo(ctx, 1); err != nil {
		t.Fatalf("migrate down to version 1: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM tenant_domains WHERE domain IN ('acme', 'gx', 'app.acme.com')`).Scan(&n); err != nil || n != 3 {
		t.Errorf("after down: %d of the aliases and domains back in tenant_domains, %v; want 3", n, err)
	}
}
