package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// errUnresolved is the cause recorded when a batch arrives past its last
// allowed delivery.
var errUnresolved = errors.New("deliveries used up")

// handle takes one message through decode, process, publish and ack.
// ctx ending means shutdown; hard ending means the shutdown grace is over.
func (r *Runner) handle(ctx, hard context.Context, m jetstream.Msg, log *slog.Logger) {
	start := time.Now()
	name := r.cfg.Stage
	md, err := m.Metadata()
	if err != nil {
		// Not a JetStream delivery (cannot happen on a pull consumer); it
		// cannot be acked either, so there is nothing to hand back.
		r.cfg.Metrics.Errors.WithLabelValues(name, "invalid").Inc()
		log.Error("message without JetStream metadata", "subject", m.Subject(), "err", err)
		return
	}
	log = log.With("seq", md.Sequence.Stream, "delivery", md.NumDelivered)
	if md.NumDelivered > 1 {
		r.cfg.Metrics.Redelivered.WithLabelValues(name).Inc()
	}
	if md.NumDelivered > uint64(r.cfg.MaxDeliver) {
		// Its deliveries ran out without an outcome: the workers that
		// held it died or exceeded AckWait, or its dead letter could not
		// be stored. It is not processed again.
		r.cfg.Metrics.Errors.WithLabelValues(name, "max_deliveries").Inc()
		r.deadLetter(hard, m, md, ReasonMaxDeliveries, fmt.Errorf("%w: delivered %d times (MaxDeliver %d) without being acknowledged: its workers died or exceeded AckWait %s, or its dead letter could not be stored",
			errUnresolved, md.NumDelivered-1, r.cfg.MaxDeliver, r.cfg.AckWait), log)
		return
	}
	rec, err := schemas.Decode(r.cfg.InputKind, m.Data(), r.cfg.Allocator)
	if err != nil {
		r.cfg.Metrics.Errors.WithLabelValues(name, "invalid").Inc()
		r.deadLetter(hard, m, md, ReasonInvalidPayload, err, log)
		return
	}
	rowsIn := rec.NumRows()
	// Each call of Process gets a deferral of its own (deferral.go); one
	// that is not armed below is void.
	d := r.newDeferral(ctx, hard, m, md, start, log)
	defer func() { d.void() }()
	outs, err := r.process(d.processCtx(), rec)
	for attempt := uint64(1); stage.Classify(err) == stage.ClassUnavailable && ctx.Err() == nil && r.processorFull(err) == nil; attempt++ {
		// Hold the batch (the heartbeat keeps it from being redelivered)
		// and try again once the dependency may be back.
		releaseAll(outs)
		outs = nil
		r.cfg.Metrics.Errors.WithLabelValues(name, "unavailable").Inc()
		delay := r.backoff(attempt)
		log.Warn("a dependency is unavailable; holding the batch and retrying", "attempt", attempt, "delay", delay, "err", err)
		sleepCtx(ctx, delay)
		if ctx.Err() != nil {
			break
		}
		d.void()
		d = r.newDeferral(ctx, hard, m, md, start, log)
		outs, err = r.process(d.processCtx(), rec)
	}
	rec.Release()
	if err == nil {
		err = r.checkOutputs(outs)
	}
	if err != nil {
		releaseAll(outs)
		r.failed(ctx, hard, m, md, err, log)
		return
	}
	msgs, rowsOut, err := r.encodeOutputs(outs, md)
	releaseAll(outs)
	if err != nil {
		r.cfg.Metrics.Errors.WithLabelValues(name, "permanent").Inc()
		r.deadLetter(hard, m, md, ReasonPermanentError, err, log)
		return
	}
	if len(msgs) > 0 {
		pctx, cancel := context.WithTimeout(hard, r.cfg.PublishWait)
		dups, err := publishParts(pctx, r.js, msgs)
		cancel()
		if err != nil {
			r.cfg.Metrics.Errors.WithLabelValues(name, "publish").Inc()
			if full := r.jetStreamFull(err, msgBytes(msgs)); full != nil {
				r.handBackFull(m, full, log)
				return
			}
			r.retry(ctx, m, md, err, log.With("err", err))
			return
		}
		if dups > 0 {
			log.Debug("outputs were already stored (redelivery)", "duplicates", dups)
		}
		recycleMsgs(msgs)
	}
	if d.wasRequested() {
		// The processor deferred the acknowledgement: its Ack finishes
		// the message, from whichever goroutine calls it.
		d.arm(rowsIn, rowsOut)
		return
	}
	r.ack(ctx, m, rowsIn, rowsOut, start, log)
}

// ack acknowledges a message whose outputs are stored, and counts it.
func (r *Runner) ack(ctx context.Context, m jetstream.Msg, rowsIn, rowsOut int64, start time.Time, log *slog.Logger) {
	name := r.cfg.Stage
	// Outputs are stored: acknowledge even during shutdown, with a context
	// of its own, since the work is done.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.PublishWait)
	err := m.DoubleAck(actx)
	cancel()
	if err != nil {
		// The message will be redelivered; its outputs are de-duplicated
		// by their message ids.
		r.cfg.Metrics.Errors.WithLabelValues(name, "ack").Inc()
		log.Warn("ack failed; the batch will be redelivered and its outputs de-duplicated", "err", err)
		if full := r.jetStreamFull(err, -1); full != nil {
			r.halt(full)
		}
		return
	}
	r.cfg.Metrics.Batches.WithLabelValues(name, "ok").Inc()
	r.cfg.Metrics.Rows.WithLabelValues(name, "in").Add(float64(rowsIn))
	r.cfg.Metrics.Rows.WithLabelValues(name, "out").Add(float64(rowsOut))
	r.cfg.Metrics.Latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
}

// process calls the processor, turning a panic into a permanent error so
// that one bad batch cannot take the worker down.
func (r *Runner) process(ctx context.Context, rec arrow.RecordBatch) (outs []arrow.RecordBatch, err error) {
	defer func() {
		if p := recover(); p != nil {
			releaseAll(outs)
			outs = nil
			err = fmt.Errorf("%w: processor panicked: %v", stage.ErrPermanent, p)
		}
	}()
	return r.proc.Process(ctx, rec)
}

// checkOutputs verifies that outputs match the configured output kind.
func (r *Runner) checkOutputs(outs []arrow.RecordBatch) error {
	if r.cfg.OutputSubject == "" {
		if len(outs) > 0 {
			return fmt.Errorf("%w: stage %s is a sink but returned %d batches", stage.ErrPermanent, r.cfg.Stage, len(outs))
		}
		return nil
	}
	for i, o := range outs {
		if o == nil {
			return fmt.Errorf("%w: output %d is nil", stage.ErrPermanent, i)
		}
		k, err := schemas.KindOf(o)
		if err != nil {
			return fmt.Errorf("%w: output %d: %w", stage.ErrPermanent, i, err)
		}
		if k != r.cfg.OutputKind {
			return fmt.Errorf("%w: output %d has kind %q, want %q", stage.ErrPermanent, i, k, r.cfg.OutputKind)
		}
	}
	return nil
}

// encodeOutputs encodes every output (split to fit MaxBody) into messages
// whose ids derive from the input message, so a redelivered input
// re-publishes the same ids and JetStream drops the duplicates.
func (r *Runner) encodeOutputs(outs []arrow.RecordBatch, md *jetstream.MsgMetadata) ([]*nats.Msg, int64, error) {
	var msgs []*nats.Msg
	var rows int64
	source := md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
	for i, o := range outs {
		id := r.cfg.Stage + ":" + source + ":" + strconv.Itoa(i)
		parts, err := EncodeParts(o, r.cfg.MaxBody, id)
		if err != nil {
			return nil, 0, fmt.Errorf("output %d: %w", i, err)
		}
		for _, p := range parts {
			msgs = append(msgs, partMsg(r.cfg.OutputSubject, r.cfg.OutputKind, p, source))
			rows += p.Rows
		}
	}
	return msgs, rows, nil
}

// failed routes a processing error by its class (stage.Classify):
// invalid and permanent errors and the last allowed delivery go to the
// dead-letter stream, shutdown naks at once, anything else is retried
// later. (An unavailable error only gets here at shutdown: handle retries
// it in place until then.) A store out of space comes first: the batch is
// handed back and the runner stops.
func (r *Runner) failed(ctx, hard context.Context, m jetstream.Msg, md *jetstream.MsgMetadata, err error, log *slog.Logger) {
	name := r.cfg.Stage
	log = log.With("err", err)
	if full := r.processorFull(err); full != nil {
		r.handBackFull(m, full, log)
		return
	}
	class := stage.Classify(err)
	switch {
	case class.DeadLetters():
		r.cfg.Metrics.Errors.WithLabelValues(name, "permanent").Inc()
		r.deadLetter(hard, m, md, ReasonPermanentError, err, log)
	case class == stage.ClassUnavailable:
		// Only at shutdown (handle retries it in place until then): hand
		// it back, which counts a delivery; on its last allowed delivery
		// it goes to the dead-letter stream, explicitly, as a batch
		// handed back at shutdown always does.
		r.retry(ctx, m, md, err, log)
	case hard.Err() != nil:
		// The shutdown grace ran out while the processor worked: hand the
		// batch back unacknowledged.
		_ = m.Nak()
		r.cfg.Metrics.Batches.WithLabelValues(name, "shutdown").Inc()
		log.Info("in-flight batch handed back at shutdown")
	default:
		r.cfg.Metrics.Errors.WithLabelValues(name, "transient").Inc()
		r.retry(ctx, m, md, err, log)
	}
}

// retry naks m with backoff, or dead-letters it on its last delivery with
// cause, the error of this delivery.
func (r *Runner) retry(ctx context.Context, m jetstream.Msg, md *jetstream.MsgMetadata, cause error, log *slog.Logger) {
	if md.NumDelivered >= uint64(r.cfg.MaxDeliver) {
		r.deadLetter(context.WithoutCancel(ctx), m, md, ReasonMaxDeliveries,
			fmt.Errorf("failed on delivery %d of %d: %w", md.NumDelivered, r.cfg.MaxDeliver, cause), log)
		return
	}
	if ctx.Err() != nil {
		_ = m.Nak()
		r.cfg.Metrics.Batches.WithLabelValues(r.cfg.Stage, "shutdown").Inc()
		return
	}
	d := r.backoff(md.NumDelivered)
	_ = m.NakWithDelay(d)
	r.cfg.Metrics.Batches.WithLabelValues(r.cfg.Stage, "retry").Inc()
	log.Warn("batch failed; retrying later", "delay", d)
}

// backoff returns the redelivery delay after the given number of deliveries:
// BackoffMin doubling per delivery up to BackoffMax, with up to 20% jitter
// so that retries from many workers spread out.
func (r *Runner) backoff(delivered uint64) time.Duration {
	d := r.cfg.BackoffMin
	for i := uint64(1); i < delivered && d < r.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, r.cfg.BackoffMax)
	if d > 0 {
		d += time.Duration(rand.Int64N(int64(d)/5 + 1))
	}
	return min(d, r.cfg.BackoffMax)
}

// deadLetter copies m to the dead-letter stream and terminates it. When the
// copy cannot be stored, m is neither acknowledged nor terminated: it is
// nak'ed, so nothing is dropped, and delivered again later (past
// MaxDeliver, handle dead-letters it without processing it). A copy that
// failed because the JetStream store is out of space stops the runner.
func (r *Runner) deadLetter(ctx context.Context, m jetstream.Msg, md *jetstream.MsgMetadata, reason Reason, cause error, log *slog.Logger) {
	d := DeadLetter{
		Reason: reason, Class: deadLetterClass(cause), Error: cause.Error(), Stage: r.cfg.Stage,
		Stream: md.Stream, Subject: m.Subject(), Consumer: md.Consumer,
		Sequence: md.Sequence.Stream, Deliveries: md.NumDelivered, Time: time.Now(),
		Payload: m.Data(),
	}
	if err := r.storeDeadLetter(ctx, d); err != nil {
		r.cfg.Metrics.Errors.WithLabelValues(r.cfg.Stage, "publish").Inc()
		if full := r.jetStreamFull(err, int64(len(d.Payload))); full != nil {
			log.Error("could not store dead letter; the batch is handed back for redelivery", "reason", reason, "cause", cause, "err", full)
			r.handBackFull(m, full, log)
			return
		}
		log.Error("could not store dead letter; the batch will be redelivered", "reason", reason, "cause", cause, "err", err)
		_ = m.NakWithDelay(r.cfg.BackoffMax)
		return
	}
	_ = m.TermWithReason(string(reason))
	r.cfg.Metrics.DeadLetters.WithLabelValues(r.cfg.Stage, string(reason)).Inc()
	r.cfg.Metrics.Batches.WithLabelValues(r.cfg.Stage, "dead_letter").Inc()
	log.Warn("batch sent to the dead-letter stream", "reason", reason, "class", d.Class, "cause", cause)
}

func (r *Runner) storeDeadLetter(ctx context.Context, d DeadLetter) error {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishWait)
	defer cancel()
	_, err := publishParts(pctx, r.js, []*nats.Msg{d.Msg(r.cfg.DeadLetterSubject)})
	return err
}

// msgBytes is the size of msgs' bodies.
func msgBytes(msgs []*nats.Msg) int64 {
	var n int64
	for _, m := range msgs {
		n += int64(len(m.Data))
	}
	return n
}

func releaseAll(recs []arrow.RecordBatch) {
	for _, r := range recs {
		if r != nil {
			r.Release()
		}
	}
}
