package main

import (
	"fmt"
	"os"
	"slices"
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

// availableMemory returns the memory this process may still use, in
// bytes: /proc/meminfo's MemAvailable, or less when the process's cgroup
// (v2) has a memory limit closer to its current use; 0 when unknown.
func availableMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var avail uint64
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			avail = kb << 10
			break
		}
	}
	if left, ok := cgroupMemoryLeft(); ok && (avail == 0 || left < avail) {
		avail = left
	}
	return avail
}

// cgroupMemoryLeft returns the memory limit less the current use of this
// process's cgroup (v2: memory.max and memory.current; v1:
// memory.limit_in_bytes and memory.usage_in_bytes), when it has a limit.
func cgroupMemoryLeft() (uint64, bool) {
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	var files [][2]string
	for line := range strings.Lines(string(cg)) {
		// "0::/path" on the unified hierarchy, "4:memory:/path" on v1.
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			d := "/sys/fs/cgroup" + parts[2]
			files = append(files, [2]string{d + "/memory.max", d + "/memory.current"})
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			d := "/sys/fs/cgroup/memory" + parts[2]
			files = append(files, [2]string{d + "/memory.limit_in_bytes", d + "/memory.usage_in_bytes"})
		}
	}
	read := func(path string) (uint64, bool) {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, false
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return v, err == nil // "max": no limit
	}
	for _, f := range files {
		limit, ok := read(f[0])
		if !ok || limit >= 1<<62 { // v1 writes no limit as a huge number
			continue
		}
		used, _ := read(f[1])
		return limit - min(used, limit), true
	}
	return 0, false
}
