package ort

import (
	"log/slog"
	"os"
	"testing"
)

// testRuntime returns a CPU Runtime for the package's own tests, or skips
// the test when the ONNX Runtime library cannot be found; orttest.Runtime
// does the same for other packages (which this one cannot import).
func testRuntime(t testing.TB) *Runtime {
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
