package pipeline

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestWeightStore(t *testing.T) {
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top := ensureRun(t, js, "weights", jetstream.FileStorage)
	ctx := context.Background()
	ws, err := OpenWeightStore(ctx, js, top)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Latest(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Latest on empty store = %v, want ErrNotFound", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch, err := ws.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	blob := func(v int64) []byte { return bytes.Repeat([]byte{byte(v)}, 3<<20) }
	for v := int64(1); v <= 2; v++ {
		if err := ws.Put(ctx, v, blob(v)); err != nil {
			t.Fatalf("Put v%d: %v", v, err)
		}
		waitForVersion(t, watch, v)
	}
	if err := ws.Put(ctx, 1, blob(1)); err != nil { // a late, older announcement
		t.Fatal(err)
	}
	if v, err := ws.Latest(ctx); err != nil || v != 2 {
		t.Fatalf("Latest = %d, %v; want 2 (versions never move back)", v, err)
	}
	got, err := ws.Get(ctx, 1)
	if err != nil || !bytes.Equal(got, blob(1)) {
		t.Fatalf("Get v1: %d bytes, %v", len(got), err)
	}
	if _, err := ws.Get(ctx, 99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get v99 = %v, want ErrNotFound", err)
	}
	if err := ws.Delete(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Get(ctx, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	if err := ws.Put(ctx, -1, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Put(-1) = %v", err)
	}
	// A watcher started later sees the current version first.
	late, err := ws.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	waitForVersion(t, late, 2)
	cancel()
	for range watch {
	}
}

func waitForVersion(t testing.TB, ch <-chan int64, want int64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed before version %d", want)
			}
			if v == want {
				return
			}
			if v > want {
				t.Fatalf("watch skipped to %d, want %d", v, want)
			}
		case <-timeout:
			t.Fatalf("no version %d from the watch", want)
		}
	}
}

func TestRunState(t *testing.T) {
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top := ensureRun(t, js, "state", jetstream.MemoryStorage)
	ctx := context.Background()
	st, err := OpenRunState(ctx, js, top)
	if err != nil {
		t.Fatal(err)
	}
	type cfg struct {
		Steps int    `json:"steps"`
		Shape string `json:"shaper"`
	}
	if _, err := st.PutJSON(ctx, "config", cfg{Steps: 3, Shape: "ws"}); err != nil {
		t.Fatal(err)
	}
	var got cfg
	if err := st.GetJSON(ctx, "config", &got); err != nil || got.Steps != 3 || got.Shape != "ws" {
		t.Fatalf("GetJSON = %+v, %v", got, err)
	}
	if _, _, err := st.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) = %v", err)
	}
	if _, err := st.Put(ctx, "bad key", nil); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Put(bad key) = %v", err)
	}
	rev, err := st.Update(ctx, "step", []byte("1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, "step", []byte("2"), rev+5); err == nil {
		t.Fatal("Update with a stale revision succeeded")
	}
	if _, err := st.Update(ctx, "step", []byte("2"), rev); err != nil {
		t.Fatal(err)
	}
}

func TestRunStateWatch(t *testing.T) {
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top := ensureRun(t, js, "watch", jetstream.MemoryStorage)
	ctx := t.Context()
	st, err := OpenRunState(ctx, js, top)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "learner.step", []byte("1")); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	ch, err := st.Watch(wctx, "learner.step")
	if err != nil {
		t.Fatal(err)
	}
	next := func(want string) {
		t.Helper()
		select {
		case v := <-ch:
			if string(v) != want {
				t.Fatalf("watched %q, want %q", v, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no value %q", want)
		}
	}
	next("1") // the current value first
	if _, err := st.Put(ctx, "learner.step", []byte("2")); err != nil {
		t.Fatal(err)
	}
	next("2")
	if _, err := st.Watch(ctx, "bad key"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Watch(bad key) = %v", err)
	}
	cancel()
	for range ch { // closes once ctx ends
	}
}

// TestRunStateWatchAcrossRestart restarts the server under a watch: a
// value put after the restart reaches the watcher within a few seconds,
// not only once the KV watcher's ordered consumer notices, from missed
// heartbeats, that the restart took its consumer (10 to 20 s).
func TestRunStateWatchAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := StartServer(ServerConfig{StoreDir: dir, Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Port()
	js := connectJS(t, srv)
	top := ensureRun(t, js, "rewatch", jetstream.FileStorage)
	ctx := t.Context()
	st, err := OpenRunState(ctx, js, top)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := st.Watch(ctx, "learner.step")
	if err != nil {
		t.Fatal(err)
	}
	next := func(want string, within time.Duration) {
		t.Helper()
		timeout := time.After(within)
		for {
			select {
			case v := <-ch:
				if string(v) == want {
					return
				}
			case <-timeout:
				t.Fatalf("no value %q within %s", want, within)
			}
		}
	}
	if _, err := st.Put(ctx, "learner.step", []byte("1")); err != nil {
		t.Fatal(err)
	}
	next("1", 10*time.Second)
	srv.Shutdown()
	waitFor(t, 10*time.Second, "the client to notice", func() bool { return !js.Conn().IsConnected() })
	restarted, err := StartServer(ServerConfig{StoreDir: dir, Listen: true, Port: port})
	if err != nil {
		t.Fatalf("restart server: %v", err)
	}
	t.Cleanup(restarted.Shutdown)
	waitFor(t, 10*time.Second, "the client to reconnect", js.Conn().IsConnected)
	if _, err := st.Put(ctx, "learner.step", []byte("2")); err != nil {
		t.Fatal(err)
	}
	next("2", 4*time.Second)
}
