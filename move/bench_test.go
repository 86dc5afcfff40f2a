package move_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy/move"
)

// BenchmarkFreeze moves a tenant of n rows from the shared tables into a
// schema of its own while 4 writers insert into it, and reports how long
// the writes waited: the p99 and the longest of the writes made during the
// move (each a one-statement INSERT, timed from send to acknowledgement),
// and the freeze as the mover measured it. Run it once per size:
//
//	go test -run '^$' -bench BenchmarkFreeze -benchtime 1x ./move
func BenchmarkFreeze(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			for i := range b.N {
				benchFreeze(b, n, i)
			}
		})
	}
}

func benchFreeze(b *testing.B, n, iter int) {
	b.StopTimer()
	f := setup(b, 30*time.Second)
	ctx := context.Background()
	tn := f.tenant(b, fmt.Sprintf("bench%d", iter), starter, n)
	var (
		mu    sync.Mutex
		waits []time.Duration
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		next  atomic.Int64
	)
	next.Store(int64(n) + 1)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cur, err := f.store.Get(ctx, tn.ID)
				if err != nil {
					b.Error(err)
					return
				}
				start := time.Now()
				if _, err := f.hybrid.Exec(ctx, cur, "INSERT INTO items (id, val) VALUES ($1, 'w')", next.Add(1)); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				waits = append(waits, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	waits = waits[:0]
	mu.Unlock()
	b.StartTimer()
	res, err := move.Tenant(ctx, f.mover, tn.ID, move.To{Tier: ptr(enterprise)})
	b.StopTimer()
	close(stop)
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	slices.Sort(waits)
	p99 := waits[len(waits)*99/100]
	b.ReportMetric(float64(res.Freeze.Microseconds())/1000, "freeze-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-write-ms")
	b.ReportMetric(float64(waits[len(waits)-1].Microseconds())/1000, "max-write-ms")
	b.ReportMetric(float64(len(waits)), "writes")
}
