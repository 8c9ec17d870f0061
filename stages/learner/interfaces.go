package learner

import "context"

// Publisher is where new policy versions go: the run's weight store (the
// command wires it to the JetStream object store and the version
// announcement).
type Publisher interface {
	// Latest returns the newest published version; ok is false when none
	// is published yet.
	Latest(ctx context.Context) (version int64, ok bool, err error)
	// Publish stores blob (checkpoint.Marshal of the policy, or
	// hf.MarshalBundle of a Hugging Face one) as version
	// and announces it to the samplers.
	Publish(ctx context.Context, version int64, blob []byte) error
}

// Steps is told the learner's progress (the run state's step), after each
// update's version is published.
type Steps interface {
	Advance(ctx context.Context, step int64) error
}

// StepSink receives the metrics of every update, applied or skipped. It
// is called with the learner's lock held: it must not call back into the
// learner, and should return quickly.
type StepSink interface {
	Step(StepMetrics)
}
