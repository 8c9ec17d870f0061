// Package pipeline is the NATS JetStream backbone that every wsgrpo stage runs
// in.
//
// It provides:
//
//   - Topology: the per-run streams (prompts, rollouts, verified, labeled, dead
//     letters), the policy-weights Object Store bucket and the run-state KV
//     bucket, all named after the run id so two runs never mix, created
//     idempotently by Ensure.
//   - An embedded nats-server with JetStream (StartServer) and a client helper
//     for an external server (Connect); both yield a *nats.Conn, so the rest of
//     the code is the same either way.
//   - Runner: drives a Processor (Arrow record batch in, record batches out)
//     from a durable pull consumer shared by any number of processes, with
//     publish-then-ack delivery, JetStream de-duplication of outputs,
//     InProgress heartbeats, NakWithDelay backoff for transient errors,
//     dead letters for invalid payloads and exhausted deliveries, graceful
//     shutdown and Prometheus metrics. A processor may defer an input's
//     acknowledgement (stage.Defer): the runner publishes the outputs,
//     keeps the input in progress until the processor's stage.Ack, and
//     naks what is still deferred when it stops (deferral.go).
//   - WeightStore and RunState: versioned policy weights in the Object Store
//     with the current version announced in the KV bucket, and small run-state
//     values.
//   - GroupStore: the verified rows of groups whose samples are still
//     arriving, one KV key per row in the run's groups bucket, so that
//     labeler workers anywhere see a group complete once its last row is in.
//   - Lock: a refreshed lease on a run-state key, so that one learner runs
//     per run; a second is refused with ErrLocked, a crashed holder's lock
//     goes stale and is taken over.
//
// Stages never touch NATS: they implement Processor and the Runner does the
// rest. The transport's benchmarks are in bench/transport.
package pipeline
