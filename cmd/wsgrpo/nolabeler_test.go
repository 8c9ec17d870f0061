package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// TestNoLabelerConfig: the run's labeler setting comes from the config
// file (run.yaml), the environment or --no-labeler, like every other key.
func TestNoLabelerConfig(t *testing.T) {
	file := writeYAML(t, "run: eval-1\nno_labeler: true\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want bool
	}{
		{"default", nil, nil, false},
		{"file", nil, []string{"--config", file}, true},
		{"env", map[string]string{"WSGRPO_NO_LABELER": "true"}, nil, true},
		{"flag", nil, []string{"--no-labeler"}, true},
		{"flag over file", nil, []string{"--config", file, "--no-labeler=false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			addConfigFlags(fs)
			addLayoutFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			c, err := loadConfig(fs)
			if err != nil {
				t.Fatal(err)
			}
			if c.NoLabeler != tc.want {
				t.Fatalf("NoLabeler = %v, want %v", c.NoLabeler, tc.want)
			}
			topo, err := c.topology()
			if err != nil || topo.NoLabeler != tc.want {
				t.Fatalf("topology = %+v, %v", topo, err)
			}
		})
	}
}

// TestNoLabelerStageErrors: a stage a run without a labeler lacks is
// refused before anything starts.
func TestNoLabelerStageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  func() *cobra.Command
		args []string
	}{
		{"passthrough as labeler", newStageCmd, []string{"passthrough", "--as", "labeler", "--no-labeler", "--nats", "nats://127.0.0.1:1"}},
		{"passthrough as labeler, no nats", newStageCmd, []string{"passthrough", "--as", "labeler", "--no-labeler", "--dir", t.TempDir()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := tc.cmd()
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			cmd.SetArgs(tc.args)
			err := cmd.ExecuteContext(testCtx(t))
			if !errors.Is(err, ErrConfig) || !errors.Is(err, pipeline.ErrNoLabeler) {
				t.Fatalf("err = %v, want ErrConfig and pipeline.ErrNoLabeler", err)
			}
		})
	}
}

// TestStageLoggerNoLabeler runs `wsgrpo stage logger` on a run without a
// labeler, on each trajectory-log backend: it logs every verified batch
// (labeled = 0) through its own consumer while another consumer of the
// verified stream still gets every batch. A logger started without the
// run's labeler setting is refused with ErrLayoutMismatch.
func TestStageLoggerNoLabeler(t *testing.T) {
	const batches, size = 8, 16
	for _, b := range chtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: t.TempDir(), Listen: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Shutdown)
			cfg := DefaultConfig()
			cfg.Run, cfg.NATS, cfg.Dir, cfg.NoLabeler = "eval-"+b.Name, srv.URL(), t.TempDir(), true
			logCfg := cfg.logConfig(nil)
			if b.Name == tracelog.BackendServer {
				bcfg, _ := b.Open(t)
				cfg.ClickHouseDSN, logCfg = bcfg.DSN, bcfg
			} else {
				t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
			}
			js := pipetest.Connect(t, srv.URL())
			ctx := testCtx(t)

			// An eval tally reads the verified stream next to the logger.
			topo, err := cfg.topology()
			if err != nil {
				t.Fatal(err)
			}
			topo.VerifiedConsumers = []string{pipeline.StageLogger, "tally"}
			if err := topo.Ensure(ctx, js); err != nil {
				t.Fatal(err)
			}
			ver, err := topo.Hop(schemas.KindVerified)
			if err != nil {
				t.Fatal(err)
			}
			rows := logstore.SyntheticRows(cfg.Run, batches*size, 8, 3)
			for i := range batches {
				vs := make([]schemas.Verified, size)
				for j := range vs {
					vs[j] = rows[i*size+j].LabeledRow().Verified
				}
				rec := schemas.NewVerifiedBatch(nil, vs)
				_, err := pipeline.PublishBatch(ctx, js, ver.Subject, rec, fmt.Sprint("v", i), 0)
				rec.Release()
				if err != nil {
					t.Fatal(err)
				}
			}

			// A logger that does not know the run has no labeler is refused.
			wrong := cfg
			wrong.NoLabeler = false
			if err := runStage(ctx, wrong, slog.New(slog.DiscardHandler), pipeline.StageLogger, ""); !errors.Is(err, pipeline.ErrLayoutMismatch) {
				t.Fatalf("logger without --no-labeler on a run without a labeler: err = %v, want ErrLayoutMismatch", err)
			}

			stop := startStage(t, ctx, cfg, pipeline.StageLogger)
			tally := drainConsumer(t, ctx, js, ver.Stream, "tally", batches*size)
			if tally != batches*size {
				t.Fatalf("tally saw %d rows, want %d", tally, batches*size)
			}
			// The logger acks after its insert: once its consumer holds
			// nothing, every row is in the log.
			cons, err := js.Consumer(ctx, ver.Stream, pipeline.StageLogger)
			if err != nil {
				t.Fatal(err)
			}
			pollCmd(t, ctx, "the logger to ack every batch", func() bool {
				info, err := cons.Info(ctx)
				return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == uint64(batches)
			})
			stop() // one embedded log per process: close the stage's first
			store, err := tracelog.Open(ctx, logCfg)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			res, err := store.Query(ctx, "SELECT count(), uniqExact(trajectory_id), max(labeled) FROM trajectories_dedup WHERE run_id = ?", cfg.Run)
			if err != nil {
				t.Fatal(err)
			}
			if r := res.Rows[0]; r[0] != uint64(batches*size) || r[1] != uint64(batches*size) || r[2] != uint64(0) {
				t.Fatalf("log holds count, distinct ids, max(labeled) = %v; want %d, %d, 0", r, batches*size, batches*size)
			}
		})
	}
}

// startStage runs `wsgrpo stage name` in the background; the returned
// function (also run at cleanup) stops it and checks its error.
func startStage(t *testing.T, ctx context.Context, cfg Config, name string) func() {
	t.Helper()
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runStage(sctx, cfg, slog.New(slog.DiscardHandler), name, "") }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("stage %s: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// drainConsumer fetches from the durable consumer until it has seen want
// distinct row ids or ctx ends, acking each message, and returns the count.
func drainConsumer(t *testing.T, ctx context.Context, js jetstream.JetStream, stream, consumer string, want int) int {
	t.Helper()
	c, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < want && ctx.Err() == nil {
		for _, id := range fetchRowIDs(t, c, schemas.KindVerified) {
			seen[id] = true
		}
	}
	return len(seen)
}

// fetchRowIDs pulls up to 8 messages of kind from c (waiting at most
// 200 ms), acks them and returns the row ids they carried.
func fetchRowIDs(t *testing.T, c jetstream.Consumer, kind schemas.Kind) []string {
	t.Helper()
	msgs, err := c.Fetch(8, jetstream.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for m := range msgs.Messages() {
		rec, err := schemas.Decode(kind, m.Data(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := schemas.RowIDs(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ids...)
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// pollCmd checks cond every 20 ms until it holds or ctx ends.
func pollCmd(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
