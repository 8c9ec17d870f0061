package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// TestSourceFeedsAndWaits runs `wsgrpo source --wait` against a NATS
// server: it publishes step 1 at once, step 2 only once the learner
// finished step 1 (train.ahead 1), and exits when the learner reports the
// last step.
func TestSourceFeedsAndWaits(t *testing.T) {
	srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: t.TempDir(), Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	path := writeTrainConfig(t, "src", "")
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := execute(t, newSourceCmd(), "--config", path, "--nats", srv.URL(), "--wait")
		done <- result{out, err}
	}()
	js := pipetest.Connect(t, srv.URL())
	cfg := DefaultConfig()
	cfg.Run = "src"
	topo, err := cfg.topology()
	if err != nil {
		t.Fatal(err)
	}
	hop, err := topo.Hop(schemas.KindPrompt)
	if err != nil {
		t.Fatal(err)
	}
	messages := func() uint64 {
		st, err := js.Stream(t.Context(), hop.Stream)
		if err != nil {
			return 0
		}
		info, err := st.Info(t.Context())
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			select {
			case r := <-done:
				t.Fatalf("source exited while waiting for %s: %v\n%s", what, r.err, r.out)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	poll("step 1's prompts", func() bool { return messages() >= 1 })
	one := messages()
	// Step 2 waits for the learner (ahead 1): nothing more is published.
	time.Sleep(300 * time.Millisecond)
	if n := messages(); n != one {
		t.Fatalf("%d prompt messages before the learner finished step 1, want %d (step 1 only)", n, one)
	}
	st, err := pipeline.OpenRunState(t.Context(), js, topo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(t.Context(), prompts.KeyLearnerStep, []byte("1")); err != nil {
		t.Fatal(err)
	}
	poll("step 2's prompts", func() bool { return messages() > one })
	if _, err := st.Put(t.Context(), prompts.KeyLearnerStep, []byte("2")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("%v\n%s", r.err, r.out)
		}
		for _, want := range []string{"published steps 1-2 of run src", "the learner finished step 2 of 2"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("output lacks %q:\n%s", want, r.out)
			}
		}
	case <-time.After(20 * time.Second):
		t.Fatal("source --wait did not exit after the learner's last step")
	}
}

func TestSourceNeedsNATS(t *testing.T) {
	path := writeTrainConfig(t, "src", "")
	if _, err := execute(t, newSourceCmd(), "--config", path); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--nats") {
		t.Fatalf("got %v, want ErrConfig naming --nats", err)
	}
}
