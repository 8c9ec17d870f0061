//go:build !unix

package trainstep

import "time"

// processCPU returns 0: process CPU time is only read on Unix systems.
func processCPU() time.Duration { return 0 }
