//go:build !linux

package main

import "errors"

// totalMemory is unknown off Linux: no memory limit is set.
func totalMemory() uint64 { return 0 }

// procStatusKiB is Linux's /proc/self/status: unknown elsewhere.
func procStatusKiB(string) (uint64, error) {
	return 0, errors.New("no /proc/self/status on this platform")
}

// availableMemory is unknown off Linux: 0, no check.
func availableMemory() uint64 { return 0 }
