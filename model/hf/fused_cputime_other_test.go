//go:build !linux

package hf

import "time"

// threadCPUTime reports false: the thread's CPU time is read on Linux only.
func threadCPUTime() (time.Duration, bool) { return 0, false }
