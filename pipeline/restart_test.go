package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline/pipetest/natsproc"
)

// procServer is a nats-server process with JetStream in a file store, for
// tests that stall, kill and restart it.
type procServer struct {
	*natsproc.Server
	url string
}

// startProcServer starts a nats-server process (skips without one).
func startProcServer(tb testing.TB) *procServer {
	tb.Helper()
	natsproc.Binary(tb)
	port := natsproc.FreePort(tb)
	conf, err := NATSConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), StoreDir: filepath.Join(tb.TempDir(), "jetstream")}.Render()
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "nats.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		tb.Fatal(err)
	}
	return &procServer{Server: natsproc.Start(tb, path, port), url: fmt.Sprintf("nats://127.0.0.1:%d", port)}
}

// connect opens a reconnecting client (Connect) and its JetStream.
func (s *procServer) connect(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	nc, err := Connect(s.url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := NewJetStream(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// TestRunStateWatchStartedAcrossCrash starts a watch while the server is
// stalled (SIGSTOP: the request that creates the watch goes out and is
// never answered) and then crashes and restarts it. The KV client sends
// that request with the caller's context and nothing else: with a
// deadline it waited until the deadline (the prompt source of the
// scale-out test waited out the test, which stalled), without one it
// failed after the client's 5 s default (a `wsgrpo source` started during
// a NATS restart exited). Either way the watch must start, and deliver a
// value put after the restart.
func TestRunStateWatchStartedAcrossCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a nats-server process and waits out a request timeout")
	}
	for _, tc := range []struct {
		name     string
		deadline time.Duration // of the watch's context; 0: none
	}{
		{"no deadline", 0},
		{"a long deadline", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startProcServer(t)
			js := srv.connect(t)
			top := ensureRun(t, js, "lostwatch", jetstream.FileStorage)
			// A guard for a hung watch, not a timing assertion.
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			st, err := OpenRunState(ctx, js, top)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Put(ctx, "learner.step", []byte("1")); err != nil {
				t.Fatal(err)
			}
			if err := srv.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			wctx := t.Context()
			if tc.deadline > 0 {
				var wcancel context.CancelFunc
				wctx, wcancel = context.WithTimeout(wctx, tc.deadline)
				defer wcancel()
			}
			type watched struct {
				ch  <-chan []byte
				err error
			}
			started := make(chan watched, 1)
			go func() {
				ch, err := st.Watch(wctx, "learner.step")
				started <- watched{ch, err}
			}()
			var w watched
			select {
			case w = <-started:
			case <-ctx.Done():
				_ = srv.Signal(syscall.SIGCONT)
				t.Fatal("Watch waited for the stalled server's reply")
			}
			if w.err != nil {
				t.Fatalf("Watch while the server was stalled: %v; want a watch that starts once the server is back", w.err)
			}
			srv.Crash(t) // the stalled server never answers
			for {
				// The client reconnects on its own; a put meanwhile may time out.
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := st.Put(pctx, "learner.step", []byte("2"))
				pcancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("put after the restart: %v", err)
				}
			}
			for {
				select {
				case v := <-w.ch:
					if string(v) == "2" {
						return
					}
				case <-ctx.Done():
					t.Fatal("the watch did not deliver the value put after the restart")
				}
			}
		})
	}
}
