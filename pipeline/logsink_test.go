package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/logger"
	"github.com/wsgrpo/wsgrpo/stages/stage"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// rowCounter is a sink that records every row id it receives.
type rowCounter struct {
	mu   sync.Mutex
	seen map[string]int
}

// Process records the row ids of in.
func (c *rowCounter) Process(_ context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	ids, err := schemas.RowIDs(in)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", stage.ErrPermanent, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		c.seen[id]++
	}
	return nil, nil
}

func (c *rowCounter) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// openMigrated opens and migrates a fresh store of backend b, closed at
// cleanup.
func openMigrated(t *testing.T, ctx context.Context, b chtest.Backend) tracelog.Store {
	t.Helper()
	cfg, _ := b.Open(t)
	store, err := tracelog.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return store
}

// runSink runs proc under cfg (with fast test settings) until the test
// ends.
func runSink(t *testing.T, js jetstream.JetStream, cfg pipeline.RunnerConfig, proc stage.Processor) {
	t.Helper()
	cfg.FetchSize = 4
	cfg.FetchWait = 200 * time.Millisecond
	cfg.BackoffMin = 20 * time.Millisecond
	cfg.BackoffMax = 200 * time.Millisecond
	cfg.LagInterval = 100 * time.Millisecond
	r, err := pipeline.NewRunner(js, cfg, proc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner %s: %v", cfg.Stage, err)
		}
	})
}

// sinkBatches builds n batches of size rows of kind (labeled or verified)
// of run, with distinct trajectory ids.
func sinkBatches(mem memory.Allocator, kind schemas.Kind, run string, n, size int) []arrow.RecordBatch {
	rows := logstore.SyntheticRows(run, n*size, 16, 7)
	out := make([]arrow.RecordBatch, n)
	for i := range out {
		ls := make([]schemas.Labeled, size)
		vs := make([]schemas.Verified, size)
		for j := range ls {
			ls[j] = rows[i*size+j].LabeledRow()
			vs[j] = ls[j].Verified
		}
		if kind == schemas.KindVerified {
			out[i] = schemas.NewVerifiedBatch(mem, vs)
		} else {
			out[i] = schemas.NewLabeledBatch(mem, ls)
		}
	}
	return out
}

// TestLoggerSinkLayouts runs the real logger stage, through the runner,
// on the last hop of a run with a labeler (labeled batches) and of one
// without (verified batches, e.g. an eval run), next to another consumer
// of that hop (the learner, or an eval tally). Every row must land in the
// trajectory log once, flagged labeled or not as it came, and the other
// consumer must still see every row: the two do not compete.
func TestLoggerSinkLayouts(t *testing.T) {
	const batches, size = 12, 16
	for _, b := range chtest.Backends() {
		for _, tc := range []struct {
			name      string
			noLabeler bool
			other     string       // the other consumer of the last hop
			kind      schemas.Kind // what the last hop carries
			labeled   uint64       // the log's labeled flag for these rows
		}{
			{"with labeler", false, pipeline.StageLearner, schemas.KindLabeled, 1},
			{"without labeler", true, "tally", schemas.KindVerified, 0},
		} {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				t.Cleanup(cancel)
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				t.Cleanup(func() { mem.AssertSize(t, 0) })
				js := pipetest.JetStream(t)
				store := openMigrated(t, ctx, b)

				run := "sink-" + map[bool]string{false: "lab", true: "eval"}[tc.noLabeler]
				top, err := pipeline.NewTopology(run)
				if err != nil {
					t.Fatal(err)
				}
				top.NoLabeler = tc.noLabeler
				if tc.noLabeler {
					top.VerifiedConsumers = []string{pipeline.StageLogger, tc.other}
				}
				if err := top.Ensure(ctx, js); err != nil {
					t.Fatal(err)
				}
				// Publish before any runner starts: the consumers Ensure made
				// hold every batch for their stages.
				hop, err := top.Hop(tc.kind)
				if err != nil {
					t.Fatal(err)
				}
				for i, rec := range sinkBatches(mem, tc.kind, run, batches, size) {
					_, err := pipeline.PublishBatch(ctx, js, hop.Subject, rec, fmt.Sprint(run, "-", i), 0)
					rec.Release()
					if err != nil {
						t.Fatal(err)
					}
				}

				lc, err := top.RunnerConfig(pipeline.StageLogger)
				if err != nil {
					t.Fatal(err)
				}
				if lc.InputKind != tc.kind || lc.Stream != hop.Stream {
					t.Fatalf("logger reads %s from %s, want %s from %s", lc.InputKind, lc.Stream, tc.kind, hop.Stream)
				}
				lc.Allocator, lc.Concurrency = mem, 2
				runSink(t, js, lc, logger.New(store, logger.Options{}))
				oc, err := top.SinkRunnerConfig(tc.other)
				if err != nil {
					t.Fatal(err)
				}
				oc.Allocator = mem
				other := &rowCounter{seen: map[string]int{}}
				runSink(t, js, oc, other)

				want := batches * size
				poll(t, ctx, "every row logged and seen by "+tc.other, func() (bool, error) {
					n, err := store.Count(ctx, run)
					return n == int64(want) && other.distinct() == want, err
				})
				res, err := store.Query(ctx, "SELECT count(), uniqExact(trajectory_id), min(labeled), max(labeled) FROM trajectories_dedup WHERE run_id = ?", run)
				if err != nil {
					t.Fatal(err)
				}
				if r := res.Rows[0]; r[0] != uint64(want) || r[1] != uint64(want) || r[2] != tc.labeled || r[3] != tc.labeled {
					t.Fatalf("log holds count, distinct ids, min/max labeled = %v; want %d, %d, %d, %d", r, want, want, tc.labeled, tc.labeled)
				}
				// Acked by every consumer, the batches leave the stream.
				s, err := js.Stream(ctx, hop.Stream)
				if err != nil {
					t.Fatal(err)
				}
				poll(t, ctx, "the stream to drop batches both sinks acked", func() (bool, error) {
					info, err := s.Info(ctx)
					return err == nil && info.State.Msgs == 0, nil
				})
				dead, err := pipeline.ReadDeadLetters(ctx, js, top, 0)
				if err != nil || len(dead) != 0 {
					t.Fatalf("dead letters: %d, %v", len(dead), err)
				}
			})
		}
	}
}

// TestSinkRunnerConfig checks the sink consumers a runner may join.
func TestSinkRunnerConfig(t *testing.T) {
	eval := pipeline.Topology{Run: "eval", NoLabeler: true}
	tally := eval
	tally.VerifiedConsumers = []string{pipeline.StageLogger, "tally"}
	for _, tc := range []struct {
		name     string
		top      pipeline.Topology
		consumer string
		kind     schemas.Kind // "" when an error is wanted
		want     error
	}{
		{"learner of a labeler run", pipeline.Topology{Run: "r"}, pipeline.StageLearner, schemas.KindLabeled, nil},
		{"logger of an eval run", eval, pipeline.StageLogger, schemas.KindVerified, nil},
		{"tally of an eval run", tally, "tally", schemas.KindVerified, nil},
		{"tally not made by Ensure", eval, "tally", "", pipeline.ErrInvalidConfig},
		{"learner of an eval run", eval, pipeline.StageLearner, "", pipeline.ErrInvalidConfig},
		{"labeled consumers on an eval run", pipeline.Topology{Run: "e", NoLabeler: true, LabeledConsumers: []string{"x"}}, "x", "", pipeline.ErrNoLabeler},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := tc.top.SinkRunnerConfig(tc.consumer)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("SinkRunnerConfig(%s) = %+v, %v; want %v", tc.consumer, rc, err, tc.want)
				}
				return
			}
			if err != nil || rc.InputKind != tc.kind || rc.Consumer != tc.consumer || rc.OutputSubject != "" {
				t.Fatalf("SinkRunnerConfig(%s) = %+v, %v", tc.consumer, rc, err)
			}
		})
	}
}

// poll calls cond every 20 ms until it holds, fails, or ctx ends.
func poll(t *testing.T, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
