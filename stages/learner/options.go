package learner

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"

	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/model/train"
)

// ErrOptions is returned by Options.Validate and New for settings that
// cannot work.
var ErrOptions = errors.New("learner: invalid options")

// Option defaults.
const (
	DefaultGroupsPerStep   = 8
	DefaultMicroBatch      = 16
	DefaultLR              = 5e-5
	DefaultClipNorm        = 1.0
	DefaultEpsLow          = 0.2
	DefaultEpsHigh         = 0.2
	DefaultBeta            = 0.04
	DefaultCheckpointEvery = 10
	DefaultKeepCheckpoints = 2
	DefaultDedupWindow     = 1 << 16
	// DefaultPromptTemplate is the sampler's: the text a row's prompt
	// becomes when the row carries no prompt token ids.
	DefaultPromptTemplate = tokenizer.DefaultPromptTemplate
	promptPlaceholder     = tokenizer.PromptPlaceholder
)

// Aggregation names (Options.Aggregation).
const (
	// AggSeqMean averages each completion's tokens, then the completions
	// (GRPO).
	AggSeqMean = "seq-mean"
	// AggTokenSum sums every completion token and divides by the number
	// of completions times NormConst (Dr. GRPO).
	AggTokenSum = "token-sum"
)

// Options configure a learner. Zero fields take the defaults.
type Options struct {
	// GroupsPerStep is the number of complete groups one update trains on
	// (default 8).
	GroupsPerStep int
	// MicroBatch bounds the sequences run through ONNX Runtime together
	// (default 16). A step of N sequences runs ceil(N/MicroBatch)
	// micro-batches of sizes that differ by at most one; each one's loss
	// is weighted by its share of the sequences, so the gradient is the
	// one of the whole step whatever the split.
	MicroBatch int
	// Optim holds the AdamW settings. Zero LR takes DefaultLR; zero betas
	// and eps take optim's defaults. WeightDecay 0 means none.
	Optim optim.Config
	// ClipNorm is the global gradient-norm clip (default 1; negative
	// disables it). It overrides Optim.ClipNorm.
	ClipNorm float64
	// EpsLow and EpsHigh clip the importance ratio to [1-EpsLow,
	// 1+EpsHigh] (defaults 0.2 and 0.2; a larger EpsHigh is DAPO's
	// clip-higher).
	EpsLow, EpsHigh float64
	// Beta weights the k3 KL estimate to the reference policy (default
	// 0.04; NoKL turns it off).
	Beta float64
	// NoKL sets Beta to 0 (a zero Beta means the default).
	NoKL bool
	// Aggregation is AggSeqMean (default) or AggTokenSum.
	Aggregation string
	// NormConst is AggTokenSum's per-completion divisor (default: the
	// policy's MaxSeq, the longest a completion can be).
	NormConst float64
	// PerStepCredit trains the tokens of reasoning step t with
	// StepAdvantages[t], the advantage the labeler gave step t (Advantage
	// plus its centred step term); tokens after the last step, and every
	// token of a row without StepAdvantages, get Advantage.
	PerStepCredit bool
	// MaxStaleness is how many versions behind the learner's current one
	// a row's policy version may be. 0 (the default) is synchronous
	// on-policy training: only rows sampled with the current version
	// train.
	MaxStaleness int64
	// InitVersion is the version under which the initial checkpoint is
	// published, when whoever starts the run publishes it (0 when
	// nobody does). A fresh learner that finds it as the latest version
	// adopts it instead of publishing a copy.
	InitVersion int64
	// Dir is the learner's checkpoint directory; "" keeps no checkpoint
	// (a restart starts over from the initial policy).
	Dir string
	// CheckpointEvery writes a checkpoint every this many updates (default
	// 10); Close writes one too.
	CheckpointEvery int
	// KeepCheckpoints is how many checkpoints Dir keeps (default 2).
	KeepCheckpoints int
	// DedupWindow is how many recently trained trajectory ids the learner
	// remembers (and checkpoints) to drop redelivered rows (default 65536).
	DedupWindow int
	// PromptTemplate turns a row's prompt text into the tokens the policy
	// was conditioned on when the row carries no prompt token ids
	// (default DefaultPromptTemplate, the sampler's).
	PromptTemplate string
	// Steps, if set, is told the learner's step after every update.
	Steps Steps
	// Sink, if set, receives every update's metrics.
	Sink StepSink
	// Logger receives warnings (skipped updates, dropped groups); nil
	// discards.
	Logger *slog.Logger
}

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.GroupsPerStep, DefaultGroupsPerStep)
	def(&o.MicroBatch, DefaultMicroBatch)
	def(&o.CheckpointEvery, DefaultCheckpointEvery)
	def(&o.KeepCheckpoints, DefaultKeepCheckpoints)
	def(&o.DedupWindow, DefaultDedupWindow)
	if o.Optim.LR == 0 {
		o.Optim.LR = DefaultLR
	}
	if o.Optim.Beta1 == 0 && o.Optim.Beta2 == 0 {
		d := optim.DefaultConfig()
		o.Optim.Beta1, o.Optim.Beta2 = d.Beta1, d.Beta2
	}
	if o.Optim.Eps == 0 {
		o.Optim.Eps = optim.DefaultConfig().Eps
	}
	switch {
	case o.ClipNorm == 0:
		o.ClipNorm = DefaultClipNorm
	case o.ClipNorm < 0:
		o.ClipNorm = 0
	}
	o.Optim.ClipNorm = o.ClipNorm
	if o.EpsLow == 0 {
		o.EpsLow = DefaultEpsLow
	}
	if o.EpsHigh == 0 {
		o.EpsHigh = DefaultEpsHigh
	}
	if o.Beta == 0 {
		o.Beta = DefaultBeta
	}
	if o.NoKL {
		o.Beta = 0
	}
	if o.Aggregation == "" {
		o.Aggregation = AggSeqMean
	}
	if o.PromptTemplate == "" {
		o.PromptTemplate = DefaultPromptTemplate
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports settings that cannot work, after defaults.
func (o Options) Validate() error {
	o = o.withDefaults()
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
	switch {
	case o.GroupsPerStep < 1:
		return fmt.Errorf("%w: groups_per_step %d (want at least 1)", ErrOptions, o.GroupsPerStep)
	case o.MicroBatch < 1:
		return fmt.Errorf("%w: micro_batch %d (want at least 1)", ErrOptions, o.MicroBatch)
	case o.Optim.LR <= 0 || bad(o.Optim.LR):
		return fmt.Errorf("%w: lr %v (want > 0)", ErrOptions, o.Optim.LR)
	case o.Optim.WeightDecay < 0 || bad(o.Optim.WeightDecay) || bad(o.ClipNorm):
		return fmt.Errorf("%w: weight_decay %v, clip_norm %v", ErrOptions, o.Optim.WeightDecay, o.ClipNorm)
	case o.EpsLow < 0 || o.EpsLow >= 1 || o.EpsHigh < 0 || bad(o.EpsLow) || bad(o.EpsHigh):
		return fmt.Errorf("%w: eps_low %v (want [0,1)), eps_high %v (want >= 0)", ErrOptions, o.EpsLow, o.EpsHigh)
	case o.Beta < 0 || bad(o.Beta):
		return fmt.Errorf("%w: beta %v (want >= 0)", ErrOptions, o.Beta)
	case o.Aggregation != AggSeqMean && o.Aggregation != AggTokenSum:
		return fmt.Errorf("%w: aggregation %q (want %s or %s)", ErrOptions, o.Aggregation, AggSeqMean, AggTokenSum)
	case o.NormConst < 0 || bad(o.NormConst):
		return fmt.Errorf("%w: norm_const %v (want > 0, or 0 for the policy's max_seq)", ErrOptions, o.NormConst)
	case o.MaxStaleness < 0:
		return fmt.Errorf("%w: max_staleness %d (want >= 0)", ErrOptions, o.MaxStaleness)
	case o.InitVersion < 0:
		return fmt.Errorf("%w: init_version %d (want >= 0)", ErrOptions, o.InitVersion)
	case o.CheckpointEvery < 1 || o.KeepCheckpoints < 1 || o.DedupWindow < 1:
		return fmt.Errorf("%w: checkpoint_every %d, keep_checkpoints %d, dedup_window %d (want at least 1)",
			ErrOptions, o.CheckpointEvery, o.KeepCheckpoints, o.DedupWindow)
	case !strings.Contains(o.PromptTemplate, promptPlaceholder):
		return fmt.Errorf("%w: prompt template %q has no %s", ErrOptions, o.PromptTemplate, promptPlaceholder)
	}
	return nil
}

// grpo returns the loss configuration for a policy of maxSeq positions.
func (o Options) grpo(maxSeq int) train.GRPOConfig {
	c := train.GRPOConfig{EpsLow: o.EpsLow, EpsHigh: o.EpsHigh, Beta: o.Beta, PerTokenAdvantages: o.PerStepCredit}
	if o.Aggregation == AggTokenSum {
		c.Aggregation = train.TokenSumConst
		c.NormConst = o.NormConst
		if c.NormConst == 0 {
			c.NormConst = float64(maxSeq)
		}
	}
	return c
}
