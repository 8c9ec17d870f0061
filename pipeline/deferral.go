package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// Deferred acknowledgement (stage.Defer) on the runner's side.
//
// Every call of Process gets a deferral of its own in its context. When the
// processor calls stage.Defer and Process returns nil, the runner publishes
// the outputs as usual and then arms the deferral instead of acknowledging
// the input: the message joins the runner's deferred set, whose heartbeat
// keeps it in progress, and the worker moves on to other messages. The
// first call of the stage.Ack finishes it:
//
//   - Ack(nil) acknowledges the message (double ack, as after Process).
//   - Ack(err) is handled as a Process error of err's class: invalid and
//     permanent errors dead-letter the message; transient errors nak it
//     with backoff (a dead letter on its last allowed delivery). An
//     unavailable error cannot be held and retried in place, since
//     Process has already run: it degrades to a nak with backoff like a
//     transient error.
//
// An Ack called while Process still runs takes effect once the outputs are
// published. A deferral is void when Process returns an error, when its
// outputs cannot be published, or when the processor did not call Defer:
// its Ack is then a no-op. Later calls of an Ack are no-ops too.
//
// An Ack applies its outcome before it returns: it blocks its caller for
// the acknowledgement's round trip (at most PublishWait).
//
// At shutdown, once the workers have stopped, the runner naks every
// deferred message still waiting for its Ack, so that the stream redelivers
// it at once (to a new runner; the delivery counts toward MaxDeliver, as a
// redelivery after a crash does, and one on its last allowed delivery is
// dead-lettered, as any batch handed back at shutdown is); an Ack called
// after that is a no-op.

// errDeferredAtShutdown is the cause recorded when a deferred batch handed
// back at shutdown was on its last allowed delivery.
var errDeferredAtShutdown = errors.New("handed back at shutdown while its acknowledgement was deferred")

// deferState is where a deferral stands.
type deferState int

const (
	deferOpen   deferState = iota // Process is running
	deferArmed                    // outputs published; waiting for the Ack
	deferClosed                   // finished, void, or handed back at shutdown
)

// deferral is one Process call's deferred acknowledgement.
type deferral struct {
	r         *Runner
	ctx, hard context.Context // the runner's contexts (see Runner.handle)
	m         jetstream.Msg
	md        *jetstream.MsgMetadata
	log       *slog.Logger
	start     time.Time

	mu        sync.Mutex
	state     deferState
	requested bool  // the processor called stage.Defer
	early     bool  // Ack was called while Process ran
	earlyErr  error // its argument
	rowsIn    int64
	rowsOut   int64
}

func (r *Runner) newDeferral(ctx, hard context.Context, m jetstream.Msg, md *jetstream.MsgMetadata, start time.Time, log *slog.Logger) *deferral {
	return &deferral{r: r, ctx: ctx, hard: hard, m: m, md: md, log: log, start: start}
}

// processCtx returns the context Process gets: hard carrying the hook.
func (d *deferral) processCtx() context.Context {
	return stage.WithDeferral(d.hard, d.hook)
}

// hook is what stage.Defer calls.
func (d *deferral) hook() stage.Ack {
	d.mu.Lock()
	if d.state == deferOpen {
		d.requested = true
	}
	d.mu.Unlock()
	return d.ack
}

// wasRequested reports whether the processor called stage.Defer.
func (d *deferral) wasRequested() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requested
}

// void closes a deferral that was not armed, without acting: Process
// failed, its outputs could not be published, or the runner finished the
// message itself. It is a no-op once the deferral is armed.
func (d *deferral) void() {
	d.mu.Lock()
	if d.state == deferOpen {
		d.state = deferClosed
	}
	d.mu.Unlock()
}

// arm moves a requested deferral whose outputs are published into the
// runner's deferred set, or finishes it at once when its Ack came early.
func (d *deferral) arm(rowsIn, rowsOut int64) {
	d.mu.Lock()
	d.rowsIn, d.rowsOut = rowsIn, rowsOut
	d.r.deferred.add(d)
	if d.early {
		d.state = deferClosed
		err := d.earlyErr
		d.mu.Unlock()
		d.finish(err)
		return
	}
	d.state = deferArmed
	d.mu.Unlock()
	d.log.Debug("input acknowledgement deferred")
}

// ack is the stage.Ack handed to the processor.
func (d *deferral) ack(err error) {
	d.mu.Lock()
	switch {
	case d.state == deferOpen && d.requested && !d.early:
		d.early, d.earlyErr = true, err
		d.mu.Unlock()
	case d.state == deferArmed:
		d.state = deferClosed
		d.mu.Unlock()
		d.finish(err)
	default:
		d.mu.Unlock()
		d.log.Debug("deferred ack ignored: already acknowledged, void, or the runner stopped", "err", err)
	}
}

// handBack naks an armed deferral at shutdown; it reports whether it did.
func (d *deferral) handBack() bool {
	d.mu.Lock()
	if d.state != deferArmed {
		d.mu.Unlock()
		return false
	}
	d.state = deferClosed
	d.mu.Unlock()
	defer d.r.deferred.remove(d)
	// retry naks it (ctx is done), or dead-letters it on its last allowed
	// delivery rather than leave it to the next runner's check past
	// MaxDeliver.
	d.r.retry(d.ctx, d.m, d.md, errDeferredAtShutdown, d.log)
	d.log.Info("deferred batch handed back at shutdown")
	return true
}

// finish applies the Ack's argument: acknowledge, or fail by its class.
func (d *deferral) finish(err error) {
	r := d.r
	defer r.deferred.remove(d)
	if err != nil {
		r.failed(d.ctx, d.hard, d.m, d.md, err, d.log)
		return
	}
	r.ack(d.ctx, d.m, d.rowsIn, d.rowsOut, d.start, d.log)
}

// deferredSet holds a runner's armed deferrals: its heartbeat keeps their
// messages in progress, and close hands them back at shutdown.
type deferredSet struct {
	held    *held
	gauge   func(delta float64)
	mu      sync.Mutex
	live    map[*deferral]struct{}
	pending sync.WaitGroup // one per deferral between add and remove
}

func newDeferredSet(log *slog.Logger, gauge func(float64)) *deferredSet {
	return &deferredSet{held: newHeld(log), gauge: gauge, live: map[*deferral]struct{}{}}
}

func (s *deferredSet) add(d *deferral) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live[d] = struct{}{}
	s.pending.Add(1)
	s.held.add(d.m)
	s.gauge(1)
}

func (s *deferredSet) remove(d *deferral) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[d]; !ok {
		return
	}
	delete(s.live, d)
	s.held.remove(d.m)
	s.gauge(-1)
	s.pending.Done()
}

// close hands back every deferral still waiting for its Ack and waits for
// the Acks already being applied. Call it after the workers stopped.
func (s *deferredSet) close() int {
	s.mu.Lock()
	ds := make([]*deferral, 0, len(s.live))
	for d := range s.live {
		ds = append(ds, d)
	}
	s.mu.Unlock()
	n := 0
	for _, d := range ds {
		if d.handBack() {
			n++
		}
	}
	s.pending.Wait()
	return n
}
