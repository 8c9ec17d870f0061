package pipeline

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/internal/diskfull"
)

// Sentinel errors. Callers test them with errors.Is. The errors a
// processor returns to steer the runner (stage.ErrPermanent,
// stage.ErrUnavailable) live in the stage contract, stages/stage.
var (
	// ErrInvalidName is returned for a run id, stage or consumer name outside
	// [A-Za-z0-9_-] or too long.
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidConfig is returned for a runner, server or topology
	// configuration that cannot work.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrBatchTooLarge is returned when one row alone encodes to more than
	// the stream's maximum message size, so no split can make it fit. A
	// stage output that hits it is dead-lettered with ClassTooLarge.
	ErrBatchTooLarge = errors.New("batch too large for the stream's maximum message size")
	// ErrNotFound is returned by WeightStore and RunState for a missing
	// version or key.
	ErrNotFound = errors.New("not found")
	// ErrServer is returned when the embedded NATS server cannot start.
	ErrServer = errors.New("nats server")
	// ErrDeadLetter is returned by DecodeDeadLetter for a message that is not
	// a well-formed dead-letter record.
	ErrDeadLetter = errors.New("malformed dead-letter record")
	// ErrStorageFull marks a failure because a store ran out of space:
	// the JetStream store (a full disk, or the server's max_storage
	// reached) or a processor's own store, such as the trajectory log.
	// A runner that meets it hands its batches back unacknowledged and
	// stops, and Run returns an error wrapping it (see IsStorageFull and
	// StorageFullError). It is the same error value as
	// stage.ErrStorageFull and tracelog.ErrStorageFull.
	ErrStorageFull = diskfull.ErrFull
)

// IsTransient reports whether err, from a NATS or JetStream request, may
// succeed when tried again: the request timed out (its reply was lost,
// e.g. in a server restart) or the connection was down meanwhile. A
// request the server refused for permissions also times out: check
// WithRefusal before retrying forever.
func IsTransient(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout)
}
