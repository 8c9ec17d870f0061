//go:build !linux

package main

// totalMemory is unknown off Linux: no memory limit is set.
func totalMemory() uint64 { return 0 }
