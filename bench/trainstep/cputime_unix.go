//go:build unix

package trainstep

import (
	"syscall"
	"time"
)

// processCPU returns the user plus system CPU time the process has used so
// far (all threads, ONNX Runtime's included), or 0 where unavailable.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
