//go:build !linux

package main

import "errors"

// pinProcess is Linux-only; elsewhere the pipeline bench runs unpinned.
func pinProcess(lo, hi int) (restore func(), err error) {
	return nil, errors.New("pinning a process to CPUs needs Linux")
}
