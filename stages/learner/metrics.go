package learner

import "maps"

// Reasons a row is dropped instead of trained (Stats.Dropped keys).
const (
	// DropDuplicate: the trajectory was already trained (the dedup
	// window) or is already buffered: a redelivery.
	DropDuplicate = "duplicate"
	// DropStale: the row's policy version is more than MaxStaleness
	// behind the learner's; its whole group goes.
	DropStale = "stale"
	// DropFutureVersion: the row claims a version newer than the
	// learner's, which no learner lineage this one continues made.
	DropFutureVersion = "future_version"
	// DropNonFinite: a row of the group has a NaN or infinite advantage,
	// step advantage or sampler logprob, or a logprob above 0; the group's
	// advantages cannot be trusted, so the whole group goes.
	DropNonFinite = "non_finite"
	// DropEmptyCompletion: no completion tokens (a prompt the sampler could
	// not sample); the rest of its group trains.
	DropEmptyCompletion = "empty_completion"
	// DropTooLong: prompt plus completion do not fit the policy's MaxSeq;
	// the rest of its group trains.
	DropTooLong = "too_long"
	// DropSkippedUpdate: the row was in an update that was skipped for a
	// non-finite loss or gradient.
	DropSkippedUpdate = "skipped_update"
)

// StepMetrics describes one update.
type StepMetrics struct {
	// Step is the update's number (the first is 1); a skipped update
	// reports the number it would have had.
	Step int64
	// Version is the policy version the update published (the unchanged
	// current version when skipped).
	Version int64
	// Skipped is true when a non-finite loss or gradient cancelled the
	// update: weights and optimizer are untouched.
	Skipped bool
	// Loss, KL, ClipFrac and Ratio are the surrogate loss, the masked mean
	// k3 KL to the reference (to the sampler's policy with Options.NoKL,
	// which skips the reference pass), the share of clipped tokens and the
	// mean importance ratio (the last three averaged over micro-batches).
	Loss, KL, ClipFrac, Ratio float64
	// GradNorm is the global gradient norm before clipping.
	GradNorm float64
	// MeanReward is the mean shaped reward; Accuracy the share of correct
	// completions; MeanTokens the mean completion length; MeanSteps the
	// mean number of reasoning steps; MeanStaleness the mean number of
	// versions between a row's policy and the updated one.
	MeanReward, Accuracy, MeanTokens, MeanSteps, MeanStaleness float64
	// Groups, Rows and Tokens count what the update trained.
	Groups, Rows, Tokens int
	// MicroBatches is the number of ONNX Runtime runs of the update.
	MicroBatches int
	// WaitMs is the time between the previous update's end and this one's
	// start (waiting for rows; RefMs of it went to the reference forward
	// passes). ForwardBackwardMs is the training graph's time,
	// OptimizerMs AdamW's, PublishMs snapshotting, publishing and
	// announcing the version, CheckpointMs writing a checkpoint (0 when
	// none was due).
	WaitMs, RefMs, ForwardBackwardMs, OptimizerMs, PublishMs, CheckpointMs float64
	// RefFromLabeler counts the rows taken since the previous update whose
	// reference log-probabilities came with them from the labeler
	// (schemas.Labeled.RefLogprobs), sparing their reference pass.
	RefFromLabeler int
}

// Stats are the learner's counters since it started (restored from the
// checkpoint on resume).
type Stats struct {
	// Step is the number of updates applied; Version the current policy
	// version.
	Step, Version int64
	// Skipped counts updates cancelled for a non-finite loss or gradient.
	Skipped int64
	// RowsTrained counts rows that went into applied updates.
	RowsTrained int64
	// Dropped counts rows not trained, by reason (the Drop* constants).
	Dropped map[string]int64
	// Buffered is the number of rows waiting for their group or a step.
	Buffered int
	// PendingAcks is the number of input batches whose acknowledgement
	// waits for training or a checkpoint.
	PendingAcks int
}

// clone returns a deep copy.
func (s Stats) clone() Stats {
	s.Dropped = maps.Clone(s.Dropped)
	if s.Dropped == nil {
		s.Dropped = map[string]int64{}
	}
	return s
}
