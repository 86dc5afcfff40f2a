package move_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy/move"
)

// An export restores, by import, what the tenant held when exported, in
// either strategy; an archive whose rows do not match its manifest changes
// nothing.
func TestExportImport(t *testing.T) {
	t.Parallel()
	f := setup(t, 5*time.Second)
	ctx := context.Background()
	for _, tier := range []string{starter, enterprise} {
		tn := f.tenant(t, "backup-"+tier, tier, 300)
		other := f.tenant(t, "other-"+tier, tier, 50)
		wantI, wantN, wantSum := f.contents(t, tn)
		_, _, otherSum := f.contents(t, other)
		var archive bytes.Buffer
		man, err := move.Export(ctx, f.mover, tn.ID, &archive)
		if err != nil {
			t.Fatal(err)
		}
		if len(man.Tables) != 2 || man.Tables[0].Name != "items" || man.Tables[0].Rows != 300 {
			t.Fatalf("manifest: %+v", man.Tables)
		}
		if _, err := f.hybrid.Exec(ctx, tn, "DELETE FROM items WHERE id > 100"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.hybrid.Exec(ctx, tn, "INSERT INTO items (id, val) VALUES (5000, 'after')"); err != nil {
			t.Fatal(err)
		}
		_, _, changedSum := f.contents(t, tn)

		tampered := tamper(t, archive.Bytes())
		if _, err := move.Import(ctx, f.mover, tn.ID, bytes.NewReader(tampered)); !errors.Is(err, move.ErrVerify) {
			t.Fatalf("import of a tampered archive: %v", err)
		}
		if _, _, s := f.contents(t, tn); s != changedSum {
			t.Fatal("a failed import changed the tenant's rows")
		}
		if _, err := move.Import(ctx, f.mover, other.ID, bytes.NewReader(archive.Bytes())); err == nil {
			t.Fatal("imported one tenant's archive into another")
		}
		if _, err := move.Import(ctx, f.mover, tn.ID, bytes.NewReader(archive.Bytes())); err != nil {
			t.Fatal(err)
		}
		if i, n, s := f.contents(t, tn); i != wantI || n != wantN || s != wantSum {
			t.Fatalf("%s: after import %d items, %d notes, sum %s; want %d, %d, %s", tier, i, n, s, wantI, wantN, wantSum)
		}
		if _, _, s := f.contents(t, other); s != otherSum {
			t.Fatal("import changed another tenant's rows")
		}
	}
}

// tamper returns the archive with one item's value changed in its data.
func tamper(t *testing.T, archive []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(archive)), tar.NewWriter(&out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == "tables/items.copy" {
			body = bytes.Replace(body, []byte("\tv7\n"), []byte("\tv8\n"), 1)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
