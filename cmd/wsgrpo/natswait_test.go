package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest/natsproc"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// syncBuffer is a log destination that tests read while a stage writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// downServer writes the configuration of a nats-server that is not
// running yet, and returns a stage configuration of run (without a
// labeler) pointing at it.
func downServer(tb testing.TB, run string) (cfg Config, natsConf string, port int) {
	tb.Helper()
	natsConf, port = pipetest.NATSProcessConf(tb, tb.TempDir()) // skips without a nats-server binary
	cfg = DefaultConfig()
	cfg.Run, cfg.NoLabeler, cfg.Dir = run, true, tb.TempDir()
	cfg.NATS = fmt.Sprintf("nats://127.0.0.1:%d", port)
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	return cfg, natsConf, port
}

// TestStageWaitsForNATS starts a stage while its NATS server is down: it
// must wait, logging the URL it waits for, and get to work once the
// server starts: the pass-through sampler moves a prompt, the learner
// (its run lock, weight store and run state opened only then) announces
// its starting policy.
func TestStageWaitsForNATS(t *testing.T) {
	for _, tc := range []struct {
		name, stage, as string
		// setup adjusts the configuration; works publishes what the stage
		// needs and reports whether it did its work.
		setup func(t *testing.T, cfg *Config)
		works func(ctx context.Context, t *testing.T, js jetstream.JetStream, topo pipeline.Topology) func() bool
	}{
		{
			name: "pass-through sampler", stage: "passthrough", as: pipeline.StageSampler,
			setup: func(*testing.T, *Config) {},
			works: func(ctx context.Context, t *testing.T, js jetstream.JetStream, topo pipeline.Topology) func() bool {
				prompt, _ := topo.Hop(schemas.KindPrompt)
				rollout, _ := topo.Hop(schemas.KindRollout)
				rec := schemas.NewPromptBatch(memory.DefaultAllocator, []schemas.Prompt{{RunID: topo.Run, Step: 1, PromptID: "p0", Task: "wiring", Prompt: "1+1=", ReferenceAnswer: "2"}})
				_, err := pipeline.PublishBatch(ctx, js, prompt.Subject, rec, "natswait-0", 0)
				rec.Release()
				if err != nil {
					t.Fatal(err)
				}
				return func() bool {
					s, err := js.Stream(ctx, rollout.Stream)
					return err == nil && s.CachedInfo().State.Msgs >= 1
				}
			},
		},
		{
			name: "learner", stage: pipeline.StageLearner,
			setup: func(t *testing.T, cfg *Config) {
				t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
				cfg.NoLabeler = false
				cfg.Train.Model = tinyModel(t) // skips without ONNX Runtime
				cfg.Learner.GroupsPerStep = 2
			},
			works: func(ctx context.Context, t *testing.T, js jetstream.JetStream, topo pipeline.Topology) func() bool {
				ws, err := pipeline.OpenWeightStore(ctx, js, topo)
				if err != nil {
					t.Fatal(err)
				}
				return func() bool {
					_, err := ws.Latest(ctx)
					return err == nil
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, natsConf, port := downServer(t, "natswait")
			tc.setup(t, &cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			ctx := testCtx(t)
			logs := &syncBuffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			sctx, stop := context.WithCancel(ctx)
			defer stop()
			done := make(chan error, 1)
			go func() { done <- runStageWait(sctx, cfg, log, tc.stage, tc.as, time.Hour) }()

			waiting := func() bool {
				l := logs.String()
				return strings.Contains(l, "waiting for the NATS server") && strings.Contains(l, cfg.NATS)
			}
			if !waitUntil(ctx, waiting) {
				t.Fatalf("the stage did not say it waits for %s; log:\n%s", cfg.NATS, logs)
			}
			select {
			case err := <-done:
				t.Fatalf("the stage exited while the server was down: %v", err)
			default:
			}
			natsproc.Start(t, natsConf, port)

			js := pipetest.Connect(t, cfg.NATS)
			topo, err := cfg.topology()
			if err != nil {
				t.Fatal(err)
			}
			if err := topo.Ensure(ctx, js); err != nil {
				t.Fatal(err)
			}
			if !waitUntil(ctx, tc.works(ctx, t, js, topo)) {
				t.Fatalf("the %s did not get to work once the server was up; log:\n%s", tc.name, logs)
			}
			stop()
			if err := <-done; err != nil {
				t.Fatalf("stage: %v", err)
			}
		})
	}
}

// TestStageNATSWaitRunsOut starts a stage whose server never comes: with
// no wait it fails at once with the connect error, with a wait it fails
// once the wait has passed, saying the server was unreachable.
func TestStageNATSWaitRunsOut(t *testing.T) {
	for _, tc := range []struct {
		name string
		wait time.Duration
		want error
	}{
		{"no wait", 0, nats.ErrNoServers},
		{"a short wait", time.Second, pipeline.ErrServerUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, _ := downServer(t, "natsgone")
			err := runStageWait(testCtx(t), cfg, slog.New(slog.DiscardHandler), "passthrough", pipeline.StageSampler, tc.wait)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), cfg.NATS) {
				t.Fatalf("stage with no server: %v; want %v naming %s", err, tc.want, cfg.NATS)
			}
		})
	}
}
