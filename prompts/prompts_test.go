package prompts_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
)

func setup(t *testing.T, run string) (jetstream.JetStream, pipeline.Topology, *arith.Task) {
	t.Helper()
	js := pipetest.JetStream(t)
	topo, err := pipeline.NewTopology(run)
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.Ensure(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	task, err := arith.New(arith.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return js, topo, task
}

// drain reads every prompt row on the run's prompt stream so far, keyed
// by step.
func drain(t *testing.T, js jetstream.JetStream, topo pipeline.Topology) map[int64][]schemas.Prompt {
	t.Helper()
	hop, _ := topo.Hop(schemas.KindPrompt)
	s, err := js.Stream(t.Context(), hop.Stream)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64][]schemas.Prompt{}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := schemas.Decode(schemas.KindPrompt, m.Data, nil)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := schemas.ReadPrompts(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			out[r.Step] = append(out[r.Step], r)
		}
	}
	return out
}

func TestSourcePublishesSteps(t *testing.T) {
	js, topo, task := setup(t, "src")
	cfg := prompts.Config{PerStep: 5, Steps: 3, Split: tasks.Train, Seed: 7, MaxRows: 2}
	s, err := prompts.New(t.Context(), js, topo, task, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.First != 1 || st.Last != 3 || st.Prompts != 15 {
		t.Fatalf("stats %+v", st)
	}
	got := drain(t, js, topo)
	want := tasks.Take(task.Items(tasks.Train, 7), 15)
	for step := int64(1); step <= 3; step++ {
		rows := got[step]
		if len(rows) != 5 {
			t.Fatalf("step %d: %d prompts", step, len(rows))
		}
		for i, r := range rows {
			w := want[int(step-1)*5+i]
			if r.PromptID != w.ID || r.Prompt != w.Prompt || r.ReferenceAnswer != w.ReferenceAnswer || r.Task != arith.Name || r.RunID != "src" {
				t.Errorf("step %d row %d: %+v, want %+v", step, i, r, w)
			}
		}
	}
	// A restarted source has nothing left to publish.
	s2, _ := prompts.New(t.Context(), js, topo, task, cfg, nil)
	if st, err := s2.Run(t.Context()); err != nil || st.Prompts != 0 || st.First != 4 {
		t.Fatalf("restart: %+v, %v", st, err)
	}
	// More steps later: it resumes after step 3 with the next items.
	cfg.Steps = 4
	s3, _ := prompts.New(t.Context(), js, topo, task, cfg, nil)
	if st, err := s3.Run(t.Context()); err != nil || st.First != 4 || st.Last != 4 {
		t.Fatalf("resume: %+v, %v", st, err)
	}
	if rows := drain(t, js, topo)[4]; len(rows) != 5 || rows[0].PromptID != tasks.Take(task.Items(tasks.Train, 7), 16)[15].ID {
		t.Fatalf("step 4 rows %+v", rows)
	}
}

// TestSourceWaitsForLearner: with Ahead 1 the source publishes step s only
// once the learner finished step s-1, reading the run state.
func TestSourceWaitsForLearner(t *testing.T) {
	js, topo, task := setup(t, "ahead")
	s, err := prompts.New(t.Context(), js, topo, task, prompts.Config{PerStep: 2, Steps: 3, Ahead: 1, Split: tasks.Train}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := s.Run(t.Context()); done <- err }()
	state, err := pipeline.OpenRunState(t.Context(), js, topo)
	if err != nil {
		t.Fatal(err)
	}
	published := func() int64 {
		v, _, err := state.Get(t.Context(), prompts.KeySourceStep)
		if err != nil {
			return 0
		}
		n, _ := strconv.ParseInt(string(v), 10, 64)
		return n
	}
	waitFor := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for published() != want {
			if time.Now().After(deadline) {
				t.Fatalf("source at step %d, want %d", published(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(1)
	// Step 2 must wait: the learner has not finished step 1. Give it the
	// time it would need, then check it is still waiting.
	time.Sleep(200 * time.Millisecond)
	if published() != 1 {
		t.Fatalf("source ran ahead to step %d", published())
	}
	for step := 1; step <= 2; step++ {
		if _, err := state.Put(t.Context(), prompts.KeyLearnerStep, []byte(fmt.Sprint(step))); err != nil {
			t.Fatal(err)
		}
		waitFor(int64(step + 1))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSourceErrors(t *testing.T) {
	js, topo, task := setup(t, "errs")
	for _, c := range []prompts.Config{{PerStep: 0, Steps: 1, Split: tasks.Train}, {PerStep: 1, Steps: 1, Split: "dev"}, {PerStep: 1, Steps: 1, Ahead: -1, Split: tasks.Train}} {
		if _, err := prompts.New(t.Context(), js, topo, task, c, nil); !errors.Is(err, prompts.ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	// A finite source runs out.
	short := finite{n: 3}
	s, err := prompts.New(t.Context(), js, topo, short, prompts.Config{PerStep: 2, Steps: 2, Split: tasks.Test}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s.Run(t.Context()); !errors.Is(err, prompts.ErrExhausted) || st.Last != 1 {
		t.Fatalf("Run = %+v, %v", st, err)
	}
	// Cancelling ends a waiting source.
	cjs, ctopo, _ := setup(t, "cancel")
	w, err := prompts.New(t.Context(), cjs, ctopo, task, prompts.Config{PerStep: 1, Steps: 5, Ahead: 1, Split: tasks.Train, Seed: 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := w.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Run = %v", err)
	}
}

// finite is a source of n items.
type finite struct{ n int }

func (f finite) Name() string { return "finite" }
func (f finite) Items(tasks.Split, uint64) iter.Seq[tasks.Item] {
	return func(yield func(tasks.Item) bool) {
		for i := range f.n {
			if !yield(tasks.Item{ID: fmt.Sprint("f", i), Task: "dataset", Prompt: "q", ReferenceAnswer: "1"}) {
				return
			}
		}
	}
}
