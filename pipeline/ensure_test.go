package pipeline

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestEnsureUpdatesChangedConfig checks that Ensure, which creates first,
// still changes what exists with another configuration: every stream of a
// run ensured again with a max age gets it and keeps its messages, and so
// does the groups bucket opened again with another one.
func TestEnsureUpdatesChangedConfig(t *testing.T) {
	srv := startServer(t, false)
	js := connectJS(t, srv)
	ctx := t.Context()
	top := ensureRun(t, js, "changed", jetstream.MemoryStorage)
	hop := top.Hops()[0]
	if _, err := js.Publish(ctx, hop.Subject, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	top.MaxAge = time.Hour
	if err := top.Ensure(ctx, js); err != nil {
		t.Fatalf("Ensure with a max age: %v", err)
	}
	names := []string{top.DeadLetterStream()}
	for _, h := range top.Hops() {
		names = append(names, h.Stream)
	}
	for _, name := range names {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.MaxAge; got != time.Hour {
			t.Errorf("stream %s max age %s, want 1h", name, got)
		}
		if name == hop.Stream && s.CachedInfo().State.Msgs != 1 {
			t.Errorf("stream %s holds %d messages after the update, want 1", name, s.CachedInfo().State.Msgs)
		}
	}
	// A KV bucket opened again with another setting is updated too.
	for _, age := range []time.Duration{time.Minute, 2 * time.Minute} {
		if _, err := OpenGroupStore(ctx, js, top, age); err != nil {
			t.Fatalf("group store with max age %s: %v", age, err)
		}
	}
	s, err := js.Stream(ctx, kvStream(top.GroupsBucket()))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 2*time.Minute {
		t.Errorf("groups bucket max age %s, want 2m", got)
	}
}
