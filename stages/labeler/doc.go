// Package labeler is the labeler stage (WS-GRPO Phase II): it turns
// verified rollouts into labeled ones, scoring each complete group of
// samples of a prompt with one reward shaper and its group-relative
// advantages.
//
// Input: verified batches. Output: at most one labeled batch per input,
// holding the rows of every group that became complete with this batch,
// group by group (in order of first appearance) and by sample index within
// a group; an input that completes no group gives no output.
//
// # Groups
//
// A group (rows sharing GroupID) is scored once all G = GroupSize distinct
// sample indexes 0..G-1 have arrived, whichever batches they came in. A
// batch holding a whole group scores it at once without touching the
// Pending store; the rows of an incomplete group go to Pending.Add, and if
// the store then holds the whole group it is scored and emitted (rows from
// earlier batches included). A redelivered batch can emit a group again:
// labeled rows carry their trajectory id, and consumers de-duplicate by it.
//
// # Shaping
//
// One code path serves every shaper (Options.Shaping.Shaper, see package
// model/shaping); every row records its shaper. For ws-grpo the Scorer
// gives each rollout's prefix scores (StepScores, the empty completion
// first), StepRewards are sigmoid(f(t) - f(t-1)), and the row records the
// scorer's ID as Labeler. A ReferenceScorer (the confidence features) also
// gives the reference policy's log-probabilities of each completion's
// tokens: the row carries them as RefLogprobs, with Reference naming the
// policy, and a learner with that KL reference skips its own reference
// forward pass. Other shapers use no scorer and leave StepScores,
// StepRewards and Labeler empty. An empty completion has one prefix score
// and no steps. With Options.StepAdvantages each row also gets one
// advantage per step (shaping.Config.StepAdvantages): the tokens of step t
// get StepAdvantages[t]; tokens after the last step keep Advantage.
//
// A group of one (G = 1) has advantage 0, and a group whose shaped
// rewards are all equal has advantages 0 too; both carry no learning
// signal. Such zero-variance groups are kept by default, because the
// labeled stream also feeds the trajectory log, which must see every
// trajectory; Options.DropZeroVariance drops them. Both are counted
// (Stats).
//
// # Errors
//
//   - The batch is dead-lettered (its error wraps schemas.ErrInvalid) when
//     it is not a verified batch or its rows break the group rules: an
//     empty group id, GroupSize < 1, a SampleIndex outside [0, G), rows of
//     one group (in the batch or in the Pending store) that disagree on G,
//     step ends that are not strictly increasing within the completion.
//   - It is dead-lettered (ErrPermanent) when the rows cannot be scored:
//     the scorer refuses them (a sequence longer than the reference
//     policy's, an empty prompt: model/labeler's ErrInput), or it returns
//     a non-finite score or the wrong number of scores.
//   - It is held and retried in place (stage.ErrUnavailable) while the
//     Pending store fails.
//   - Any other scorer failure (ONNX Runtime) is retried up to the
//     runner's MaxDeliver.
//
// Duplicate rows of a group in one batch (the same sample index twice)
// keep the first and are counted as dropped; nothing is dropped silently.
package labeler
