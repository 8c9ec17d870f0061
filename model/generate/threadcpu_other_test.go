//go:build !linux

package generate

// threadCPU reports that thread CPU time is not measured on this system.
func threadCPU() (float64, bool) { return 0, false }
