package pipeline

import "errors"

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrPermanent marks a processing failure that retrying cannot fix. A
	// Processor wraps it (fmt.Errorf("...: %w", pipeline.ErrPermanent)) to
	// have its input terminated and copied to the dead-letter stream instead
	// of being retried.
	ErrPermanent = errors.New("permanent failure")
	// ErrUnavailable marks a failure because something the processor needs
	// (a database, a service) is down. A Processor wraps it
	// (fmt.Errorf("...: %w", pipeline.ErrUnavailable)) to have the runner
	// hold the batch and call Process again with backoff, for as long as
	// the outage lasts: the batch stays unacknowledged (heartbeats keep it
	// from being redelivered), its delivery count does not grow, and it is
	// not dead-lettered for it. The stream holds the backlog meanwhile.
	// At shutdown the held batch is handed back (Nak), which counts as a
	// delivery: a batch held through MaxDeliver restarts of its runner
	// during one outage goes to the dead-letter stream, as any batch on
	// its last delivery does (JetStream counts deliveries, not causes).
	// Holding relies on the runner's heartbeat (Heartbeat >= 0).
	ErrUnavailable = errors.New("dependency unavailable")
	// ErrInvalidName is returned for a run id, stage or consumer name outside
	// [A-Za-z0-9_-] or too long.
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidConfig is returned for a runner, server or topology
	// configuration that cannot work.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrBatchTooLarge is returned when one row alone encodes to more than
	// the stream's maximum message size, so no split can make it fit.
	ErrBatchTooLarge = errors.New("batch too large for the stream's maximum message size")
	// ErrNotFound is returned by WeightStore and RunState for a missing
	// version or key.
	ErrNotFound = errors.New("not found")
	// ErrServer is returned when the embedded NATS server cannot start.
	ErrServer = errors.New("nats server")
	// ErrDeadLetter is returned by DecodeDeadLetter for a message that is not
	// a well-formed dead-letter record.
	ErrDeadLetter = errors.New("malformed dead-letter record")
)
