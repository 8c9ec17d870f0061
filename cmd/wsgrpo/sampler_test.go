package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// TestSamplerStage runs `wsgrpo stage sampler` against a real JetStream
// server: prompts published before any policy version is held (not
// dead-lettered), and once a version is in the run's weight store every
// prompt comes out as a group of rollouts sampled with it.
func TestSamplerStage(t *testing.T) {
	srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: t.TempDir(), Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	cfg := DefaultConfig()
	cfg.Run, cfg.NATS = "sampling", srv.URL()
	cfg.Sampler = SamplerConfig{Samples: 2, MaxNewTokens: 6}
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(testCtx(t))
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	wg.Go(func() {
		if err := runStage(ctx, cfg, log, pipeline.StageSampler, ""); err != nil {
			errs <- err
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })

	js := pipetest.Connect(t, srv.URL())
	topo, _ := pipeline.NewTopology(cfg.Run)
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	prompts, _ := topo.Hop(schemas.KindPrompt)
	const batches, rows = 3, 4
	for b := range batches {
		rec := wiringPrompts(cfg.Run, b, rows)
		_, err := pipeline.PublishBatch(ctx, js, prompts.Subject, rec, fmt.Sprint("p-", b), 0)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	rollouts, _ := topo.Hop(schemas.KindRollout)
	cons, err := js.CreateConsumer(ctx, rollouts.Stream, jetstream.ConsumerConfig{Durable: "verifier", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
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
