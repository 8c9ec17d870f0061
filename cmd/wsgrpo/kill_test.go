package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
)

// TestSamplerKilledMidBatch starts a sampler process, SIGKILLs it while it
// holds a prompt batch, and checks that a second sampler takes the batch
// over once it is redelivered: every prompt's group lands in the
// trajectory log exactly once.
func TestSamplerKilledMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	tinyModel(t) // skips without ONNX Runtime
	srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: t.TempDir(), Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	cfg := DefaultConfig()
	cfg.Run, cfg.NATS, cfg.Dir, cfg.NoLabeler = "killed", srv.URL(), t.TempDir(), true
	cfg.Sampler = SamplerConfig{Samples: 3, MaxNewTokens: 200}
	cfg.Runner.AckWait = 2 * time.Second // the killed worker's batch comes back soon
	js := pipetest.Connect(t, srv.URL())
	topo, _ := cfg.topology()
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	// A model slow enough that the kill lands while a batch is decoding.
	blob := testBlob(t, 64, 2, 256, 5)
	ws, err := pipeline.OpenWeightStore(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Put(ctx, 1, blob); err != nil {
		t.Fatal(err)
	}
	task, _ := arith.New(arith.DefaultConfig())
	const steps, perStep = 4, 4
	src, err := prompts.New(ctx, js, topo, task, prompts.Config{PerStep: perStep, Steps: steps, Split: tasks.Train, MaxRows: perStep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Run(ctx); err != nil {
		t.Fatal(err)
	}

	proc := exec.Command(os.Args[0], "-test.run=^$")
	proc.Env = append(os.Environ(), envStageProc+"=sampler", envStageProcURL+"="+srv.URL(), envStageProcRun+"="+cfg.Run)
	proc.Stderr = os.Stderr
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.Wait() }()
	t.Cleanup(func() { _ = proc.Process.Kill() })
	// Kill it while it holds a batch unacknowledged.
	promptsHop, _ := topo.Hop("prompt")
	stream, err := js.Stream(ctx, promptsHop.Stream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		cons, err := stream.Consumer(ctx, pipeline.StageSampler)
		if err == nil {
			if info, err := cons.Info(ctx); err == nil && info.NumAckPending > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the sampler process never took a batch")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil {
		t.Fatal("the sampler process exited cleanly; want killed")
	}

	// The survivor: a sampler, the verifier and the logger in this process.
	log := slog.New(slog.DiscardHandler)
	s, err := openSession(ctx, cfg, log, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	logs := newSharedLog(cfg, log)
	defer logs.close()
	g := pipeline.NewGroup(s.js, log)
	if err := addStages(ctx, g, s, []string{pipeline.StageSampler, pipeline.StageVerifier, pipeline.StageLogger}, cfg, log, logs); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := g.Run(ctx); err != nil {
			t.Error(err)
		}
	})
	defer func() { cancel(); wg.Wait() }()
	store, err := logs.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(steps * perStep * 3)
	deadline = time.Now().Add(time.Minute)
	for {
		n, err := store.Count(ctx, cfg.Run)
		if err != nil {
			t.Fatal(err)
		}
		if n == want {
			break
		}
		if n > want || time.Now().After(deadline) {
			t.Fatalf("trajectory log holds %d rows, want %d", n, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	res, err := store.Query(ctx, "SELECT uniqExact(group_id), countIf(c != 3) FROM (SELECT group_id, count() AS c FROM trajectories_dedup WHERE run_id = 'killed' GROUP BY group_id)")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 1 || fmt.Sprint(res.Rows[0]) != fmt.Sprint([]any{uint64(steps * perStep), uint64(0)}) {
		t.Fatalf("groups and groups without exactly 3 rows: %v, want [%d 0]", res.Rows, steps*perStep)
	}
	m := &dto.Metric{}
	if err := s.metric.Redelivered.WithLabelValues(pipeline.StageSampler).Write(m); err != nil || m.GetCounter().GetValue() < 1 {
		t.Fatalf("the survivor saw %v redeliveries (%v); want the killed worker's batch", m.GetCounter().GetValue(), err)
	}
	dead, err := pipeline.ReadDeadLetters(ctx, s.js, s.topo, 0)
	if err != nil || len(dead) != 0 {
		t.Fatalf("dead letters %v, %v", dead, err)
	}
}
