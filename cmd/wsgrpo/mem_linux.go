package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// totalMemory returns the machine's physical memory in bytes, or 0.
func totalMemory() uint64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// procStatusKiB returns a "kB" field of /proc/self/status (VmHWM: the
// peak resident set size; VmRSS: the current one) in bytes.
func procStatusKiB(field string) (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}
