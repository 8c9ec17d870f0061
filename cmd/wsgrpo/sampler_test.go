package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// TestSamplerStage runs `wsgrpo stage sampler` against a real JetStream
// server: prompts published before any policy version is held (not
// dead-lettered), and once a version is in the run's weight store every
// prompt comes out as a group of rollouts sampled with it.
func TestSamplerStage(t *testing.T) {
	r := startStageRun(t, "sampling", func(c *Config) { c.Sampler = SamplerConfig{Samples: 2, MaxNewTokens: 6} }, 1, pipeline.StageSampler, "")
	cfg, js, topo, errs, ctx := r.cfg, r.js, r.topo, r.errs, testCtx(t)
	const batches, rows = 3, 4
	r.publishPrompts(t, batches, rows)
	cons := r.rolloutConsumer(t)
	if ids := fetchRowIDs(t, cons, schemas.KindRollout); len(ids) != 0 {
		t.Fatalf("rollouts before any policy version: %v", ids)
	}

	blob := testBlob(t, 16, 1, 32, 1)
	ws, err := pipeline.OpenWeightStore(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Put(ctx, 1, blob); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	deadline := time.Now().Add(time.Minute)
	for len(seen) < batches*rows*2 && time.Now().Before(deadline) {
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		for _, id := range fetchRowIDs(t, cons, schemas.KindRollout) {
			seen[id]++
		}
	}
	if len(seen) != batches*rows*2 {
		t.Fatalf("%d of %d rollouts arrived", len(seen), batches*rows*2)
	}
	for b := range batches {
		for i := range rows {
			for k := range int32(2) {
				if id := schemas.TrajectoryID(cfg.Run, int64(b), fmt.Sprintf("w%d-%d", b, i), k); seen[id] != 1 {
					t.Errorf("rollout %s arrived %d times", id, seen[id])
				}
			}
		}
	}
	dead, err := pipeline.ReadDeadLetters(ctx, js, topo, 0)
	if err != nil || len(dead) != 0 {
		t.Fatalf("dead letters %v, %v", dead, err)
	}
}
