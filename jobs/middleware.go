package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// DefaultSnooze is how long a job of a tenant that is not served waits
// before it is tried again, unless Config.Snooze says otherwise.
const DefaultSnooze = time.Minute

// Errors.
var (
	// ErrNoArgsTenant: a job whose args type embeds TenantArgs was inserted
	// with an empty tenant ID, or, with Config.RequireTenant, a job's args
	// name no tenant at all.
	ErrNoArgsTenant = errors.New("jobs: job args name no tenant")
	// ErrTenantMismatch: a job inserted with a context that carries one
	// tenant names another in its args.
	ErrTenantMismatch = errors.New("jobs: job args name another tenant than the context")
)

// Config configures a Middleware.
type Config struct {
	// Store loads each job's tenant on every attempt, so that a job sees the
	// tenant's status as it is when the job runs, not when it was queued.
	// Wrap it in store/cache to spare the store a lookup per job. Required.
	Store tenancy.Store
	// Snooze is how long the job of a tenant that is suspended,
	// provisioning or failed waits before it is tried again; snoozing does
	// not use up an attempt. Queue.Wake makes them due at once, for a tenant
	// just activated. Default DefaultSnooze.
	Snooze time.Duration
	// RequireTenant refuses to insert, and cancels, jobs whose args name no
	// tenant. Default false: such jobs (cross-tenant maintenance, say) run
	// with no tenant in their context, and tenancy.FromContext reports none.
	RequireTenant bool
	// Logger is the logger that Logger returns inside a job, with the job's
	// and its tenant's attributes. Default slog.Default().
	Logger *slog.Logger
}

// Middleware is River middleware that keeps every job in its tenant. Put it
// in river.Config.Middleware of every client, the ones that only insert too:
//
//   - On insert, it refuses args whose type embeds TenantArgs but names no
//     tenant, and args that name another tenant than the context's (where
//     the context carries one, as in a request); and it puts the tenant in
//     every unique key, so that unique jobs of two tenants never collide and
//     one tenant can never learn, by a skipped insert, what another queued.
//   - On every attempt, it loads the job's tenant from the store: a job of
//     an active tenant runs with the tenant in its context
//     (tenancy.FromContext, so that isolation.FromContext and
//     postgres.FromContext reach the tenant's data) and in its log lines
//     (Logger); one of a suspended, provisioning or failed tenant is
//     snoozed; one of a deleted or unknown tenant is cancelled.
type Middleware struct {
	river.MiddlewareDefaults
	cfg Config
}

var (
	_ rivertype.JobInsertMiddleware = (*Middleware)(nil)
	_ rivertype.WorkerMiddleware    = (*Middleware)(nil)
)

// NewMiddleware checks cfg and returns the middleware.
func NewMiddleware(cfg Config) (*Middleware, error) {
	if cfg.Store == nil {
		return nil, errors.New("jobs: Config.Store is required")
	}
	if cfg.Snooze <= 0 {
		cfg.Snooze = DefaultSnooze
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Middleware{cfg: cfg}, nil
}

// outboxMetaKey is the metadata key under which a relayed job carries its
// outbox row's key; the middleware makes it the job's unique key.
const outboxMetaKey = "tenancy_outbox"

// allStates is River's bitmask of every job state: a relayed job is unique
// by its outbox key whatever state the first copy is in.
const allStates byte = 0xFF

// InsertMany implements rivertype.JobInsertMiddleware.
func (m *Middleware) InsertMany(ctx context.Context, many []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	ctxTenant, hasCtxTenant := tenancy.FromContext(ctx)
	for _, p := range many {
		id, has, err := tenantOf(p.EncodedArgs)
		if err != nil {
			return nil, fmt.Errorf("jobs: insert %s: %w", p.Kind, err)
		}
		if !has {
			if _, typed := p.Args.(Args); typed || m.cfg.RequireTenant {
				return nil, fmt.Errorf("insert %s: %w", p.Kind, ErrNoArgsTenant)
			}
			continue
		}
		if hasCtxTenant && ctxTenant.ID != id {
			return nil, fmt.Errorf("insert %s for tenant %s with a context of tenant %s: %w", p.Kind, id, ctxTenant.ID, ErrTenantMismatch)
		}
		switch key := outboxKey(p.Metadata); {
		case p.UniqueKey != nil:
			// The job's own uniqueness: the same key on every relay of an
			// outbox row too.
			p.UniqueKey = uniqueKey(id, "job", p.UniqueKey)
		case key != "":
			p.UniqueKey = uniqueKey(id, "outbox", []byte(key))
			p.UniqueStates = allStates
		}
	}
	return doInner(ctx)
}

// uniqueKey puts the tenant in a unique key: a hash of the tenant's ID, a
// namespace and River's own key.
func uniqueKey(tenantID, namespace string, key []byte) []byte {
	h := sha256.New()
	h.Write([]byte("tenancy\x00"))
	h.Write([]byte(tenantID))
	h.Write([]byte{0})
	h.Write([]byte(namespace))
	h.Write([]byte{0})
	h.Write(key)
	return h.Sum(nil)
}

func outboxKey(metadata []byte) string {
	if len(metadata) == 0 {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(metadata, &m) != nil {
		return ""
	}
	var key string
	if raw, ok := m[outboxMetaKey]; ok && json.Unmarshal(raw, &key) == nil {
		return key
	}
	return ""
}

// Work implements rivertype.WorkerMiddleware.
func (m *Middleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	id, has, err := tenantOf(job.EncodedArgs)
	if err != nil {
		return river.JobCancel(err)
	}
	logger := m.cfg.Logger.With("job_id", job.ID, "job_kind", job.Kind, "job_attempt", job.Attempt)
	if !has {
		if m.cfg.RequireTenant {
			return river.JobCancel(fmt.Errorf("run %s: %w", job.Kind, ErrNoArgsTenant))
		}
		return doInner(context.WithValue(ctx, loggerKey{}, logger))
	}
	t, err := m.cfg.Store.Get(ctx, id)
	if errors.Is(err, tenancy.ErrTenantNotFound) {
		logger.WarnContext(ctx, "jobs: cancelled: the job's tenant does not exist", "tenant_id", id)
		return river.JobCancel(fmt.Errorf("tenant %s: %w", id, err))
	}
	if err != nil {
		return fmt.Errorf("jobs: load tenant %s: %w", id, err) // retried
	}
	logger = logger.With("tenant_id", t.ID, "tenant", t.Identifier)
	switch t.Status {
	case tenancy.StatusActive:
	case tenancy.StatusDeleted:
		logger.InfoContext(ctx, "jobs: cancelled: the job's tenant is deleted")
		return river.JobCancel(fmt.Errorf("tenant %s: %w", t.ID, tenancy.ErrTenantDeleted))
	default: // suspended, provisioning, failed: it may be served again
		logger.InfoContext(ctx, "jobs: snoozed: the job's tenant is not served", "status", t.Status, "snooze", m.cfg.Snooze)
		return river.JobSnooze(m.cfg.Snooze)
	}
	ctx = tenancy.WithTenant(ctx, t)
	return doInner(context.WithValue(ctx, loggerKey{}, logger))
}

type loggerKey struct{}

// Logger returns the logger of the job ctx belongs to: Config.Logger with
// the job's ID, kind and attempt and its tenant's ID and identifier. Outside
// a job it returns slog.Default().
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
