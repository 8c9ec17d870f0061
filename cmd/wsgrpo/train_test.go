package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// TestTrainWiring runs the wiring run end to end, with and without a
// labeler: every row reaches the end of the line and the trajectory log,
// which then answers SQL.
func TestTrainWiring(t *testing.T) {
	t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
	for _, tc := range []struct {
		name     string
		args     []string
		summary  []string
		query    string
		wantRows string
	}{
		{
			// Batches of 64 rows put the string columns above 4 KiB, where
			// a recycling allocator would hand memory that row ids still
			// alias to the next batch (a regression this test caught).
			name: "labeler",
			args: []string{"--run", "wire1", "--batches", "40", "--rows", "64"},
			summary: []string{
				"2560 unique of 2560 expected",
				"dead letters:        0",
				"trajectory log:      2560 rows",
			},
			query:    "SELECT count() AS n FROM trajectories_dedup",
			wantRows: "2560",
		},
		{
			// Without a labeler the logger logs the verified rows, as
			// unlabeled rows.
			name: "no labeler",
			args: []string{"--no-labeler", "--run", "evalwire", "--batches", "10", "--rows", "16"},
			summary: []string{
				"sampler -> verifier -> end of line (no labeler)",
				"160 unique of 160 expected",
				"dead letters:        0",
				"trajectory log:      160 rows",
				"through 3 hops",
			},
			query:    "SELECT count() AS n, max(labeled) AS l FROM trajectories_dedup",
			wantRows: "160,0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			got, err := execute(t, newTrainCmd(), append([]string{"--wiring", "--dir", dir, "--timeout", "30s"}, tc.args...)...)
			if err != nil {
				t.Fatalf("train --wiring %v: %v\n%s", tc.args, err, got)
			}
			for _, want := range tc.summary {
				if !strings.Contains(got, want) {
					t.Errorf("summary lacks %q:\n%s", want, got)
				}
			}
			got, err = execute(t, newSQLCmd(), "--run", dir, "--format", "csv", tc.query)
			if err != nil || !strings.Contains(got, tc.wantRows) {
				t.Fatalf("sql after wiring run = %q, %v", got, err)
			}
		})
	}
}

func TestTrainAndStageErrors(t *testing.T) {
	tests := []struct {
		name string
		cmd  func() *cobra.Command
		args []string
		want error
	}{
		{"train into an existing run directory", newTrainCmd, []string{"--run", "e1", "--dir", t.TempDir()}, ErrConfig},
		{"train with --resume and --force", newTrainCmd, []string{"--run", "e1", "--resume", "--force", "--dir", t.TempDir()}, ErrConfig},
		{"train with --no-labeler", newTrainCmd, []string{"--run", "e1", "--no-labeler", "--dir", t.TempDir()}, ErrConfig},
		{"train with bad steps", newTrainCmd, []string{"--run", "e1", "--steps", "0", "--dir", t.TempDir()}, ErrConfig},
		{"train with bad rows", newTrainCmd, []string{"--wiring", "--rows", "0", "--dir", t.TempDir()}, ErrConfig},
		{"wiring batch above the payload", newTrainCmd, []string{"--wiring", "--batches", "1", "--rows", "100000000", "--dir", t.TempDir()}, ErrConfig},
		{"wiring with a negative timeout", newTrainCmd, []string{"--wiring", "--timeout", "-1s", "--dir", t.TempDir()}, ErrConfig},
		{"train with a negative timeout", newTrainCmd, []string{"--run", "e1", "--timeout", "-1s", "--dir", filepath.Join(t.TempDir(), "new")}, ErrConfig},
		{"train with negative ort threads", newTrainCmd, []string{"--wiring", "--ort-threads", "-1", "--dir", t.TempDir()}, ErrConfig},
		{"train with bad listen", newTrainCmd, []string{"--wiring", "--listen", "nope", "--dir", t.TempDir()}, ErrConfig},
		{"bad run id", newTrainCmd, []string{"--wiring", "--run", "a/b"}, ErrConfig},
		{"bad log level", newTrainCmd, []string{"--wiring", "--log-level", "loud"}, ErrConfig},
		{"stage without --nats", newStageCmd, []string{"logger", "--run", "e2"}, ErrConfig},
		{"unknown stage", newStageCmd, []string{"critic", "--nats", "nats://127.0.0.1:1"}, ErrStageUnavailable},
		{"passthrough without --as", newStageCmd, []string{"passthrough", "--nats", "nats://127.0.0.1:1"}, ErrConfig},
		{"passthrough as the learner", newStageCmd, []string{"passthrough", "--as", "learner", "--nats", "nats://127.0.0.1:1"}, ErrConfig},
		{"logger at another position", newStageCmd, []string{"logger", "--as", "sampler", "--nats", "nats://127.0.0.1:1"}, ErrConfig},
		{"sampler with --chat on a wsgrpo checkpoint", newStageCmd, []string{"sampler", "--nats", "nats://127.0.0.1:1", "--chat", "--model", filepath.Join("..", "..", "testdata", "base")}, ErrConfig},
		{"bench pipeline with --ahead 0", newBenchCmd, []string{"pipeline", "--ahead", "0"}, ErrConfig},
		{"bench pipeline with --passes 0", newBenchCmd, []string{"pipeline", "--passes", "0"}, ErrConfig},
		{"train with --chat and a prompt template", newTrainCmd, []string{"--run", "e1", "--chat", "--dir", t.TempDir(), "--config", chatTemplateConf(t)}, ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := tc.cmd()
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			cmd.SetArgs(tc.args)
			if err := cmd.ExecuteContext(testCtx(t)); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// chatTemplateConf writes a config that sets both sampler.chat's rival,
// sampler.prompt_template, and returns its path.
func chatTemplateConf(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(p, []byte("sampler:\n  prompt_template: \"Q: {prompt}\\n\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStageTable: every stage of the table stands at positions of the
// run's topology, and `wsgrpo stage --help` lists each of them.
func TestStageTable(t *testing.T) {
	topo, err := pipeline.NewTopology("table")
	if err != nil {
		t.Fatal(err)
	}
	help := newStageCmd().Long
	for _, d := range stageTable {
		t.Run(d.name, func(t *testing.T) {
			if len(d.positions) == 0 || d.build == nil || d.usage == "" {
				t.Fatalf("incomplete entry %+v", d)
			}
			for _, p := range d.positions {
				if _, err := topo.Stage(p); err != nil {
					t.Errorf("position %s: %v", p, err)
				}
			}
			if !strings.Contains(help, "  "+d.name) || !strings.Contains(help, d.usage) {
				t.Errorf("stage --help does not list %s:\n%s", d.name, help)
			}
			if got, err := lookupStage(d.name); err != nil || got.name != d.name {
				t.Errorf("lookupStage(%s) = %v, %v", d.name, got.name, err)
			}
		})
	}
}

// TestStageCopiesShareWork runs two copies of a stage against one listening
// server, as two `wsgrpo stage` processes would, and checks that every
// batch is processed exactly once between them.
func TestStageCopiesShareWork(t *testing.T) {
	r := startStageRun(t, "share", nil, 2, "passthrough", pipeline.StageSampler)
	const batches, rows = 30, 4
	r.publishPrompts(t, batches, rows)
	cons := r.rolloutConsumer(t)
	errs := r.errs
	seen := map[string]int{}
	deadline := time.Now().Add(time.Minute)
	for len(seen) < batches*rows && time.Now().Before(deadline) {
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		for _, id := range fetchRowIDs(t, cons, schemas.KindRollout) {
			seen[id]++
		}
	}
	if len(seen) != batches*rows {
		t.Fatalf("%d of %d rows arrived", len(seen), batches*rows)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("row %s arrived %d times", id, n)
		}
	}
}

// stageRun is a listening embedded NATS server with copies of one stage of
// the table running against it, as `wsgrpo stage` processes would, and a
// client of the run.
type stageRun struct {
	cfg  Config
	js   jetstream.JetStream
	topo pipeline.Topology
	errs chan error
}

// startStageRun starts the server and copies of stage name (at position as)
// for run; edit adjusts the configuration first.
func startStageRun(t *testing.T, run string, edit func(*Config), copies int, name, as string) *stageRun {
	t.Helper()
	srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: t.TempDir(), Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	cfg := DefaultConfig()
	cfg.Run, cfg.NATS = run, srv.URL()
	if edit != nil {
		edit(&cfg)
	}
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(testCtx(t))
	var wg sync.WaitGroup
	r := &stageRun{cfg: cfg, errs: make(chan error, copies)}
	for range copies {
		wg.Go(func() {
			if err := runStage(ctx, cfg, log, name, as); err != nil {
				r.errs <- err
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	r.js = pipetest.Connect(t, srv.URL())
	r.topo, _ = pipeline.NewTopology(cfg.Run)
	if err := r.topo.Ensure(ctx, r.js); err != nil {
		t.Fatal(err)
	}
	return r
}

// publishPrompts publishes batches wiring prompt batches of rows rows.
func (r *stageRun) publishPrompts(t *testing.T, batches, rows int) {
	t.Helper()
	prompts, _ := r.topo.Hop(schemas.KindPrompt)
	for b := range batches {
		rec := wiringPrompts(r.cfg.Run, b, rows)
		_, err := pipeline.PublishBatch(testCtx(t), r.js, prompts.Subject, rec, fmt.Sprint(r.cfg.Run, "-", b), 0)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// rolloutConsumer reads the rollout stream in the verifier's place.
func (r *stageRun) rolloutConsumer(t *testing.T) jetstream.Consumer {
	t.Helper()
	rollouts, _ := r.topo.Hop(schemas.KindRollout)
	cons, err := r.js.CreateConsumer(testCtx(t), rollouts.Stream, jetstream.ConsumerConfig{Durable: "verifier", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return cons
}
