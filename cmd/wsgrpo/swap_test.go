package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
)

// TestSamplerVerifierLoggerRun runs prompt source -> sampler -> verifier ->
// logger (and a sink) as one process over embedded JetStream, publishes a
// second policy version while it runs, and checks that every prompt became
// one group of verified rows in the trajectory log, that both versions
// sampled, and that no group mixes versions.
func TestSamplerVerifierLoggerRun(t *testing.T) {
	tinyModel(t) // skips without ONNX Runtime
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	cfg := DefaultConfig()
	cfg.Run, cfg.Dir, cfg.NoLabeler = "swap", t.TempDir(), true
	cfg.Sampler = SamplerConfig{Samples: 3, MaxNewTokens: 8}
	log := slog.New(slog.DiscardHandler)
	topo, err := cfg.topology()
	if err != nil {
		t.Fatal(err)
	}
	topo.VerifiedConsumers = []string{evalSink, pipeline.StageLogger}
	s, err := openSessionAt(ctx, cfg, topo, log, false, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	tok := tokenizer.Default()
	blobOf := func(seed uint64) []byte { return testBlob(t, 16, 1, 40, seed) }
	ws, err := pipeline.OpenWeightStore(ctx, s.js, s.topo)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Put(ctx, 1, blobOf(1)); err != nil {
		t.Fatal(err)
	}
	logs := newSharedLog(cfg, log)
	defer logs.close()
	g := pipeline.NewGroup(s.js, log)
	if err := addStages(ctx, g, s, []string{pipeline.StageSampler, pipeline.StageVerifier, pipeline.StageLogger}, cfg, log, logs); err != nil {
		t.Fatal(err)
	}
	sink := &verifiedSink{rows: map[string]schemas.Verified{}}
	rc, err := s.topo.SinkRunnerConfig(evalSink)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Add(rc, sink); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	task, err := arith.New(arith.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	const perStep = 4
	// publish runs the prompt source up to step n (it resumes after the
	// last step it published) and waits for that step's rows.
	publish := func(n int) {
		t.Helper()
		src, err := prompts.New(ctx, s.js, s.topo, task, prompts.Config{PerStep: perStep, Steps: n, Split: tasks.Train, MaxRows: 2}, log)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Run(ctx); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for sink.count() < n*perStep*3 {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d rows", sink.count(), n*perStep*3)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	publish(3)
	if err := ws.Put(ctx, 2, blobOf(2)); err != nil {
		t.Fatal(err)
	}
	// Version 2 is built in the background; the steps sampled meanwhile
	// keep version 1, and a later one samples with version 2.
	steps := 3
	for hasVersion := func(v int64) bool {
		for _, r := range sink.all() {
			if r.PolicyVersion == v {
				return true
			}
		}
		return false
	}; !hasVersion(2); {
		if steps == 40 {
			t.Fatal("version 2 was never picked up")
		}
		steps++
		publish(steps)
	}
	want := steps * perStep * 3
	rows := sink.all()
	versions := map[string]int64{}
	seen := map[int64]int{}
	for _, r := range rows {
		if v, ok := versions[r.GroupID]; ok && v != r.PolicyVersion {
			t.Errorf("group %s mixes versions %d and %d", r.GroupID, v, r.PolicyVersion)
		}
		versions[r.GroupID] = r.PolicyVersion
		seen[r.PolicyVersion]++
		if r.Completion != tok.Decode(r.CompletionTokenIDs) || r.TrajectoryID != schemas.TrajectoryID(r.RunID, r.Step, r.PromptID, r.SampleIndex) {
			t.Errorf("row %s: fields do not agree", r.TrajectoryID)
		}
	}
	if len(versions) != steps*perStep {
		t.Errorf("%d groups, want %d", len(versions), steps*perStep)
	}
	t.Logf("rows per version after %d steps: %v", steps, seen)
	if seen[1] < 3*perStep*3 || seen[2] == 0 {
		t.Errorf("rows per version %v: want the first 3 steps with version 1, and version 2 later", seen)
	}
	store, err := logs.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := store.Count(ctx, cfg.Run)
		if err != nil {
			t.Fatal(err)
		}
		if n == int64(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trajectory log holds %d of %d rows", n, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
