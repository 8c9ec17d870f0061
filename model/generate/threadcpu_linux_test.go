package generate

import "golang.org/x/sys/unix"

// threadCPU returns the CPU time the calling OS thread has used, in
// seconds, and true; the caller locks its goroutine to the thread.
func threadCPU() (float64, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9, true
}
