package prompts_test

import (
	"context"
	"fmt"
	"iter"
	"syscall"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest/natsproc"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
)

// gatedSource yields the items of a task one per token on gate, so that
// a test decides how far the source gets.
type gatedSource struct {
	tasks.Source
	gate <-chan struct{}
}

func (g gatedSource) Items(split tasks.Split, seed uint64) iter.Seq[tasks.Item] {
	return func(yield func(tasks.Item) bool) {
		for it := range g.Source.Items(split, seed) {
			if _, ok := <-g.gate; !ok || !yield(it) {
				return
			}
		}
	}
}

// TestSourceAcrossServerRestarts publishes while the nats-server process
// is restarted (SIGTERM), crashed (SIGKILL), and stalled then crashed (a
// request sent to the stalled server is never answered), the source's
// context having a deadline (a JetStream request waits for its reply up
// to that deadline). The source must ride out each, and the stream must
// hold every step's prompts exactly once: a step published again after a
// lost reply is de-duplicated by its message ids.
func TestSourceAcrossServerRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a nats-server process and restarts it")
	}
	path, port := pipetest.NATSProcessConf(t, t.TempDir())
	srv := natsproc.Start(t, path, port)
	defer func() {
		if t.Failed() {
			t.Logf("nats-server log:\n%s", srv.Log())
		}
	}()
	js := pipetest.Connect(t, fmt.Sprintf("nats://127.0.0.1:%d", port))
	topo, err := pipeline.NewTopology("restarts")
	if err != nil {
		t.Fatal(err)
	}
	// A guard for a hung source, not a timing assertion; the source's
	// deadline is later still.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	task, err := arith.New(arith.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	const steps, perStep = 240, 2
	gate := make(chan struct{})
	cfg := prompts.Config{PerStep: perStep, Steps: steps, Split: tasks.Train, Seed: 3, MaxRows: 1}
	src, err := prompts.New(ctx, js, topo, gatedSource{task, gate}, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(t.Context(), time.Hour)
	defer scancel()
	type result struct {
		stats prompts.Stats
		err   error
	}
	done := make(chan result, 1)
	go func() {
		st, err := src.Run(sctx)
		done <- result{st, err}
	}()
	// Let items through until the source has taken n, or it ended.
	var res *result
	feed := func(n int) {
		for range n {
			if res != nil {
				return
			}
			select {
			case gate <- struct{}{}:
			case r := <-done:
				res = &r
				return
			case <-ctx.Done():
				t.Fatal("the source stopped taking items")
			}
		}
	}
	feed(60 * perStep)
	srv.Restart(t, 30*time.Second)
	feed(60 * perStep)
	srv.Crash(t)
	feed(60*perStep - 1)
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The step's last item: the source publishes the step to the stalled
	// server, which never answers.
	feed(1)
	srv.Crash(t)
	for res == nil {
		select {
		case gate <- struct{}{}:
		case r := <-done:
			res = &r
		case <-ctx.Done():
			t.Fatal("the source did not finish")
		}
	}
	if res.err != nil || res.stats.Last != steps {
		t.Fatalf("source: %+v, %v; want every step published", res.stats, res.err)
	}
	got := drain(t, js, topo)
	for step := int64(1); step <= steps; step++ {
		if len(got[step]) != perStep {
			t.Errorf("step %d: %d prompts in the stream, want %d", step, len(got[step]), perStep)
		}
	}
}
