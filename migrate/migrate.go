package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/isolation"
	"github.com/pressly/goose/v3"
)

// Config configures a Runner.
type Config struct {
	// Migrations holds the SQL migration files, in goose's format
	// (NNN_name.sql with -- +goose Up / Down sections), at its root; use
	// fs.Sub for a sub-directory of an embed.FS. Required.
	Migrations fs.FS
	// Targets reaches the storage of tenants: a provider opened on the
	// migration DSN. Required.
	Targets isolation.Migratable
	// Store lists the tenants to migrate. Required.
	Store tenancy.Store
	// Journal records outcomes and locks targets. Required.
	Journal Journal
	// Concurrency is how many targets are migrated at once. Default 4.
	Concurrency int
	// Logger receives one line per failed target. Default slog.Default().
	Logger *slog.Logger
}

// Runner applies a migration set to tenant targets.
type Runner struct {
	cfg    Config
	latest int64
	// count is how many migrations the set holds.
	count int64
}

// Status of one target in a Report.
type Status string

// Target statuses.
const (
	// StatusMigrated: migrations were applied.
	StatusMigrated Status = "migrated"
	// StatusCurrent: the target was checked and was already current.
	StatusCurrent Status = "current"
	// StatusSkipped: the journal says the target is current; it was not
	// opened.
	StatusSkipped Status = "skipped"
	// StatusPending: a dry run found migrations to apply.
	StatusPending Status = "pending"
	// StatusFailed: migrating failed; Error says why.
	StatusFailed Status = "failed"
	// StatusHeld: a canary run failed too often, so the rollout stopped
	// before this target was opened.
	StatusHeld Status = "held"
	// StatusOK is how the journal records a target brought to Version.
	StatusOK Status = "ok"
)

// Result is the outcome for one target.
type Result struct {
	Target     string        `json:"target"`
	TenantID   string        `json:"tenant_id,omitempty"`
	Identifier string        `json:"identifier,omitempty"`
	From       int64         `json:"from"`
	To         int64         `json:"to"`
	Status     Status        `json:"status"`
	Error      string        `json:"error,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
}

// Report is the outcome of a run.
type Report struct {
	// Latest is the highest version in the migration set.
	Latest int64 `json:"latest"`
	// Results holds one entry per target, in target order.
	Results  []Result      `json:"results"`
	Duration time.Duration `json:"duration_ns"`
}

// Count returns how many results have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// Failed returns the failed results.
func (r *Report) Failed() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Status == StatusFailed {
			out = append(out, res)
		}
	}
	return out
}

// ErrFailed is matched (errors.Is) by the error Up returns when at least one
// target failed; the error is a *FailedError.
var ErrFailed = errors.New("migrate: some targets failed")

// ErrHalted is matched (errors.Is) by the error Up returns when the canary
// targets failed more often than Options.MaxFailureRate allows and the
// rollout stopped; the error is a *FailedError with Held set.
var ErrHalted = errors.New("migrate: rollout halted by the canary")

// FailedError lists the targets that failed in a run.
type FailedError struct {
	Failed []Result
	Total  int
	// Held counts the targets not opened because the canary failed; when
	// it is above zero the error also matches ErrHalted.
	Held int
}

func (e *FailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "migrate: %d of %d targets failed", len(e.Failed), e.Total)
	if e.Held > 0 {
		fmt.Fprintf(&b, " in the canary; rollout halted, %d targets held", e.Held)
	}
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-i)
			break
		}
		name := f.Identifier
		if name == "" {
			name = f.Target
		}
		fmt.Fprintf(&b, "; %s: %s", name, f.Error)
	}
	return b.String()
}

// Unwrap returns ErrFailed, and ErrHalted when the rollout was halted.
func (e *FailedError) Unwrap() []error {
	if e.Held > 0 {
		return []error{ErrFailed, ErrHalted}
	}
	return []error{ErrFailed}
}

// Options select and shape one run.
type Options struct {
	// Tenant, when set, migrates only the targets of the tenant with this
	// identifier (for a tenant in shared tables, the shared target).
	Tenant string
	// DryRun reports what would be applied and applies nothing.
	DryRun bool
	// Verify opens every target even when the journal says it is current.
	Verify bool
	// Progress, when set, is called once per target as it finishes, with
	// the number of targets done and in all. Calls are serialized.
	Progress func(done, total int, r Result)
	// Canary, when above zero, migrates at most this many targets first
	// (in target order, among those with work to do and, with CanaryTier,
	// of that tier), and goes on with the rest only if the canary's
	// failures stay within MaxFailureRate; otherwise the rest are reported
	// as StatusHeld and Up returns an error matching ErrHalted. Default 0:
	// no canary.
	Canary int
	// CanaryTier, when set, makes the canary the targets of tenants of this
	// tier (at most Canary of them when Canary is above zero). Default: any
	// tier.
	CanaryTier string
	// MaxFailureRate is the share of canary targets, from 0 to 1, that may
	// fail before the rollout halts. Default 0: any failure halts it.
	MaxFailureRate float64
}

// canary reports whether opts ask for a canary.
func (o Options) canary() bool { return o.Canary > 0 || o.CanaryTier != "" }

// New checks cfg and reads the migration set's versions.
func New(cfg Config) (*Runner, error) {
	if cfg.Migrations == nil || cfg.Targets == nil || cfg.Store == nil || cfg.Journal == nil {
		return nil, errors.New("migrate: Migrations, Targets, Store and Journal are required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	latest, err := LatestVersion(cfg.Migrations)
	if err != nil {
		return nil, err
	}
	entries, _ := fs.ReadDir(cfg.Migrations, ".")
	var count int64
	for _, e := range entries {
		if !e.IsDir() && path.Ext(e.Name()) == ".sql" {
			count++
		}
	}
	return &Runner{cfg: cfg, latest: latest, count: count}, nil
}

// Latest returns the highest version of the migration set.
func (r *Runner) Latest() int64 { return r.latest }

// LatestVersion returns the highest version among the migration files of
// fsys, as goose numbers them.
func LatestVersion(fsys fs.FS) (int64, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return 0, fmt.Errorf("migrate: read migrations: %w", err)
	}
	var latest int64
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		v, err := goose.NumericComponent(e.Name())
		if err != nil {
			return 0, fmt.Errorf("migrate: migration %s: %w", e.Name(), err)
		}
		latest = max(latest, v)
	}
	if latest == 0 {
		return 0, errors.New("migrate: no migrations found")
	}
	return latest, nil
}

// tenants lists the tenants to migrate: every one but those whose
// provisioning failed (they may have no storage; provisioning again migrates
// them), or only the one named.
func (r *Runner) tenants(ctx context.Context, identifier string) ([]*tenancy.Tenant, error) {
	if identifier != "" {
		t, err := r.cfg.Store.GetByIdentifier(ctx, identifier)
		if err != nil {
			return nil, fmt.Errorf("migrate: tenant %q: %w", identifier, err)
		}
		return []*tenancy.Tenant{t}, nil
	}
	all, err := tenancy.ListAll(ctx, r.cfg.Store, "")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return slices.DeleteFunc(all, func(t *tenancy.Tenant) bool { return t.Status == tenancy.StatusFailed }), nil
}

// Up migrates every target, or the one tenant's, to the latest version. It
// returns the report and ErrFailed when some target failed; other errors
// (the store or journal unreachable) come without a report.
func (r *Runner) Up(ctx context.Context, opts Options) (*Report, error) {
	if opts.Canary < 0 || opts.MaxFailureRate < 0 || opts.MaxFailureRate > 1 {
		return nil, fmt.Errorf("migrate: canary %d and max failure rate %v: the canary must not be negative, the rate must be from 0 to 1", opts.Canary, opts.MaxFailureRate)
	}
	tenants, err := r.tenants(ctx, opts.Tenant)
	if err != nil {
		return nil, err
	}
	return r.up(ctx, tenants, opts)
}

// UpTenant migrates the targets of t as given, not as the store has it, to
// the latest version, checking each target's own version table (as
// Options.Verify does): a tenant's new place, before a move switches its
// record there (package move), or a place it had before and may come back
// to. A tenant kept in shared tables has no target of its own; the shared
// target is migrated then.
func (r *Runner) UpTenant(ctx context.Context, t *tenancy.Tenant) (*Report, error) {
	if t == nil {
		return nil, tenancy.ErrNoTenant
	}
	return r.up(ctx, []*tenancy.Tenant{t}, Options{Tenant: t.Identifier, Verify: true})
}

func (r *Runner) up(ctx context.Context, tenants []*tenancy.Tenant, opts Options) (*Report, error) {
	start := time.Now()
	targets, err := r.cfg.Targets.Targets(tenants)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if opts.Tenant != "" {
		// A tenant in shared tables is migrated through the shared target;
		// its own targets are what it has beyond that.
		if own := ownTargets(targets); len(own) > 0 {
			targets = own
		}
	}
	records, err := r.cfg.Journal.Load(ctx)
	if err != nil {
		return nil, err
	}
	report := &Report{Latest: r.latest, Results: make([]Result, len(targets))}
	var mu sync.Mutex
	done := 0
	finish := func(i int, res Result) {
		mu.Lock()
		defer mu.Unlock()
		report.Results[i] = res
		done++
		if opts.Progress != nil {
			opts.Progress(done, len(targets), res)
		}
	}

	// Targets the journal says are current are skipped without being
	// opened; the others are migrated, the canary's first.
	var pending []int
	for i, t := range targets {
		// A record of another tenant under the same key (a purged
		// identifier reused) says nothing about this one.
		if rec, ok := records[t.Key]; ok && !opts.Verify && rec.Status == StatusOK && rec.Version == r.latest && rec.TenantID == tenantID(t) {
			finish(i, Result{Target: t.Key, TenantID: tenantID(t), Identifier: identifier(t), From: rec.Version, To: rec.Version, Status: StatusSkipped})
			continue
		}
		pending = append(pending, i)
	}
	held := 0
	if opts.canary() {
		canary, rest := splitCanary(targets, pending, opts)
		r.run(ctx, targets, canary, opts.DryRun, records, finish)
		failed := 0
		for _, i := range canary {
			if report.Results[i].Status == StatusFailed {
				failed++
			}
		}
		if len(canary) > 0 && float64(failed) > opts.MaxFailureRate*float64(len(canary)) {
			for _, i := range rest {
				t := targets[i]
				finish(i, Result{Target: t.Key, TenantID: tenantID(t), Identifier: identifier(t), Status: StatusHeld})
			}
			held = len(rest)
			rest = nil
		}
		pending = rest
	}
	r.run(ctx, targets, pending, opts.DryRun, records, finish)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("migrate: %w", ctx.Err())
	}
	report.Duration = time.Since(start)
	if failed := report.Failed(); len(failed) > 0 {
		return report, &FailedError{Failed: failed, Total: len(report.Results), Held: held}
	}
	return report, nil
}

// splitCanary splits the pending target indexes into the canary and the
// rest, keeping target order in both.
func splitCanary(targets []isolation.Target, pending []int, opts Options) (canary, rest []int) {
	for _, i := range pending {
		t := targets[i]
		in := opts.CanaryTier == "" || (t.Tenant != nil && t.Tenant.Tier == opts.CanaryTier)
		if in && (opts.Canary <= 0 || len(canary) < opts.Canary) {
			canary = append(canary, i)
			continue
		}
		rest = append(rest, i)
	}
	return canary, rest
}

// run migrates the targets at the given indexes with a bounded pool of
// workers, each taking the next target when free.
func (r *Runner) run(ctx context.Context, targets []isolation.Target, indexes []int, dryRun bool, records map[string]Record, finish func(int, Result)) {
	if len(indexes) == 0 {
		return
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, len(indexes)) {
		wg.Go(func() {
			for i := range work {
				t := targets[i]
				rec, ok := records[t.Key]
				// The journal's word that the target is current and
				// finished; the target is still checked.
				finished := ok && rec.Status == StatusOK && rec.Version == r.latest && rec.TenantID == tenantID(t)
				finish(i, r.migrate(ctx, t, dryRun, finished))
			}
		})
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	for _, i := range indexes {
		select {
		case work <- i:
		case <-ctx.Done():
			return
		}
	}
}

func ownTargets(targets []isolation.Target) []isolation.Target {
	return slices.DeleteFunc(slices.Clone(targets), func(t isolation.Target) bool { return t.Tenant == nil })
}

func tenantID(t isolation.Target) string {
	if t.Tenant == nil {
		return ""
	}
	return t.Tenant.ID
}

func identifier(t isolation.Target) string {
	if t.Tenant == nil {
		return ""
	}
	return t.Tenant.Identifier
}

// migrate brings one target to the latest version under its lock and
// records the outcome. finished says the journal records the target as
// current and finished (its grants applied): then, if the target's own
// version table agrees, it is reported current with no further work (the
// Verify path).
func (r *Runner) migrate(ctx context.Context, t isolation.Target, dryRun, finished bool) Result {
	start := time.Now()
	res := Result{Target: t.Key, TenantID: tenantID(t), Identifier: identifier(t)}
	var lease Lease
	fail := func(err error) Result {
		res.Status = StatusFailed
		res.Error = err.Error()
		res.Duration = time.Since(start)
		r.cfg.Logger.Warn("migration failed", "target", t.Key, "tenant_id", res.TenantID, "error", err)
		if lease != nil && !dryRun {
			rec := Record{Target: t.Key, TenantID: res.TenantID, From: res.From, Version: res.To, Status: StatusFailed, Error: res.Error, Duration: res.Duration}
			if jerr := lease.Commit(context.WithoutCancel(ctx), rec); jerr != nil {
				r.cfg.Logger.Error("record migration failure", "target", t.Key, "error", jerr)
			}
		}
		return res
	}

	lease, err := r.cfg.Journal.Lock(ctx, t.Key)
	if err != nil {
		lease = nil
		return fail(fmt.Errorf("lock target: %w", err))
	}
	defer lease.Release()

	db, err := t.Open(ctx)
	if err != nil {
		return fail(fmt.Errorf("open target: %w", err))
	}
	defer db.Close()
	current := false
	if finished && !dryRun {
		// One query instead of goose's several: every migration of the
		// set applied, the highest the latest.
		var version, applied int64
		err := db.QueryRowContext(ctx, "SELECT coalesce(max(version_id), 0), count(DISTINCT version_id) FILTER (WHERE version_id > 0) FROM "+isolation.VersionTable).Scan(&version, &applied)
		if err == nil && version == r.latest && applied == r.count {
			res.From, res.To, current = version, version, true
		}
	}
	var applied []*goose.MigrationResult
	if !current {
		provider, err := goose.NewProvider(gooseDialect(t.Dialect), db, r.cfg.Migrations,
			goose.WithDisableGlobalRegistry(true), goose.WithSlog(discard), goose.WithTableName(isolation.VersionTable))
		if err != nil {
			return fail(fmt.Errorf("load migrations: %w", err))
		}
		if res.From, err = provider.GetDBVersion(ctx); err != nil {
			return fail(fmt.Errorf("read version: %w", err))
		}
		res.To = res.From
		if dryRun {
			res.Status = StatusCurrent
			if res.From < r.latest {
				res.Status, res.To = StatusPending, r.latest
			}
			res.Duration = time.Since(start)
			return res
		}
		var upErr error
		applied, upErr = provider.Up(ctx)
		if res.To, err = provider.GetDBVersion(ctx); err != nil && upErr == nil {
			upErr = err
		}
		if upErr != nil {
			return fail(migrationError(upErr))
		}
	}
	// Grants are idempotent and cheap: run them on every opened target, so
	// that a failure here is repaired by the next run.
	if t.Finish != nil {
		if err := t.Finish(ctx, db); err != nil {
			return fail(err)
		}
	}
	res.Status = StatusCurrent
	if len(applied) > 0 {
		res.Status = StatusMigrated
	}
	res.Duration = time.Since(start)
	if current {
		// The journal already records this outcome.
		return res
	}
	if err := lease.Commit(ctx, Record{Target: t.Key, TenantID: res.TenantID, From: res.From, Version: res.To, Status: StatusOK, Duration: res.Duration}); err != nil {
		lease = nil
		return fail(fmt.Errorf("record result: %w", err))
	}
	return res
}

// migrationError names the migration that failed, without goose's wrapping.
func migrationError(err error) error {
	var partial *goose.PartialError
	if errors.As(err, &partial) && partial.Failed != nil && partial.Failed.Source != nil {
		return fmt.Errorf("migration %s: %w", path.Base(partial.Failed.Source.Path), partial.Err)
	}
	return err
}

func gooseDialect(d isolation.Dialect) goose.Dialect {
	if d == isolation.SQLite {
		return goose.DialectSQLite3
	}
	return goose.DialectPostgres
}

// discard drops goose's per-migration log lines: the report carries the
// outcome.
var discard = slog.New(slog.DiscardHandler)

// Status reports every target's recorded version against the latest,
// without opening any target.
func (r *Runner) Status(ctx context.Context) (*Report, error) {
	start := time.Now()
	tenants, err := r.tenants(ctx, "")
	if err != nil {
		return nil, err
	}
	targets, err := r.cfg.Targets.Targets(tenants)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	records, err := r.cfg.Journal.Load(ctx)
	if err != nil {
		return nil, err
	}
	report := &Report{Latest: r.latest}
	for _, t := range targets {
		res := Result{Target: t.Key, TenantID: tenantID(t), Identifier: identifier(t), Status: StatusPending, To: r.latest}
		if rec, ok := records[t.Key]; ok {
			res.From, res.Duration = rec.Version, rec.Duration
			switch {
			case rec.Status == StatusFailed:
				res.Status, res.Error = StatusFailed, rec.Error
			case rec.Version == r.latest:
				res.Status = StatusCurrent
			}
		}
		report.Results = append(report.Results, res)
	}
	report.Duration = time.Since(start)
	return report, nil
}

var _ tenancy.Component = (*Runner)(nil)

// Forget drops the journal records of t's targets, for a purged tenant
// whose identifier may be reused. It implements tenancy.Component.
func (r *Runner) Forget(ctx context.Context, t *tenancy.Tenant) error {
	targets, err := r.cfg.Targets.Targets([]*tenancy.Tenant{t})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, tg := range ownTargets(targets) {
		if err := r.cfg.Journal.Delete(ctx, tg.Key); err != nil {
			return err
		}
	}
	return nil
}

// Residue implements tenancy.Component: it names the journal records left
// of t, under the keys of its own targets or carrying its ID. The records
// of shared targets (the tables of row-level security) belong to no tenant.
func (r *Runner) Residue(ctx context.Context, t *tenancy.Tenant) ([]string, error) {
	targets, err := r.cfg.Targets.Targets([]*tenancy.Tenant{t})
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	own := make(map[string]bool)
	for _, tg := range ownTargets(targets) {
		own[tg.Key] = true
	}
	records, err := r.cfg.Journal.Load(ctx)
	if err != nil {
		return nil, err
	}
	var left []string
	for key, rec := range records {
		if own[key] || rec.TenantID == t.ID {
			left = append(left, "migration journal record "+key)
		}
	}
	slices.Sort(left)
	return left, nil
}
