// Package sampler is the sampler stage: prompt batches in, rollout batches
// out. For every prompt it samples a group of Options.Samples completions
// with the current policy (KV-cache decoding through ONNX Runtime, with
// temperature, top-p, a token limit and stop strings), and emits one
// rollout row per completion with its token ids, the policy's own logprob
// of every sampled token (the π_old the learner's importance ratios need),
// its step boundaries (model/segment: one step per non-empty line), why it
// finished, the policy version it was sampled with, and the time it took.
//
// Policy versions come through Policies, the sampler's one dependency on
// the transport, which the command wires to the run's weight store (a
// Loader over pipeline.WeightStore), or from Fixed, one policy loaded in
// the process (eval of a Hugging Face checkpoint, whose Policy may list
// several EOS ids). A Process call samples every group of
// its batch with one version, taken when the call starts: a new version is
// picked up between batches, never inside a group. Loader builds a newly
// published version's ONNX Runtime session in the background while the
// current one keeps sampling.
//
// Rows the policy cannot sample (an empty prompt, text its tokenizer cannot
// encode, a prompt that leaves no room for one new token in the model's
// context) still yield their group, with an empty completion and finish
// reason FinishPromptError, and are logged: the batch's other prompts go
// on, and downstream the verifier marks the rows wrong.
//
// Errors: a batch that does not read as prompts wraps schemas.ErrInvalid
// (dead letter); so is one whose prompts Options.Chat cannot put in the
// policy's chat template (ErrChat with stage.ErrPermanent: a policy
// without one). No policy version to sample with (none published yet, the
// weight store unreachable, a version that does not load) wraps
// stage.ErrUnavailable: the runner holds the batch and retries it in place
// until a version is there. Other failures (ONNX Runtime errors, shutdown
// in the middle of a batch) are transient and retried up to the runner's
// MaxDeliver.
package sampler
