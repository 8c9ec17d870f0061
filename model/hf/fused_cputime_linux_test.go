//go:build linux

package hf

import (
	"syscall"
	"time"
	"unsafe"
)

// clockThreadCPUTime is Linux's CLOCK_THREAD_CPUTIME_ID.
const clockThreadCPUTime = 3

// threadCPUTime returns the CPU time the calling OS thread has used, and
// true; the caller must hold its thread (runtime.LockOSThread). With one
// intra-op thread ONNX Runtime runs a session's kernels on the thread that
// calls Run, so the difference around a Run is the step's CPU time, free
// of the time the thread waited for a core on a loaded machine.
func threadCPUTime() (time.Duration, bool) {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
