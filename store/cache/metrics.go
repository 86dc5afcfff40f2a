package cache

import "context"

// Metrics receives the lookups and failures of a Store. It is called on
// every lookup, so implementations must be safe for concurrent use and
// cheap: count, never block. The calls carry no tenant: a lookup is counted
// before its tenant is known.
type Metrics interface {
	// CacheLookup is called once per lookup at each level it reaches: level
	// is LevelL1 or LevelL2, result ResultHit, ResultMiss or, in L1 only,
	// ResultNegativeHit (a remembered "not found").
	CacheLookup(ctx context.Context, level, result string)
	// CacheError is called once per failure, with the operation that failed
	// (OpGet, OpSet, OpInvalidate, OpPing, OpDecode or OpMessage). A Redis
	// failure is served from the store: it costs time, never a request.
	CacheError(ctx context.Context, op string)
}

// Cache levels, as passed to Metrics.CacheLookup.
const (
	LevelL1 = "l1" // the in-process cache
	LevelL2 = "l2" // Redis
)

// Lookup results, as passed to Metrics.CacheLookup.
const (
	ResultHit         = "hit"
	ResultMiss        = "miss"
	ResultNegativeHit = "negative_hit"
)

// Operations, as passed to Metrics.CacheError.
const (
	OpGet        = "get"        // L2 read
	OpSet        = "set"        // L2 fill
	OpInvalidate = "invalidate" // L2 delete and broadcast
	OpPing       = "ping"       // health probe
	OpDecode     = "decode"     // undecodable or mismatched L2 entry
	OpMessage    = "message"    // undecodable invalidation message
)

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) CacheLookup(context.Context, string, string) {}
func (noMetrics) CacheError(context.Context, string)          {}
