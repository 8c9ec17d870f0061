package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/passthrough"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// deferCall is one Process call of a deferringProcessor.
type deferCall struct {
	firstID string
	ack     stage.Ack
}

// deferringProcessor passes batches through and defers each one's
// acknowledgement, recording its Ack. With early set it calls the Ack
// with early's value inside Process.
type deferringProcessor struct {
	next  stage.Processor
	early *error

	mu    sync.Mutex
	calls []deferCall
}

func (p *deferringProcessor) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	ack, ok := stage.Defer(ctx)
	if !ok {
		return nil, fmt.Errorf("%w: the runner offers no deferral", stage.ErrPermanent)
	}
	ids, err := schemas.RowIDs(in)
	if err != nil {
		return nil, err
	}
	if p.early != nil {
		ack(*p.early)
	}
	p.mu.Lock()
	p.calls = append(p.calls, deferCall{firstID: ids[0], ack: ack})
	p.mu.Unlock()
	return p.next.Process(ctx, in)
}

// n returns the number of Process calls so far.
func (p *deferringProcessor) n() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

// call returns the i-th Process call.
func (p *deferringProcessor) call(i int) deferCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[i]
}

// deferSetup is a run with batches rollout batches published and a
// verifier configuration with fast settings.
type deferSetup struct {
	js   jetstream.JetStream
	top  Topology
	cfg  RunnerConfig
	next stage.Processor
}

func newDeferSetup(t *testing.T, run string, batches int) deferSetup {
	t.Helper()
	mem := newChecked(t)
	srv := startServer(t, false)
	s := deferSetup{js: connectJS(t, srv)}
	s.top = ensureRun(t, s.js, run, jetstream.MemoryStorage)
	recs := make([]arrow.RecordBatch, batches)
	for i := range recs {
		recs[i] = schemas.NewRolloutBatch(mem, rolloutRows(s.top.Run, i, 2, 8))
	}
	publishRecs(t, s.js, mustHop(t, s.top, schemas.KindRollout).Subject, recs)
	releaseAll(recs)
	var err error
	if s.cfg, err = verifierConfig(s.top, mem); err != nil {
		t.Fatal(err)
	}
	s.cfg.MaxDeliver = 3
	s.cfg.BackoffMin, s.cfg.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	if s.next, err = passthrough.New(schemas.KindRollout, schemas.KindVerified, mem); err != nil {
		t.Fatal(err)
	}
	return s
}

// rolloutsLeft returns the number of messages in the rollout work queue
// (an acknowledged message leaves it).
func (s deferSetup) rolloutsLeft(t testing.TB) uint64 {
	t.Helper()
	return streamMsgs(t, s.js, mustHop(t, s.top, schemas.KindRollout).Stream)
}

// TestDeferredHeldUntilAck defers three batches on one worker: the worker
// keeps fetching while the earlier ones wait, their outputs are published
// at once, the heartbeat keeps them from being redelivered well past
// AckWait, and Ack(nil) acknowledges them.
func TestDeferredHeldUntilAck(t *testing.T) {
	const batches = 3
	s := newDeferSetup(t, "deferheld", batches)
	sink := sinkFor(t, s.js, s.top, s.cfg.Allocator)
	// AckWait is the time the heartbeat (every AckWait/3) has to reach the
	// server: 300 ms was seen missed once on a loaded 2-core CI machine,
	// and the batch was redelivered.
	s.cfg.AckWait = time.Second
	p := &deferringProcessor{next: s.next}
	r, _ := startRunner(t, s.js, s.cfg, p)
	m := r.Config().Metrics
	waitFor(t, 30*time.Second, "every batch processed and its outputs published", func() bool {
		return p.n() == batches && sink.distinct() == 2*batches
	})
	held := time.Now()
	waitFor(t, 30*time.Second, "four AckWaits with the batches deferred", func() bool {
		return time.Since(held) > 4*s.cfg.AckWait
	})
	if got := p.n(); got != batches {
		t.Fatalf("%d Process calls while the batches were deferred, want %d (a deferred batch was redelivered)", got, batches)
	}
	if got := s.rolloutsLeft(t); got != batches {
		t.Fatalf("%d rollout messages left before the Acks, want %d", got, batches)
	}
	if got := metricValue(t, m.Deferred.WithLabelValues(StageVerifier)); got != batches {
		t.Errorf("deferred gauge %v, want %d", got, batches)
	}
	for i := range batches {
		p.call(i).ack(nil)
	}
	waitFor(t, 30*time.Second, "the work queue to drain", func() bool { return s.rolloutsLeft(t) == 0 })
	if got := metricValue(t, m.Redelivered.WithLabelValues(StageVerifier)); got != 0 {
		t.Errorf("%v redeliveries, want 0", got)
	}
	if got := metricValue(t, m.Batches.WithLabelValues(StageVerifier, "ok")); got != batches {
		t.Errorf("%v batches ok, want %d", got, batches)
	}
	if got := metricValue(t, m.Deferred.WithLabelValues(StageVerifier)); got != 0 {
		t.Errorf("deferred gauge %v after the Acks, want 0", got)
	}
}

// TestDeferredAckOutcomes checks what each Ack argument does to a deferred
// batch, and that a second Ack (here with a permanent error, which would
// dead-letter the batch if it counted) is ignored.
func TestDeferredAckOutcomes(t *testing.T) {
	early := error(nil)
	for _, tc := range []struct {
		name      string
		err       error
		early     *error // Ack(*early) inside Process instead of err afterwards
		redeliver bool   // the batch comes back; the test acks it then
		dlClass   stage.Class
	}{
		{name: "nil acknowledges", err: nil},
		{name: "nil inside Process acknowledges", early: &early},
		{name: "transient is redelivered", err: errors.New("optimizer busy"), redeliver: true},
		{name: "unavailable is redelivered", err: fmt.Errorf("checkpoint store: %w", stage.ErrUnavailable), redeliver: true},
		{name: "permanent is dead-lettered", err: fmt.Errorf("nan loss: %w", stage.ErrPermanent), dlClass: stage.ClassPermanent},
		{name: "invalid is dead-lettered", err: fmt.Errorf("row 1: %w", schemas.ErrInvalid), dlClass: stage.ClassInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newDeferSetup(t, "deferack", 1)
			p := &deferringProcessor{next: s.next, early: tc.early}
			r, _ := startRunner(t, s.js, s.cfg, p)
			waitFor(t, 30*time.Second, "the batch processed", func() bool { return p.n() == 1 })
			first := p.call(0).ack
			if tc.early == nil {
				first(tc.err)
			}
			if tc.redeliver {
				waitFor(t, 30*time.Second, "the redelivery", func() bool { return p.n() == 2 })
				p.call(1).ack(nil)
			}
			waitFor(t, 30*time.Second, "the work queue to drain", func() bool { return s.rolloutsLeft(t) == 0 })
			first(fmt.Errorf("second ack: %w", stage.ErrPermanent))
			var dls []DeadLetter
			waitFor(t, 30*time.Second, "the dead letters", func() bool {
				var err error
				dls, err = ReadDeadLetters(context.Background(), s.js, s.top, 0)
				return err == nil && (tc.dlClass == "" || len(dls) > 0)
			})
			switch {
			case tc.dlClass == "" && len(dls) != 0:
				t.Errorf("dead letters %+v, want none", dls)
			case tc.dlClass != "" && (len(dls) != 1 || dls[0].Class != tc.dlClass || dls[0].Reason != ReasonPermanentError):
				t.Errorf("dead letters %+v, want one of class %q", dls, tc.dlClass)
			}
			want := 1
			if tc.redeliver {
				want = 2
			}
			if got := p.n(); got != want {
				t.Errorf("%d Process calls, want %d", got, want)
			}
			m := r.Config().Metrics
			if got := metricValue(t, m.Deferred.WithLabelValues(StageVerifier)); got != 0 {
				t.Errorf("deferred gauge %v, want 0", got)
			}
		})
	}
}

// TestDeferredHandedBackAtShutdown stops a runner holding deferred batches:
// they are handed back and a new runner gets every one of them, and the
// old Acks, called after the stop, are no-ops. On its last allowed
// delivery a batch handed back goes to the dead-letter stream instead.
func TestDeferredHandedBackAtShutdown(t *testing.T) {
	const batches = 4
	for _, tc := range []struct {
		name       string
		maxDeliver int
		redeliver  bool
	}{
		{"redelivered", 3, true},
		{"dead-lettered on the last delivery", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newDeferSetup(t, "deferstop", batches)
			s.cfg.FetchSize, s.cfg.MaxDeliver = 2, tc.maxDeliver
			p := &deferringProcessor{next: s.next}
			r, stop := startRunner(t, s.js, s.cfg, p)
			waitFor(t, 30*time.Second, "every batch processed", func() bool { return p.n() == batches })
			stop()
			m := r.Config().Metrics
			if got := metricValue(t, m.Deferred.WithLabelValues(StageVerifier)); got != 0 {
				t.Errorf("deferred gauge %v after the stop, want 0", got)
			}
			for i := range batches {
				p.call(i).ack(fmt.Errorf("late: %w", stage.ErrPermanent))
			}
			if !tc.redeliver {
				var dls []DeadLetter
				waitFor(t, 30*time.Second, "the dead letters", func() bool {
					var err error
					dls, err = ReadDeadLetters(context.Background(), s.js, s.top, 0)
					return err == nil && len(dls) >= batches
				})
				for _, d := range dls {
					if d.Reason != ReasonMaxDeliveries || d.Class != stage.ClassTransient {
						t.Errorf("dead letter %s/%s, want %s/%s", d.Reason, d.Class, ReasonMaxDeliveries, stage.ClassTransient)
					}
				}
				// The runner terminates each message after its dead letter
				// is stored: wait for the last terminations.
				waitFor(t, 30*time.Second, "the work queue to drain", func() bool { return s.rolloutsLeft(t) == 0 })
				return
			}
			if got := metricValue(t, m.Batches.WithLabelValues(StageVerifier, "shutdown")); got != batches {
				t.Errorf("%v batches handed back at shutdown, want %d", got, batches)
			}
			again := &deferringProcessor{next: s.next}
			startRunner(t, s.js, s.cfg, again)
			waitFor(t, 30*time.Second, "every batch redelivered", func() bool { return again.n() == batches })
			ids := map[string]bool{}
			for i := range batches {
				ids[again.call(i).firstID] = true
			}
			for i := range batches {
				if id := p.call(i).firstID; !ids[id] {
					t.Errorf("batch %s was not redelivered", id)
				}
			}
			for i := range batches {
				again.call(i).ack(nil)
			}
			waitFor(t, 30*time.Second, "the work queue to drain", func() bool { return s.rolloutsLeft(t) == 0 })
			if dls, err := ReadDeadLetters(context.Background(), s.js, s.top, 0); err != nil || len(dls) != 0 {
				t.Errorf("dead letters %v (err %v), want none", dls, err)
			}
		})
	}
}
