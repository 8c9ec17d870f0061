// Package stage is the contract between a wsgrpo stage and the runner that
// drives it. Every stage package (stages/<name>) implements Processor and
// imports this package, schemas and model/...; none imports the transport.
// The pipeline package's runner implements the other side: it pulls a batch
// from the stage's input stream, calls Process, publishes the outputs,
// acknowledges the input, and acts on the error class of a failure.
//
// # Batches
//
// Process gets one Arrow record batch of the stage's input kind and returns
// zero or more batches of its output kind (none for a sink). The runner
// owns the input and releases it after Process returns: a processor that
// keeps it, or returns it as an output, must Retain it. The runner releases
// every returned batch once it is published. Process may be called from
// several goroutines at once (a runner with Concurrency > 1), so a
// processor with state guards it.
//
// # Errors
//
// The error Process returns decides what happens to the input batch; the
// runner classifies it with Classify:
//
//   - ClassInvalid (an error wrapping schemas.ErrInvalid: the rows break the
//     schema's rules) and ClassPermanent (wrapping ErrPermanent: retrying
//     cannot fix it) terminate the batch and copy it to the run's
//     dead-letter stream with the error and its class.
//   - ClassUnavailable (wrapping ErrUnavailable: something the stage needs,
//     a database or a service, is down) holds the batch and calls Process
//     again with backoff for as long as the outage lasts. The batch stays
//     unacknowledged, its delivery count does not grow and it is not
//     dead-lettered for it; the stream keeps the backlog behind it. At
//     shutdown a held batch is handed back, which counts one delivery.
//   - ClassTransient (any other error) hands the batch back with growing
//     delays, up to the runner's MaxDeliver deliveries; a batch that fails
//     on its last delivery is dead-lettered.
//
// Whatever its class, an error wrapping ErrStorageFull (a store the
// processor writes to is out of space; the runner also recognises the
// texts of common out-of-space errors) hands the batch back unacknowledged
// and stops the runner, which reports the error: the batch is not at fault
// and is never dead-lettered for it.
//
// A panic in Process is recovered and treated as ClassPermanent. The
// context passed to Process ends when the runner's shutdown grace runs
// out: the processor should then return promptly.
//
// # Closing
//
// A processor that holds resources implements Closer; whoever runs it
// calls Close once after the last Process call has returned.
package stage

import (
	"context"
	"errors"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/wsgrpo/wsgrpo/internal/diskfull"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// Processor is one stage's work: a record batch in, zero or more record
// batches out. See the package documentation for ownership and errors.
type Processor interface {
	Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error)
}

// Func adapts a function to Processor.
type Func func(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error)

// Process calls f.
func (f Func) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	return f(ctx, in)
}

// Closer is implemented by a processor that holds resources (a database
// handle, a model session). Close is called once, after the last Process
// call has returned; ctx bounds how long it may take.
type Closer interface {
	Close(ctx context.Context) error
}

// Errors a processor wraps (fmt.Errorf("...: %w", stage.ErrPermanent)) to
// choose what the runner does with its input batch.
var (
	// ErrPermanent marks a failure that retrying cannot fix: the runner
	// dead-letters the batch at once.
	ErrPermanent = errors.New("permanent failure")
	// ErrUnavailable marks a failure because something the processor
	// needs is down: the runner holds the batch and retries it in place
	// until it succeeds or the runner stops.
	ErrUnavailable = errors.New("dependency unavailable")
	// ErrStorageFull marks a failure because a store the processor
	// writes to is out of space: the runner hands the batch back and
	// stops. It is the same error value as pipeline.ErrStorageFull and
	// tracelog.ErrStorageFull.
	ErrStorageFull = diskfull.ErrFull
)

// Class is what the runner does with a failed batch, derived from the
// processor's error by Classify. It travels with a dead letter so that
// tools decide on the class, not on the error's text.
type Class string

// The error classes. Their string values are stored in dead letters and
// are part of the interface.
const (
	// ClassInvalid: the batch or its rows break the schema's rules
	// (schemas.ErrInvalid); the same bytes fail the same way again.
	ClassInvalid Class = "invalid"
	// ClassPermanent: the processor said retrying cannot fix it
	// (ErrPermanent), or it panicked.
	ClassPermanent Class = "permanent"
	// ClassUnavailable: a dependency was down (ErrUnavailable).
	ClassUnavailable Class = "unavailable"
	// ClassTransient: any other error; retried up to MaxDeliver times.
	ClassTransient Class = "transient"
)

// Classify returns err's class: ClassInvalid for an error wrapping
// schemas.ErrInvalid, ClassPermanent for ErrPermanent, ClassUnavailable
// for ErrUnavailable, ClassTransient otherwise. The checks go in that
// order, so an error that is both invalid and unavailable is invalid: a
// marker that retrying cannot help wins over one that says it might.
// Classify(nil) is "".
func Classify(err error) Class {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, schemas.ErrInvalid):
		return ClassInvalid
	case errors.Is(err, ErrPermanent):
		return ClassPermanent
	case errors.Is(err, ErrUnavailable):
		return ClassUnavailable
	default:
		return ClassTransient
	}
}

// DeadLetters reports whether a batch failing with class c goes to the
// dead-letter stream at once (instead of being retried).
func (c Class) DeadLetters() bool { return c == ClassInvalid || c == ClassPermanent }

// Ack finishes an input batch whose acknowledgement a processor deferred
// (see Defer). Ack(nil) acknowledges it; Ack(err) hands it to the runner's
// error handling as if Process had returned err (the class decides: retry,
// hold or dead letter). Only the first call counts; it is safe from any
// goroutine.
type Ack func(err error)

// deferKey carries a runner's deferral hook in Process's context.
type deferKey struct{}

// WithDeferral returns ctx carrying hook, which Defer calls. A runner that
// supports deferred acknowledgement installs it in the context it passes
// to Process; processors do not call it.
func WithDeferral(ctx context.Context, hook func() Ack) context.Context {
	return context.WithValue(ctx, deferKey{}, hook)
}

// Defer asks the runner, when called inside Process, not to acknowledge
// the input batch when Process returns nil: the runner publishes the outputs
// and keeps the input in progress (unacknowledged, heartbeating) until the
// returned Ack is called. A processor that accumulates rows across batches
// (the learner: a training step spans many) uses it so that a crash before
// the rows' effect is durable loses nothing: the stream redelivers them.
// If Process returns an error the deferral is void and the error is
// handled as usual. ok is false when ctx does not come from a runner that
// supports deferral (a direct call in a test): the processor must then
// finish the batch inside Process.
func Defer(ctx context.Context) (ack Ack, ok bool) {
	hook, _ := ctx.Value(deferKey{}).(func() Ack)
	if hook == nil {
		return nil, false
	}
	return hook(), true
}
