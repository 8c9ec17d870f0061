package logger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/logger"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// waitUntil polls cond every 50 ms until it holds or limit passes.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// outageStore opens and migrates a log on a ClickHouse server this test
// starts (so that it can stop it), closed at cleanup; it skips the test
// when the server is external.
func outageStore(t *testing.T) (tracelog.Store, *chtest.Server) {
	t.Helper()
	cfg, srv := chtest.Backends()[0].Open(t)
	if srv.External() {
		t.Skip("outage test needs a server this test starts (" + chtest.EnvDSN + " is set)")
	}
	store, err := tracelog.Open(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	return store, srv
}

// TestRunnerHoldsBacklogThroughOutage runs the logger stage as `wsgrpo
// stage logger` does (a runner on the labeled stream of an embedded NATS
// server) against a real ClickHouse server that is killed in the middle of
// the run. The outage lasts longer than MaxDeliver tries and AckWait; when
// the server returns, the backlog drains and every row is in the log once,
// with no dead letter.
func TestRunnerHoldsBacklogThroughOutage(t *testing.T) {
	store, srv := outageStore(t)
	js := pipetest.JetStream(t)
	top, err := pipeline.NewTopology("outage")
	if err != nil {
		t.Fatal(err)
	}
	// Only the logger consumes the labeled stream in this test.
	top.LabeledConsumers = []string{pipeline.StageLogger}
	if err := top.Ensure(ctx(t), js); err != nil {
		t.Fatal(err)
	}
	rc, err := top.RunnerConfig(pipeline.StageLogger)
	if err != nil {
		t.Fatal(err)
	}
	rc.Concurrency = 2
	rc.MaxDeliver, rc.AckWait = 2, time.Second
	rc.BackoffMin, rc.BackoffMax = 10*time.Millisecond, 100*time.Millisecond
	r, err := pipeline.NewRunner(js, rc, logger.New(store, logger.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	})

	hop, err := top.Hop(schemas.KindLabeled)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewGoAllocator()
	publish := func(b int) {
		rows := labeledRows(top.Run, 8)
		for i := range rows {
			rows[i].Step = int64(b)
			rows[i].TrajectoryID = fmt.Sprintf("t-%d-%d", b, i)
		}
		rec := schemas.NewLabeledBatch(mem, rows)
		defer rec.Release()
		if _, err := pipeline.PublishBatch(ctx(t), js, hop.Subject, rec, fmt.Sprintf("batch-%d", b), 0); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int64 {
		n, err := store.Count(ctx(t), top.Run)
		if err != nil {
			return -1
		}
		return int64(n)
	}

	publish(0)
	waitUntil(t, 30*time.Second, "the first batch in the log", func() bool { return count() == 8 })
	srv.Stop(t)
	for b := 1; b <= 4; b++ {
		publish(b)
	}
	unavailable := r.Config().Metrics.Errors.WithLabelValues(pipeline.StageLogger, "unavailable")
	// Keep the server down for well over MaxDeliver tries per batch and
	// over AckWait.
	waitUntil(t, 30*time.Second, "the logger to retry through the outage", func() bool { return counter(t, unavailable) >= 20 })
	time.Sleep(rc.AckWait + rc.AckWait/2)
	srv.Restart(t)
	waitUntil(t, time.Minute, "the backlog to drain into the log", func() bool { return count() == 40 })

	dls, err := pipeline.ReadDeadLetters(ctx(t), js, top, 0)
	if err != nil || len(dls) != 0 {
		t.Fatalf("dead letters %v (err %v), want none", dls, err)
	}
	if n := count(); n != 40 {
		t.Fatalf("log holds %d rows, want 40", n)
	}
	if got := counter(t, r.Config().Metrics.Redelivered.WithLabelValues(pipeline.StageLogger)); got != 0 {
		t.Errorf("%v redeliveries during the outage, want 0 (batches held, heartbeats sent)", got)
	}
}
