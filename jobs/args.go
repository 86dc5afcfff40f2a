package jobs

import (
	"encoding/json"
	"fmt"

	"github.com/go-tenancy/tenancy"
	"github.com/riverqueue/river"
)

// ArgsKey is the key of the tenant's ID in a job's encoded args: what
// TenantArgs marshals to, what the worker middleware reads, and what the
// queue's row-level security policy and a purge match on.
const ArgsKey = "tenant_id"

// TenantArgs carries a job's tenant. Embed it in a job's args:
//
//	type SendInvoiceArgs struct {
//		jobs.TenantArgs
//		InvoiceID string `json:"invoice_id"`
//	}
//
//	args := SendInvoiceArgs{TenantArgs: jobs.For(t), InvoiceID: id}
//
// Its field encodes as "tenant_id" beside the job's own fields.
type TenantArgs struct {
	// TenantID is the ID (not the identifier) of the job's tenant: it never
	// changes, so a job queued before a rename still finds its tenant.
	TenantID string `json:"tenant_id"`
}

// For returns the TenantArgs of t.
func For(t *tenancy.Tenant) TenantArgs {
	if t == nil {
		return TenantArgs{}
	}
	return TenantArgs{TenantID: t.ID}
}

// JobTenantID returns the ID of the job's tenant. It makes every args type
// that embeds TenantArgs an Args.
func (a TenantArgs) JobTenantID() string { return a.TenantID }

// Args is the args of a job that belongs to a tenant: any River job args
// that embed TenantArgs.
type Args interface {
	river.JobArgs
	JobTenantID() string
}

// tenantOf returns the tenant ID of encoded args and whether they name one.
// Args without the key belong to no tenant; a key whose value is not a
// string is an error, not "no tenant".
func tenantOf(encoded []byte) (id string, ok bool, err error) {
	var probe struct {
		TenantID *json.RawMessage `json:"tenant_id"`
	}
	if err := json.Unmarshal(encoded, &probe); err != nil {
		return "", false, fmt.Errorf("jobs: decode args: %w", err)
	}
	if probe.TenantID == nil {
		return "", false, nil
	}
	if err := json.Unmarshal(*probe.TenantID, &id); err != nil {
		return "", true, fmt.Errorf("jobs: args %s is not a string", ArgsKey)
	}
	if err := tenancy.ValidateID(id); err != nil {
		return "", true, fmt.Errorf("jobs: args %s: %w", ArgsKey, err)
	}
	return id, true, nil
}
