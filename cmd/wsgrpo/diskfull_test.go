package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/internal/diskfull/fulltest"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// TestTrainWiringDiskFull runs a wiring run far larger than its disk (a
// 20 MiB tmpfs, so the test needs root): it stops promptly with an error
// wrapping pipeline.ErrStorageFull that says which store is full, where,
// and how much room is left, and what to do.
func TestTrainWiringDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a file system")
	}
	t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
	for _, tc := range []struct {
		name string
		args []string
		what []string // the stores that may fill first
	}{
		{"with the trajectory log", nil, []string{"the JetStream store", "the trajectory log"}},
		{"JetStream only", []string{"--no-log"}, []string{"the JetStream store"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(fulltest.Tmpfs(t, 20<<20), "run")
			start := time.Now()
			out, err := execute(t, newTrainCmd(), append([]string{"--wiring", "--dir", dir, "--batches", "2000", "--timeout", "2m"}, tc.args...)...)
			took := time.Since(start)
			if !errors.Is(err, pipeline.ErrStorageFull) {
				t.Fatalf("train --wiring on a full disk = %v, want an error wrapping ErrStorageFull\n%s", err, out)
			}
			if took > time.Minute {
				t.Errorf("it took %s to stop, want well under the minute", took.Round(time.Second))
			}
			var full *pipeline.StorageFullError
			if !errors.As(err, &full) {
				t.Fatalf("%v: want a StorageFullError", err)
			}
			if !strings.HasPrefix(full.Where, dir) || full.Free < 0 || !slices.Contains(tc.what, full.What) {
				t.Errorf("%v: want %v under %s with the space free", full.Summary(), tc.what, dir)
			}
			lines := errorLines(err)
			if len(lines) != 3 || lines[0] != full.Summary() || !strings.Contains(lines[1], "free space there") {
				t.Errorf("printed as %q: want what is full, then what to do, then the details", lines)
			}
			t.Logf("after %s: %s", took.Round(time.Millisecond), strings.Join(lines, "\n"))
		})
	}
}

// TestWhyFailed: a failed write of a session with an external server is
// reported as the JetStream store's out-of-space error when the server's
// reply says so, and as it is otherwise.
func TestWhyFailed(t *testing.T) {
	s := &session{}
	full := fmt.Errorf("publish: %w", &jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"})
	var sf *pipeline.StorageFullError
	if err := s.whyFailed(full); !errors.As(err, &sf) || sf.What != "the JetStream store" || !errors.Is(err, pipeline.ErrStorageFull) {
		t.Errorf("whyFailed(%v) = %v, want the JetStream store's StorageFullError", full, err)
	}
	// With the embedded server, the refusal names its store directory even
	// before the server's own check has seen the store full.
	srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	embedded := &session{srv: srv}
	if err := embedded.whyFailed(full); !errors.As(err, &sf) || sf.Where != srv.StoreDir() || sf.Free < 0 {
		t.Errorf("embedded whyFailed(%v) = %v, want the store at %s with its free space", full, err, srv.StoreDir())
	}
	timeout := fmt.Errorf("publish: %w", context.DeadlineExceeded)
	if err := s.whyFailed(timeout); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pipeline.ErrStorageFull) {
		t.Errorf("whyFailed(%v) = %v, want it unchanged", timeout, err)
	}
}
