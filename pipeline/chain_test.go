package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgrpo/wsgrpo/schemas"
)

// TestChainExactlyOnce pushes 10,000 prompt batches through the three
// pass-through hops with three workers per hop, each worker on its own
// connection, and checks that every row reaches the learner sink, none twice
// after de-duplication by id and none missing. Under the race detector,
// which slows every hop several times over, it pushes 2,000: the race
// detector looks for races, which the smaller run exercises the same way.
func TestChainExactlyOnce(t *testing.T) {
	const rowsPer, workers = 2, 3
	batches := 10000
	if raceEnabled {
		batches = 2000
	}
	if testing.Short() {
		t.Skip("long chain test skipped in -short mode")
	}
	mem := newChecked(t)
	srv := startServer(t, false)
	var conns []jetstream.JetStream
	for range 4 {
		conns = append(conns, connectJS(t, srv))
	}
	top := ensureRun(t, conns[0], "chain", jetstream.MemoryStorage)

	recs := make([]arrow.RecordBatch, batches)
	for b := range recs {
		recs[b] = schemas.NewPromptBatch(mem, promptRows(top.Run, b, rowsPer))
	}
	publishRecs(t, conns[0], mustHop(t, top, schemas.KindPrompt).Subject, recs)
	for _, r := range recs {
		r.Release()
	}

	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	sink, stop := startChain(t, conns, top, mem, workers, m)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sink holds %d distinct rows of %d", sink.distinct(), sink.total)
			sink.mu.Lock()
			shown := 0
			for id, n := range sink.seen {
				if n > 1 && shown < 5 {
					t.Logf("  row %q seen %d times", id, n)
					shown++
				}
			}
			shown = 0
			for _, b := range sink.batches {
				if len(b) != rowsPer || (shown < 5 && strings.Split(b[0], "-")[0] != strings.Split(b[1], "-")[0]) {
					t.Logf("  odd batch %q", b)
					shown++
				}
			}
			sink.mu.Unlock()
			dumpConsumers(t, conns[0], top)
			for b := range batches {
				for i := range rowsPer {
					if id := schemas.TrajectoryID(top.Run, int64(b), fmt.Sprintf("p%d-%d", b, i), 0); !sink.has(id) && shown < 10 {
						t.Logf("  missing %s", id)
						shown++
					}
				}
			}
			dls, err := ReadDeadLetters(context.Background(), conns[0], top, 5)
			t.Logf("dead letters (first 5, err %v):", err)
			for _, d := range dls {
				t.Logf("  %s stage=%s seq=%d deliveries=%d: %s", d.Reason, d.Stage, d.Sequence, d.Deliveries, d.Error)
			}
		}
	})
	waitFor(t, 2*time.Minute, "all rows at the sink", func() bool { return sink.distinct() >= batches*rowsPer })
	stop()

	if got := sink.distinct(); got != batches*rowsPer {
		t.Fatalf("distinct rows at sink = %d, want %d", got, batches*rowsPer)
	}
	for b := range batches {
		for i := range rowsPer {
			id := schemas.TrajectoryID(top.Run, int64(b), fmt.Sprintf("p%d-%d", b, i), 0)
			if !sink.has(id) {
				t.Fatalf("row %s missing", id)
			}
		}
	}
	if dup := sink.total - sink.distinct(); dup > 0 {
		t.Logf("%d duplicate deliveries removed by id", dup)
	}
	for _, st := range []string{StageSampler, StageVerifier, StageLabeler} {
		if got := metricValue(t, m.Rows.WithLabelValues(st, "out")); got < float64(batches*rowsPer) {
			t.Errorf("stage %s rows out = %v, want >= %d", st, got, batches*rowsPer)
		}
	}
	dls, err := ReadDeadLetters(context.Background(), conns[0], top, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 0 {
		t.Fatalf("%d dead letters in a clean run, first: %+v", len(dls), dls[0].Reason)
	}
	// The work-queue streams are drained: every batch was acknowledged.
	for _, k := range []schemas.Kind{schemas.KindPrompt, schemas.KindRollout, schemas.KindVerified} {
		s, err := conns[0].Stream(context.Background(), mustHop(t, top, k).Stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 0 {
			t.Errorf("stream %s still holds %d messages", info.Config.Name, info.State.Msgs)
		}
	}
}

// TestRunIsolation runs two chains with different run ids on one server:
// neither sink may see a row of the other run.
func TestRunIsolation(t *testing.T) {
	const batches = 200
	mem := newChecked(t)
	srv := startServer(t, false)
	js := connectJS(t, srv)
	runs := []string{"iso-a", "iso_b"}
	sinks := map[string]*collector{}
	for _, run := range runs {
		top := ensureRun(t, js, run, jetstream.FileStorage)
		recs := make([]arrow.RecordBatch, batches)
		for b := range recs {
			recs[b] = schemas.NewPromptBatch(mem, promptRows(run, b, 1))
		}
		publishRecs(t, js, mustHop(t, top, schemas.KindPrompt).Subject, recs)
		for _, r := range recs {
			r.Release()
		}
		sink, _ := startChain(t, []jetstream.JetStream{js}, top, mem, 1, nil)
		sinks[run] = sink
	}
	for _, run := range runs {
		waitFor(t, time.Minute, "rows of "+run, func() bool { return sinks[run].distinct() >= batches })
	}
	for _, run := range runs {
		s := sinks[run]
		s.mu.Lock()
		for id := range s.seen {
			if !strings.HasPrefix(id, run+"/") {
				t.Errorf("sink of run %s saw row %s", run, id)
			}
		}
		if len(s.seen) != batches {
			t.Errorf("run %s: %d distinct rows, want %d", run, len(s.seen), batches)
		}
		s.mu.Unlock()
	}
}

func mustHop(t testing.TB, top Topology, k schemas.Kind) Hop {
	t.Helper()
	h, err := top.Hop(k)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// dumpConsumers logs the state of every consumer of the run's hops.
func dumpConsumers(t testing.TB, js jetstream.JetStream, top Topology) {
	t.Helper()
	ctx := context.Background()
	for _, h := range top.Hops() {
		s, err := js.Stream(ctx, h.Stream)
		if err != nil {
			t.Logf("stream %s: %v", h.Stream, err)
			continue
		}
		si, _ := s.Info(ctx)
		if si != nil {
			t.Logf("stream %s: msgs=%d first=%d last=%d", h.Stream, si.State.Msgs, si.State.FirstSeq, si.State.LastSeq)
		}
		for name := range s.ConsumerNames(ctx).Name() {
			c, err := s.Consumer(ctx, name)
			if err != nil {
				continue
			}
			ci, err := c.Info(ctx)
			if err != nil {
				continue
			}
			t.Logf("  consumer %s: pending=%d ack_pending=%d redelivered=%d waiting=%d delivered=%d ack_floor=%d",
				name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.Delivered.Stream, ci.AckFloor.Stream)
		}
	}
}
