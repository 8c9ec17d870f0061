package main

import (
	"os"
	"runtime/debug"
)

// gcPercent is the garbage-collector target wsgrpo runs with when GOGC is
// not set. A stage decodes, encodes and (with the embedded server) stores a
// message of a few hundred kilobytes per batch while its live heap stays
// small, so Go's default of 100 collects every few batches: with 400 the
// in-process hop moved 25-30% more bytes per second (docs/BENCHMARKS.md).
const gcPercent = 400

// tuneGC applies gcPercent, and a soft memory limit of half the machine's
// memory so the larger target cannot grow the heap without bound, unless
// the user set GOGC or GOMEMLIMIT.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if total := totalMemory(); total > 0 {
			debug.SetMemoryLimit(int64(total / 2))
		}
	}
}
