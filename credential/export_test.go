package credential

import "sync/atomic"

// CountVerifications counts hash verifications until the returned stop is
// called. Tests using it must not run in parallel with each other.
func CountVerifications() (count *atomic.Int64, stop func()) {
	var n atomic.Int64
	hook := func() { n.Add(1) }
	verifyHook.Store(&hook)
	return &n, func() { verifyHook.Store(nil) }
}
