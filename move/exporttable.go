package move

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-tenancy/tenancy/isolation/postgres"
	"github.com/jackc/pgx/v5"
)

// exportTable writes tb's rows of the tenant as one tar entry. A tar header
// states the entry's size, so the rows are spooled to a temporary file
// first: memory stays flat whatever the tenant's size.
func exportTable(ctx context.Context, tx pgx.Tx, pl postgres.Place, tb postgres.Table, tw *tar.Writer) error {
	f, err := os.CreateTemp("", "tenancy-export-*.copy")
	if err != nil {
		return fmt.Errorf("move: export %s: %w", tb.Name, err)
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	if _, err := tx.Conn().PgConn().CopyTo(ctx, f, "COPY (SELECT "+columnList(tb.Columns)+" FROM "+tb.Sanitized()+pl.Filter(tb)+") TO STDOUT"); err != nil {
		return fmt.Errorf("move: export %s: %w", tb.Name, err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: dataName(tb.Name), Mode: 0o600, Size: size, ModTime: time.Now()}); err != nil {
		return fmt.Errorf("move: export %s: %w", tb.Name, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("move: export %s: %w", tb.Name, err)
	}
	return nil
}
