package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/jobs"
	"github.com/go-tenancy/tenancy/store/memstore"
	"github.com/riverqueue/river/rivertype"
)

func TestInsertMiddleware(t *testing.T) {
	t.Parallel()
	mw, err := jobs.NewMiddleware(jobs.Config{Store: memstore.New()})
	if err != nil {
		t.Fatal(err)
	}
	a := &tenancy.Tenant{ID: "t-a", Identifier: "acme"}
	insert := func(ctx context.Context, args any, encoded string, key []byte) (*rivertype.JobInsertParams, error) {
		p := &rivertype.JobInsertParams{Kind: "note", EncodedArgs: []byte(encoded), UniqueKey: key}
		if a, ok := args.(noteArgs); ok {
			p.Args = a
		}
		_, err := mw.InsertMany(ctx, []*rivertype.JobInsertParams{p}, func(context.Context) ([]*rivertype.JobInsertResult, error) { return nil, nil })
		return p, err
	}
	ctx := context.Background()

	if _, err := insert(ctx, noteArgs{}, `{"tenant_id":"","note":"x"}`, nil); err == nil {
		t.Fatal("args with an empty tenant accepted")
	}
	if _, err := insert(ctx, noteArgs{}, `{"note":"x"}`, nil); !errors.Is(err, jobs.ErrNoArgsTenant) {
		t.Fatalf("TenantArgs without a tenant: %v, want ErrNoArgsTenant", err)
	}
	if _, err := insert(ctx, nil, `{"other":1}`, nil); err != nil {
		t.Fatalf("args of no tenant and no TenantArgs: %v, want accepted", err)
	}
	if _, err := insert(tenancy.WithTenant(ctx, a), nil, `{"tenant_id":"t-b"}`, nil); !errors.Is(err, jobs.ErrTenantMismatch) {
		t.Fatalf("args of t-b in a context of t-a: %v, want ErrTenantMismatch", err)
	}
	key := []byte("river's key")
	pa, err := insert(ctx, nil, `{"tenant_id":"t-a"}`, key)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := insert(ctx, nil, `{"tenant_id":"t-b"}`, key)
	pa2, _ := insert(ctx, nil, `{"tenant_id":"t-a"}`, key)
	if bytes.Equal(pa.UniqueKey, key) || bytes.Equal(pa.UniqueKey, pb.UniqueKey) || !bytes.Equal(pa.UniqueKey, pa2.UniqueKey) {
		t.Fatalf("unique keys %x (a), %x (b), %x (a again): want the tenant in the key, stable per tenant", pa.UniqueKey, pb.UniqueKey, pa2.UniqueKey)
	}

	strict, _ := jobs.NewMiddleware(jobs.Config{Store: memstore.New(), RequireTenant: true})
	p := &rivertype.JobInsertParams{Kind: "other", EncodedArgs: []byte(`{}`)}
	if _, err := strict.InsertMany(ctx, []*rivertype.JobInsertParams{p}, nil); !errors.Is(err, jobs.ErrNoArgsTenant) {
		t.Fatalf("RequireTenant with args of no tenant: %v", err)
	}
}
