package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// maxDeliveriesAdvisory is the server's notice that a consumer stopped
// redelivering a message because it reached MaxDeliver.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// advisorySubject returns the subject of max-deliveries advisories of the
// runner's consumer.
func (r *Runner) advisorySubject() string {
	return jsMaxDeliveries + r.cfg.Stream + "." + r.cfg.Consumer
}

// watchMaxDeliveries dead-letters messages the server gave up on without a
// worker reporting a failure (each delivery's worker died or hung). Every
// process of the stage watches; the dead letter's message id makes the copy
// unique. On a work-queue stream the message is then removed, since no
// consumer will ever take it. It returns a function that stops the watch.
func (r *Runner) watchMaxDeliveries(ctx context.Context) (func(), error) {
	nc := r.js.Conn()
	sub, err := nc.Subscribe(r.advisorySubject(), func(msg *nats.Msg) {
		var a maxDeliveriesAdvisory
		if err := json.Unmarshal(msg.Data, &a); err != nil {
			r.log.Warn("unreadable max-deliveries advisory", "err", err)
			return
		}
		if err := r.deadLetterBySeq(ctx, a); err != nil {
			r.cfg.Metrics.Errors.WithLabelValues(r.cfg.Stage, "publish").Inc()
			r.log.Error("could not dead-letter a message past MaxDeliver", "seq", a.StreamSeq, "err", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("runner %s: subscribe to advisories: %w", r.cfg.Stage, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// deadLetterBySeq copies the message the advisory names to the dead-letter
// stream.
func (r *Runner) deadLetterBySeq(ctx context.Context, a maxDeliveriesAdvisory) error {
	gctx, cancel := context.WithTimeout(ctx, r.cfg.PublishWait)
	defer cancel()
	raw, err := r.stream.GetMsg(gctx, a.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // another process already handled it
	}
	if err != nil {
		return fmt.Errorf("get message %d: %w", a.StreamSeq, err)
	}
	d := DeadLetter{
		Reason: ReasonMaxDeliveries, Class: stage.ClassTransient,
		Error: fmt.Sprintf("delivered %d times without being acknowledged (workers died or exceeded AckWait %s)",
			a.Deliveries, r.cfg.AckWait),
		Stage: r.cfg.Stage, Stream: a.Stream, Subject: raw.Subject, Consumer: a.Consumer,
		Sequence: a.StreamSeq, Deliveries: a.Deliveries, Time: time.Now(), Payload: raw.Data,
	}
	if err := r.storeDeadLetter(gctx, d); err != nil {
		return err
	}
	r.cfg.Metrics.DeadLetters.WithLabelValues(r.cfg.Stage, string(ReasonMaxDeliveries)).Inc()
	r.log.Warn("batch sent to the dead-letter stream", "reason", ReasonMaxDeliveries, "seq", a.StreamSeq, "deliveries", a.Deliveries)
	if r.workQueue {
		if err := r.stream.DeleteMsg(gctx, a.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("remove dead-lettered message %d: %w", a.StreamSeq, err)
		}
	}
	return nil
}
