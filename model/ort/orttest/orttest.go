// Package orttest gives tests an ONNX Runtime: a CPU Runtime when the
// library is installed (`make setup` caches it), a skipped test otherwise.
// It is a package of its own so that the ort package, and the binaries that
// import it, do not link the testing package.
package orttest

import (
	"log/slog"
	"os"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/ort"
)

// Runtime returns a CPU Runtime for tests, or skips the test with a clear
// message when the ONNX Runtime library cannot be found (`make setup` caches
// it). Any other failure fails the test.
func Runtime(t testing.TB) *ort.Runtime {
	t.Helper()
	c := ort.DefaultConfig()
	if _, err := ort.LibraryPath(c); err != nil {
		t.Skipf("skipping: ONNX Runtime library not available: %v", err)
	}
	r, err := ort.Init(c, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("ort.Init: %v", err)
	}
	return r
}
