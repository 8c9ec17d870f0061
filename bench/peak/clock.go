package peak

import (
	"fmt"
	"runtime"
	"time"
)

// chainOpsPerIter is the number of dependent single-cycle integer
// operations (ADD, LEA and XOR: one cycle of latency on every x86 core of
// the last two decades) in one iteration of chain.
const chainOpsPerIter = 8

// chain runs n iterations of a dependency chain of chainOpsPerIter
// single-cycle operations; no core can retire it faster than one operation
// per cycle, so ops/second is a lower bound on the clock while it runs.
//
//go:noinline
func chain(n int, x uint64) uint64 {
	for i := range n {
		u := uint64(i)
		x += u
		x ^= 0x9e37
		x += u
		x ^= 0x7f4a
		x += u
		x ^= 0x1234
		x += u
		x ^= 0x5678
	}
	return x
}

// Clock is a measured core clock.
type Clock struct {
	// GHz is the fastest run's dependent operations per nanosecond: the
	// clock one busy core actually ran at (boost included), less any time
	// the thread lost to preemption.
	GHz   float64 `json:"ghz"`
	Runs  int     `json:"runs"`
	Iters int     `json:"iters"`
}

// MeasureClock times runs executions of an iters-iteration dependency chain
// on the calling goroutine and keeps the fastest.
func MeasureClock(runs, iters int) (Clock, error) {
	if runs <= 0 || iters <= 0 {
		return Clock{}, fmt.Errorf("%w: clock runs and iterations must be positive, got %d and %d", ErrBadConfig, runs, iters)
	}
	best := time.Duration(1<<63 - 1)
	for r := range runs {
		start := time.Now()
		runtime.KeepAlive(chain(iters, uint64(r)))
		best = min(best, max(time.Since(start), time.Nanosecond))
	}
	return Clock{
		GHz:   float64(iters*chainOpsPerIter) / float64(best.Nanoseconds()),
		Runs:  runs,
		Iters: iters,
	}, nil
}
