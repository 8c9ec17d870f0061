// Package learner is the learner stage: labeled batches in, nothing out (a
// sink). It collects labeled rollouts by group, and whenever
// Options.GroupsPerStep groups are complete it runs one WS-GRPO update of
// the policy and publishes the new weights as the next policy version.
// The policy is a wsgrpo checkpoint (New) or a Hugging Face model
// (NewHF: trained through hf.FullGraph, published as hf.MarshalBundle
// blobs, checkpointed in Hugging Face layout).
//
// # The update
//
// A row's sequence is its prompt tokens (BOS first) followed by its
// completion tokens; the training graph (policy.FullGraph, or
// hf.FullGraph, with
// train.AppendGRPO) scores every completion token against the policy's
// log-probability, the sampler's (the row's TokenLogprobs, π_old, for the
// importance ratio) and the reference policy's (the initial checkpoint,
// frozen, for the k3 KL term; computed by an ONNX Runtime inference
// session when a group completes, unless the row carries them: a ws-grpo
// labeler with the confidence features runs that same forward pass and
// attaches the log-probabilities (schemas.Labeled.RefLogprobs), which the
// learner takes when Reference names its own reference policy
// (model/labeler.ReferenceID, HFReferenceID) and they are one finite log-probability per
// completion token; StepMetrics.RefFromLabeler counts them). The advantage is the row's Advantage,
// or with Options.PerStepCredit StepAdvantages[t] (the labeler's whole
// advantage of step t) on the tokens of reasoning step t. Sequences run in micro-batches sorted by
// length; each micro-batch's loss is weighted by its share of the step, so
// the gradient is that of the whole step. AdamW (model/optim) with global
// gradient clipping then updates the weights in Go. A non-finite loss or
// gradient skips the update (weights and optimizer untouched), logs a
// warning and counts it (Stats.Skipped, StepMetrics.Skipped).
//
// # Versions, staleness and duplicates
//
// Every applied update publishes version+1 through Publisher (a
// checkpoint.Marshal blob, or an hf.MarshalBundle one) and then tells Steps the new step. A learner
// never reuses a version: at start it adopts the latest published version
// only when that is its own weights' version, and otherwise publishes
// them as max(own, latest)+1. A row sampled more than
// Options.MaxStaleness versions before the learner's current one is
// dropped, with its whole group (0: only rows of the current version
// train). Rows are deduplicated by trajectory id against the buffer and a
// window of recently trained ids kept in the checkpoint, so a redelivered
// row never trains twice.
//
// # Acknowledgement and checkpoints
//
// Under a runner that supports stage.Defer, an input batch is
// acknowledged only when each of its rows was trained and the update is
// in a durable checkpoint, or was dropped. Options.Dir receives a
// checkpoint (policy, AdamW state, learner.json: step, version, dedup
// window, counters) every CheckpointEvery updates and at Close, written to
// a temporary directory and renamed whole. A learner started on the same
// directory resumes at that step; rows buffered but untrained are not
// saved, since their unacknowledged batches are redelivered. Without
// deferral support a batch is finished when Process returns, and rows
// still buffered then live only in memory.
//
// # Errors
//
// Dead letter (error wrapping schemas.ErrInvalid): a batch that is not a
// labeled batch or does not read as one, and a batch with a row that
// breaks the rules every labeled row keeps: missing ids, a sample index
// outside its group, a group size that disagrees with its group's other
// rows, a token logprob count that differs from the completion length,
// token ids outside the policy's vocabulary, step ends that do not
// increase within the completion, step advantages that do not match the
// steps, a prompt that cannot be tokenized. These mean a broken upstream
// stage, and the batch is kept for inspection; nothing of it is taken.
//
// Counted drops (Stats.Dropped, by the Drop* reasons), the batch goes on:
// duplicates, stale or future versions, a NaN or infinite advantage, step
// advantage or sampler logprob (the whole group), an empty completion or
// one that does not fit the policy's context (only that row; the group
// trains without it), rows of a skipped update.
//
// Hold (stage.ErrUnavailable): publishing a version or advancing the step
// failed. The update stays applied and the publication is retried before
// the next batch is taken. Anything else (ONNX Runtime failures) is
// transient: the batch is retried, and its rows, already buffered, come
// back as duplicates of themselves.
package learner
