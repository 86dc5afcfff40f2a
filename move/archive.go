package move

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
)

// ArchiveFormat names the archive layout Export writes and Import reads.
const ArchiveFormat = "tenancy-tenant-archive/1"

// Manifest is the first entry of an archive, manifest.json: the tenant's
// record, and per table its columns, row count and checksum (see Sum).
// Each table's rows follow as tables/<name>.copy, in PostgreSQL's COPY text
// format, parents before the tables that reference them.
type Manifest struct {
	Format     string          `json:"format"`
	ExportedAt time.Time       `json:"exported_at"`
	Tenant     *tenancy.Tenant `json:"tenant"`
	Tables     []ArchiveTable  `json:"tables"`
}

// ArchiveTable describes one table of an archive.
type ArchiveTable struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Sum
}

const manifestName = "manifest.json"

func dataName(table string) string { return "tables/" + table + ".copy" }

// Export writes tenant id's data to w as a tar archive (see Manifest): a
// consistent snapshot, read in one repeatable-read transaction while the
// tenant keeps serving. It is a backup; Import restores it.
func Export(ctx context.Context, m Mover, id string, w io.Writer) (*Manifest, error) {
	if m.Store == nil || m.Provider == nil {
		return nil, errors.New("move: Export needs a Store and a Provider")
	}
	t, err := m.Store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("move: %w", err)
	}
	pl, err := postgres.PlaceOf(m.Provider, t)
	if err != nil {
		return nil, fmt.Errorf("move: %w", err)
	}
	tables, err := pl.Tables(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := pl.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("move: export: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := setTenant(ctx, tx, id); err != nil {
		return nil, fmt.Errorf("move: export: %w", err)
	}
	man := &Manifest{Format: ArchiveFormat, ExportedAt: time.Now().UTC(), Tenant: t}
	for i := len(tables) - 1; i >= 0; i-- {
		tb := tables[i]
		s, err := checksum(ctx, tx, pl, tb, tb.Columns)
		if err != nil {
			return nil, err
		}
		man.Tables = append(man.Tables, ArchiveTable{Name: tb.Name, Columns: tb.Columns, Sum: s})
	}
	tw := tar.NewWriter(w)
	body, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeEntry(tw, manifestName, body); err != nil {
		return nil, err
	}
	for i := len(tables) - 1; i >= 0; i-- {
		tb := tables[i]
		if err := exportTable(ctx, tx, pl, tb, tw); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("move: export: %w", err)
	}
	return man, nil
}

func writeEntry(tw *tar.Writer, name string, body []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), ModTime: time.Now()}); err != nil {
		return fmt.Errorf("move: export: %w", err)
	}
	if _, err := tw.Write(body); err != nil {
		return fmt.Errorf("move: export: %w", err)
	}
	return nil
}

// Import restores tenant id's data from an archive Export wrote: in one
// transaction, with the tenant frozen at its place, it replaces the
// tenant's rows by the archive's and verifies every table's count and
// checksum against the manifest; on any mismatch nothing changes. The
// tenant must exist (create it first) and be the archive's (same ID); its
// place must have the archive's tables.
func Import(ctx context.Context, m Mover, id string, r io.Reader) (*Manifest, error) {
	if err := m.defaults(); err != nil {
		return nil, err
	}
	unlock, err := exclusive(ctx, m.Journal, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	t, err := m.Store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("move: %w", err)
	}
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != manifestName {
		return nil, fmt.Errorf("move: not a tenant archive: it does not start with %s", manifestName)
	}
	var man Manifest
	if err := json.NewDecoder(io.LimitReader(tr, 64<<20)).Decode(&man); err != nil {
		return nil, fmt.Errorf("move: read the manifest: %w", err)
	}
	if man.Format != ArchiveFormat {
		return nil, fmt.Errorf("move: archive format %q, want %q", man.Format, ArchiveFormat)
	}
	if man.Tenant == nil || man.Tenant.ID != id {
		return nil, fmt.Errorf("move: the archive holds another tenant's data, not %s's", id)
	}
	if err := m.Prepare(ctx, t); err != nil {
		return nil, fmt.Errorf("move: prepare the tenant's place: %w", err)
	}
	pl, err := postgres.PlaceOf(m.Provider, t)
	if err != nil {
		return nil, fmt.Errorf("move: %w", err)
	}
	tables, err := pl.Tables(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]postgres.Table{}
	for _, tb := range tables {
		byName[tb.Name] = tb
	}
	for _, at := range man.Tables {
		if _, ok := byName[at.Name]; !ok {
			return nil, fmt.Errorf("move: the archive has table %q, which %s lacks", at.Name, pl)
		}
	}
	fence, err := freeze(ctx, pl, m.LockTimeout)
	if err != nil {
		return nil, err
	}
	defer fence.release()
	err = pgx.BeginFunc(ctx, pl.Pool, func(tx pgx.Tx) error {
		if err := setTenant(ctx, tx, id); err != nil {
			return err
		}
		if err := clear(ctx, tx, pl, tables); err != nil {
			return err
		}
		for _, at := range man.Tables {
			hdr, err := tr.Next()
			if err != nil {
				return fmt.Errorf("move: read %s: %w", dataName(at.Name), err)
			}
			if hdr.Name != dataName(at.Name) {
				return fmt.Errorf("move: archive entry %q where %q was expected", hdr.Name, dataName(at.Name))
			}
			n, err := copyIn(ctx, tx.Conn().PgConn(), tr, byName[at.Name], at.Columns)
			if err != nil {
				return err
			}
			if n != at.Rows {
				// Rows of another tenant would not count below.
				return fmt.Errorf("%w: %s has %d rows in the archive's manifest and %d in its data", ErrVerify, at.Name, at.Rows, n)
			}
		}
		for _, at := range man.Tables {
			s, err := checksum(ctx, tx, pl, byName[at.Name], at.Columns)
			if err != nil {
				return err
			}
			if s != at.Sum {
				return fmt.Errorf("%w: %s has %d rows (checksum %s) in the archive and %d (checksum %s) once loaded",
					ErrVerify, at.Name, at.Rows, at.Checksum, s.Rows, s.Checksum)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("move: import: %w", err)
	}
	return &man, nil
}
