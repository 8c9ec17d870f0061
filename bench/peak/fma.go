package peak

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrFMAUnsupported means this CPU, OS or architecture cannot run the FMA
// kernel of the width asked for (the 512-bit kernel without AVX-512F, any
// kernel outside amd64); test with errors.Is.
var ErrFMAUnsupported = errors.New("peak: FMA kernel unsupported")

// FMAWidths are the vector widths, in bits, that MeasureFMA measures.
var FMAWidths = []int{256, 512}

// fmaAccumulators is the number of independent VFMADD231PS per kernel
// iteration (see fma_amd64.s): more than the 2 pipes × 4 cycles of latency
// of current x86 cores, so the kernel runs at the FMA issue rate.
const fmaAccumulators = 12

// FMAFLOPsPerIter is the fp32 floating-point operations in one iteration of
// the bits-wide kernel: 12 FMAs × bits/32 lanes × 2.
func FMAFLOPsPerIter(bits int) float64 {
	return fmaAccumulators * float64(bits/32) * 2
}

// FMARate is the measured fp32 FMA throughput at one vector width: a loop
// of VFMADD231PS on 12 independent accumulators, so latency is hidden and
// only the issue rate counts.
type FMARate struct {
	// Bits is the vector width (256: YMM, AVX2+FMA; 512: ZMM, AVX-512F).
	Bits int `json:"bits"`
	// Unsupported says why the width was not measured ("" when it was);
	// the rates are then zero.
	Unsupported string `json:"unsupported,omitempty"`
	// PerCoreGFLOPs is the fastest of Runs single-thread runs.
	PerCoreGFLOPs float64 `json:"per_core_gflops"`
	// Threads goroutines, each locked to its own OS thread, ran Runs
	// rounds together (each round starts at a spinning barrier);
	// TotalGFLOPs is the fastest round's FLOPs over its wall time, from
	// the first thread's start to the last thread's end.
	Threads     int     `json:"threads"`
	TotalGFLOPs float64 `json:"total_gflops"`
	// Runs and Iters are the timed runs (and rounds) and the kernel
	// iterations in each.
	Runs  int `json:"runs"`
	Iters int `json:"iters"`
}

// Scaling is TotalGFLOPs over Threads × PerCoreGFLOPs: about 1 when every
// thread had a core to itself for a whole round, about 0.5 when two
// threads shared one core's FMA units (SMT siblings) or another process
// held a CPU throughout. 0 when the width was not measured.
func (f FMARate) Scaling() float64 {
	if f.Threads == 0 || f.PerCoreGFLOPs == 0 {
		return 0
	}
	return f.TotalGFLOPs / (float64(f.Threads) * f.PerCoreGFLOPs)
}

// String renders the rate, e.g. "256-bit 112.3 GFLOP/s per core, 224.0
// on 2 threads", or "512-bit unsupported: …".
func (f FMARate) String() string {
	if f.Unsupported != "" {
		return fmt.Sprintf("%d-bit unsupported: %s", f.Bits, f.Unsupported)
	}
	return fmt.Sprintf("%d-bit %.1f GFLOP/s per core, %.1f on %d threads", f.Bits, f.PerCoreGFLOPs, f.TotalGFLOPs, f.Threads)
}

// MeasureFMA measures the bits-wide FMA kernel: runs single-thread runs of
// iters iterations on the calling goroutine (locked to its OS thread), then
// runs rounds on threads goroutines at once. Keeping the fastest of many
// short runs filters out preemption by other processes, as MeasureClock
// does. It returns an error wrapping ErrFMAUnsupported when the CPU lacks
// the width's instructions.
func MeasureFMA(bits, threads, runs, iters int) (FMARate, error) {
	if threads <= 0 || runs <= 0 || iters <= 0 {
		return FMARate{}, fmt.Errorf("%w: FMA threads, runs and iterations must be positive, got %d, %d and %d",
			ErrBadConfig, threads, runs, iters)
	}
	kernel, err := fmaKernel(bits)
	if err != nil {
		return FMARate{}, err
	}
	flops := FMAFLOPsPerIter(bits) * float64(iters)
	runtime.LockOSThread()
	best := time.Duration(1<<63 - 1)
	for range runs {
		start := time.Now()
		kernel(iters)
		best = min(best, max(time.Since(start), time.Nanosecond))
	}
	runtime.UnlockOSThread()
	round := fmaRounds(kernel, threads, runs, iters)
	return FMARate{
		Bits:          bits,
		PerCoreGFLOPs: flops / float64(best.Nanoseconds()),
		Threads:       threads,
		TotalGFLOPs:   float64(threads) * flops / float64(round.Nanoseconds()),
		Runs:          runs,
		Iters:         iters,
	}, nil
}

// fmaRounds runs kernel(iters) on threads goroutines, each locked to its OS
// thread, in runs rounds that start together at a spinning barrier, and
// returns the shortest round: last end minus first start.
func fmaRounds(kernel func(int) float32, threads, runs, iters int) time.Duration {
	type span struct{ start, end time.Time }
	spans := make([]span, runs*threads) // round r, thread i at r*threads+i
	var arrived atomic.Int64
	var wg sync.WaitGroup
	for i := range threads {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for r := range runs {
				arrived.Add(1)
				for arrived.Load() < int64(threads*(r+1)) {
					// Spin: a parked goroutine takes tens of microseconds
					// to wake, which would stagger the threads' starts.
				}
				s := &spans[r*threads+i]
				s.start = time.Now()
				kernel(iters)
				s.end = time.Now()
			}
		})
	}
	wg.Wait()
	best := time.Duration(1<<63 - 1)
	for r := range runs {
		first, last := spans[r*threads].start, spans[r*threads].end
		for _, s := range spans[r*threads : (r+1)*threads] {
			if s.start.Before(first) {
				first = s.start
			}
			if s.end.After(last) {
				last = s.end
			}
		}
		best = min(best, max(last.Sub(first), time.Nanosecond))
	}
	return best
}
