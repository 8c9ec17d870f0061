// Package pretrain trains the base policy WS-GRPO starts from: supervised
// next-token cross-entropy on arith traces (tasks/arith), a share of which
// overthink (keep going after the answer is known) and a small share of
// which slip, so that the policy is often long and sometimes wrong: room
// for RL to shorten its reasoning and to raise its accuracy. It trains
// through the project's own gradient graphs (model/train) and AdamW
// (model/optim) in ONNX Runtime, evaluates greedy accuracy and completion
// length on the test split by operation count, and returns a checkpoint.
package pretrain

import (
	"errors"
	"fmt"
	"time"

	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
)

// ErrConfig is returned for a configuration that cannot train.
var ErrConfig = errors.New("pretrain: invalid configuration")

// Config configures a pretraining run. Start from DefaultConfig.
type Config struct {
	// Task is the arith task whose train split supplies the traces.
	Task arith.Config `json:"task" koanf:"task"`
	// Policy is the architecture; its VocabSize must be the character
	// tokenizer's (DefaultConfig sets it).
	Policy policy.Config `json:"policy" koanf:"policy"`
	// Steps is the number of optimizer steps.
	Steps int `json:"steps" koanf:"steps"`
	// MaxDuration stops training early once this much wall time has
	// passed (0: no limit); the run then evaluates and returns as usual.
	MaxDuration time.Duration `json:"max_duration" koanf:"max_duration"`
	// Batch is the number of traces per step.
	Batch int `json:"batch" koanf:"batch"`
	// LR is the peak learning rate, reached after Warmup steps and
	// decayed by a cosine to MinLR at Steps.
	LR     float64 `json:"lr" koanf:"lr"`
	MinLR  float64 `json:"min_lr" koanf:"min_lr"`
	Warmup int     `json:"warmup" koanf:"warmup"`
	// WeightDecay and ClipNorm go to AdamW.
	WeightDecay float64 `json:"weight_decay" koanf:"weight_decay"`
	ClipNorm    float64 `json:"clip_norm" koanf:"clip_norm"`
	// Seed fixes the weights' initialisation and the order of the traces.
	Seed uint64 `json:"seed" koanf:"seed"`
	// Init, when set, is a checkpoint directory to continue from instead
	// of random weights (with a fresh AdamW state and this schedule); its
	// architecture must equal Policy.
	Init string `json:"init,omitempty" koanf:"init"`
	// EvalEvery evaluates on the test split every this many steps (0: only
	// at the end); EvalPrompts is the number of test prompts per operation
	// count, EvalOps the operation counts evaluated.
	EvalEvery   int   `json:"eval_every" koanf:"eval_every"`
	EvalPrompts int   `json:"eval_prompts" koanf:"eval_prompts"`
	EvalOps     []int `json:"eval_ops" koanf:"eval_ops"`
}

// DefaultConfig returns the settings that produced the shipped base
// policy: d_model 128, 4 layers, batch 64, peak learning rate 3e-3 (the
// rate that worked in the measured trials), digit-reversed step results.
func DefaultConfig() Config {
	task := arith.DefaultConfig()
	task.ReverseResults = true
	p := policy.DefaultConfig(tokenizer.Default().VocabSize())
	p.MaxSeq = 512
	return Config{
		Task: task, Policy: p,
		Steps: 8000, Batch: 64, LR: 3e-3, MinLR: 3e-4, Warmup: 100,
		WeightDecay: 0.01, ClipNorm: 1, Seed: 1,
		EvalEvery: 1000, EvalPrompts: 100, EvalOps: []int{2, 3, 4, 5},
	}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	if err := c.Task.Validate(); err != nil {
		return fmt.Errorf("%w: task: %w", ErrConfig, err)
	}
	if err := c.Policy.Validate(); err != nil {
		return fmt.Errorf("%w: policy: %w", ErrConfig, err)
	}
	if v := tokenizer.Default().VocabSize(); c.Policy.VocabSize != v {
		return fmt.Errorf("%w: policy vocab_size %d, the character tokenizer has %d", ErrConfig, c.Policy.VocabSize, v)
	}
	switch {
	case c.Steps < 1 || c.Batch < 1:
		return fmt.Errorf("%w: steps %d and batch %d must be at least 1", ErrConfig, c.Steps, c.Batch)
	case c.LR <= 0 || c.MinLR < 0 || c.MinLR > c.LR:
		return fmt.Errorf("%w: lr %g, min_lr %g (want 0 <= min_lr <= lr, lr > 0)", ErrConfig, c.LR, c.MinLR)
	case c.Warmup < 0 || c.EvalEvery < 0 || c.EvalPrompts < 0 || c.MaxDuration < 0:
		return fmt.Errorf("%w: negative warmup, eval_every, eval_prompts or max_duration", ErrConfig)
	case c.WeightDecay < 0 || c.ClipNorm < 0:
		return fmt.Errorf("%w: negative weight_decay or clip_norm", ErrConfig)
	}
	for _, n := range c.EvalOps {
		if n < 1 || n > 8 {
			return fmt.Errorf("%w: eval_ops %d (want 1..8)", ErrConfig, n)
		}
	}
	return nil
}
