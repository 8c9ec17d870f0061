// Package ort runs ONNX models with ONNX Runtime through
// github.com/yalue/onnxruntime_go. It owns the process-wide runtime
// environment (initialised once), resolves the shared library, picks the
// execution provider (CPU, or CUDA with a logged fallback to CPU), and wraps
// sessions so that callers exchange plain Go tensors (Tensor) by name.
//
// Models of 2 GiB or more, which one protobuf cannot hold, open with
// NewModelSession or NewSessionExternal: the weights go to ONNX Runtime
// from Go memory through OrtApi::AddExternalInitializers, which
// onnxruntime_go does not wrap, so a small cgo shim (external.go) calls it
// through the OrtApi function table of the loaded library. That way the
// weights are never serialised (the protobuf path holds them twice in Go,
// once as tensors and once encoded) and never written to disk; ONNX Runtime
// makes the one copy it documents for that call. NewSessionFromFile opens
// a model saved with external data files instead (onnx.Model.SaveExternal),
// which ONNX Runtime memory-maps.
package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Providers accepted in Config.Provider.
const (
	ProviderCPU  = "cpu"
	ProviderCUDA = "cuda"
)

// Environment variables consulted by LibraryPath.
const (
	EnvLibrary = "WSGRPO_ORT_LIB"
	EnvHome    = "WSGRPO_HOME"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrLibraryNotFound means the ONNX Runtime shared library is not where
	// the configuration says.
	ErrLibraryNotFound = errors.New("ort: ONNX Runtime library not found (run `make setup`, or set " + EnvLibrary + " to libonnxruntime.so)")
	// ErrLibraryLoad means the library exists but could not be loaded or
	// initialised.
	ErrLibraryLoad = errors.New("ort: cannot load ONNX Runtime library (run `make setup`, or set " + EnvLibrary + " to a working libonnxruntime.so)")
	// ErrCUDAUnavailable means CUDA was required but the CUDA execution
	// provider could not be enabled.
	ErrCUDAUnavailable = errors.New("ort: CUDA execution provider unavailable")
	// ErrBadModel means ONNX Runtime rejected a model.
	ErrBadModel = errors.New("ort: bad model")
	// ErrBadInput means the tensors given to Run do not match the session.
	ErrBadInput = errors.New("ort: bad input")
	// ErrBadConfig means a Config failed validation.
	ErrBadConfig = errors.New("ort: bad config")
	// ErrRun means ONNX Runtime failed while running a session.
	ErrRun = errors.New("ort: run failed")
	// ErrClosed means the session was already closed.
	ErrClosed = errors.New("ort: session closed")
)

// Config selects the ONNX Runtime library and how sessions execute.
type Config struct {
	// LibraryPath is the shared library; "" means $WSGRPO_ORT_LIB, else
	// $WSGRPO_HOME/lib/libonnxruntime.so.1 (WSGRPO_HOME defaults to
	// ~/.cache/wsgrpo).
	LibraryPath string
	// Provider is "cpu" (default) or "cuda".
	Provider string
	// DeviceID is the CUDA device ordinal.
	DeviceID int
	// RequireCUDA makes an unusable CUDA provider an error
	// (ErrCUDAUnavailable) instead of a logged fallback to CPU.
	RequireCUDA bool
	// IntraOpThreads is the per-operator thread count (default 1: one thread
	// was as fast as two for wsgrpo's small models, see DESIGN.md).
	IntraOpThreads int
	// InterOpThreads is the cross-operator thread count (default 1).
	InterOpThreads int
	// ProfilePrefix, when set, turns on ONNX Runtime's per-node profiler:
	// each session writes a Chrome-trace JSON file whose name starts with
	// this prefix when it is closed.
	ProfilePrefix string
	// NoSpinning stops idle ONNX Runtime pool threads from busy-waiting for
	// work (session.intra_op/inter_op.allow_spinning = 0). Spinning speeds
	// up multi-threaded runs on idle cores; on cores shared with other
	// processes it burns CPU time the other threads need.
	NoSpinning bool
	// ParallelExecution runs independent graph nodes concurrently on the
	// InterOpThreads pool (ONNX Runtime's parallel execution mode) instead
	// of one node at a time.
	ParallelExecution bool
}

// DefaultConfig returns the CPU configuration with one thread per session.
func DefaultConfig() Config {
	return Config{Provider: ProviderCPU, IntraOpThreads: 1, InterOpThreads: 1}
}

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	if c.Provider == "" {
		c.Provider = ProviderCPU
	}
	if c.IntraOpThreads == 0 {
		c.IntraOpThreads = 1
	}
	if c.InterOpThreads == 0 {
		c.InterOpThreads = 1
	}
	return c
}

// Validate reports a Config that cannot work. Zero values are fine (they take
// defaults).
func (c Config) Validate() error {
	switch c.Provider {
	case "", ProviderCPU, ProviderCUDA:
	default:
		return fmt.Errorf("%w: provider %q (want %q or %q)", ErrBadConfig, c.Provider, ProviderCPU, ProviderCUDA)
	}
	if c.DeviceID < 0 {
		return fmt.Errorf("%w: negative device id %d", ErrBadConfig, c.DeviceID)
	}
	if c.IntraOpThreads < 0 || c.InterOpThreads < 0 {
		return fmt.Errorf("%w: negative thread count (intra %d, inter %d)", ErrBadConfig, c.IntraOpThreads, c.InterOpThreads)
	}
	if c.RequireCUDA && c.Provider != ProviderCUDA {
		return fmt.Errorf("%w: RequireCUDA set but provider is %q", ErrBadConfig, c.Provider)
	}
	return nil
}

// LibraryPath resolves the shared library path for c (see Config.LibraryPath)
// and checks that the file exists; a missing file gives ErrLibraryNotFound.
func LibraryPath(c Config) (string, error) {
	p := c.LibraryPath
	if p == "" {
		p = os.Getenv(EnvLibrary)
	}
	if p == "" {
		home := os.Getenv(EnvHome)
		if home == "" {
			uh, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("%w: no %s, %s or home directory: %w", ErrLibraryNotFound, EnvLibrary, EnvHome, err)
			}
			home = filepath.Join(uh, ".cache", "wsgrpo")
		}
		p = filepath.Join(home, "lib", "libonnxruntime.so.1")
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrLibraryNotFound, p, err)
	}
	if st.IsDir() {
		return "", fmt.Errorf("%w: %s is a directory", ErrLibraryNotFound, p)
	}
	return p, nil
}
