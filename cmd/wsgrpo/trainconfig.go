package main

import (
	"fmt"

	"github.com/wsgrpo/wsgrpo/tasks/arith"
)

// TrainConfig is the train: section: what a training run trains on, for how
// long, and where it starts.
type TrainConfig struct {
	// Model is the starting policy's directory: a wsgrpo checkpoint or a
	// Hugging Face Qwen2/Qwen3/Llama checkpoint (config.json, safetensors,
	// tokenizer.json); it is also the frozen reference policy (KL term,
	// labeler features).
	Model string `koanf:"model"`
	// Data is a JSONL dataset ({"prompt", "answer"} lines) to train on
	// instead of the built-in arith task; DataTask names its items' task
	// (dataset or gsm8k: it picks the verifier's extractor).
	Data     string `koanf:"data"`
	DataTask string `koanf:"data_task"`
	// Arith configures the built-in task (its train split) when Data is
	// empty.
	Arith arith.Config `koanf:"arith"`
	// Steps is the number of learner updates.
	Steps int `koanf:"steps"`
	// PromptsPerStep is N, the prompts (groups) per update; each is
	// sampled sampler.samples (G) times.
	PromptsPerStep int `koanf:"prompts_per_step"`
	// PromptBatch is the most prompts per published prompt message (0: a
	// step's prompts in one message, up to 64). A message is the unit a
	// sampler copy takes, so with several sampler processes a smaller
	// batch lets them share one step (prompts_per_step / copies each);
	// each copy then decodes fewer sequences at a time.
	PromptBatch int `koanf:"prompt_batch"`
	// Ahead is how many steps the prompt source may run ahead of the
	// learner: step k goes out once the learner finished step k-Ahead.
	// 1 is synchronous on-policy training (every row is sampled with the
	// newest version); 2 lets the sampler sample step k+1 while the
	// learner trains step k, whose rows are then up to one version stale
	// (learner.max_staleness must allow it).
	Ahead int `koanf:"ahead"`
	// WarmupSteps is the labeler's warm-up: steps of PromptsPerStep
	// prompts sampled from the starting policy (run <run>-warmup, logged
	// like every rollout) that fit the WS-GRPO preference model before
	// training. Unused with labeler.artifact or shapers other than ws-grpo.
	// Default 8: the preference model's test pair accuracy stops growing
	// there (docs/RESULTS.md, "Choosing the settings").
	WarmupSteps int `koanf:"warmup_steps"`
	// EvalPrompts is the number of arith test-split prompts evaluated
	// greedily before and after training (0: no eval).
	EvalPrompts int `koanf:"eval_prompts"`
	// EvalSamples is how many completions of each eval prompt are also
	// sampled at sampler.temperature, before and after training (0: greedy
	// eval only). The base policy's greedy completions are already
	// minimal; the overthinking that length shaping removes is in what the
	// policy samples, so the result tables report both.
	EvalSamples int `koanf:"eval_samples"`
	// EvalMaxOps, when above train.arith.max_ops, evaluates on test-split
	// expressions of up to this many operations, longer than any trained
	// on (the report splits accuracy by operations). 0: the training range.
	EvalMaxOps int `koanf:"eval_max_ops"`
	// Seed picks the prompts.
	Seed uint64 `koanf:"seed"`
}

// DefaultTrainConfig is a short run on arith from the shipped base policy.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{
		Model:          "testdata/base",
		DataTask:       "dataset",
		Arith:          arith.DefaultConfig(),
		Steps:          20,
		PromptsPerStep: 8,
		Ahead:          1,
		WarmupSteps:    8,
		EvalPrompts:    100,
		EvalSamples:    4,
		Seed:           1,
	}
}

// Validate reports the first problem with c.
func (c TrainConfig) Validate() error {
	switch {
	case c.Steps < 1 || c.PromptsPerStep < 1:
		return fmt.Errorf("%w: train.steps %d and train.prompts_per_step %d must be at least 1", ErrConfig, c.Steps, c.PromptsPerStep)
	case c.Ahead < 1:
		return fmt.Errorf("%w: train.ahead %d must be at least 1", ErrConfig, c.Ahead)
	case c.WarmupSteps < 0 || c.EvalPrompts < 0 || c.EvalSamples < 0 || c.PromptBatch < 0:
		return fmt.Errorf("%w: train.warmup_steps, train.eval_prompts, train.eval_samples and train.prompt_batch must be >= 0", ErrConfig)
	case c.EvalMaxOps != 0 && c.EvalMaxOps < c.Arith.MaxOps:
		return fmt.Errorf("%w: train.eval_max_ops %d must be 0 or at least train.arith.max_ops %d", ErrConfig, c.EvalMaxOps, c.Arith.MaxOps)
	case c.Data == "":
		if _, err := arith.New(c.Arith); err != nil {
			return fmt.Errorf("%w: train.arith: %w", ErrConfig, err)
		}
	}
	return nil
}
