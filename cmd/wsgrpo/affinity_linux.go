package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinProcess restricts every thread of this process to CPUs lo..hi and
// returns what restores the CPU set they had. Threads the Go runtime starts
// later are started from pinned threads and inherit the set. The pipeline
// bench uses it with --pin to keep its own work (the embedded NATS server
// every stage process talks to) off the samplers' CPUs.
func pinProcess(lo, hi int) (restore func(), err error) {
	var orig, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		return nil, fmt.Errorf("read this process's CPU set: %w", err)
	}
	for c := lo; c <= hi; c++ {
		set.Set(c)
	}
	setAll := func(s *unix.CPUSet) error {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			// A thread may have exited since the listing: ESRCH is fine.
			if err := unix.SchedSetaffinity(tid, s); err != nil && err != unix.ESRCH {
				return fmt.Errorf("thread %d: %w", tid, err)
			}
		}
		return nil
	}
	if err := setAll(&set); err != nil {
		_ = setAll(&orig)
		return nil, fmt.Errorf("pin this process to CPUs %d-%d: %w", lo, hi, err)
	}
	return func() { _ = setAll(&orig) }, nil
}
