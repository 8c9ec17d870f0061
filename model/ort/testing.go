package ort

import (
	"log/slog"
	"os"
	"testing"
)

// TestRuntime returns a CPU Runtime for tests, or skips the test with a clear
// message when the ONNX Runtime library cannot be found (`make setup` caches
// it). Any other failure fails the test.
func TestRuntime(t testing.TB) *Runtime {
	t.Helper()
	c := DefaultConfig()
	if _, err := LibraryPath(c); err != nil {
		t.Skipf("skipping: ONNX Runtime library not available: %v", err)
	}
	r, err := Init(c, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("ort.Init: %v", err)
	}
	return r
}
