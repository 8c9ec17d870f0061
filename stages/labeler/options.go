package labeler

import (
	"context"
	"errors"
	"log/slog"

	"github.com/apache/arrow-go/v18/arrow/memory"

	mlabeler "github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/shaping"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// ErrOptions is wrapped by the errors of New for options that cannot make
// a processor.
var ErrOptions = errors.New("labeler stage: invalid options")

// Scorer gives the preference scores of the prefixes of rollouts: for each
// row, len(StepEnds)+1 scores, the empty completion first. ID names the
// preference model (recorded on every row it scores). An error wrapping
// model/labeler's ErrInput or ErrScore means the rows cannot be scored;
// any other error is taken as transient. model/labeler's Scorer implements
// it.
type Scorer interface {
	ID() string
	PrefixScores(ctx context.Context, rows []schemas.Rollout) ([][]float32, error)
}

// ReferenceScorer is a Scorer whose features come with the reference
// policy's log-probabilities of each completion's tokens (model/labeler's
// Scorer with the confidence kinds). The labeler then puts them on every
// row it scores (schemas.Labeled's RefLogprobs, with Reference naming the
// policy), so that a learner with the same KL reference need not run that
// forward pass again. Score's RefLogprobs may be nil (hidden-state
// features): the rows then carry none.
type ReferenceScorer interface {
	Scorer
	Reference() string
	Score(ctx context.Context, rows []schemas.Rollout) (mlabeler.Scores, error)
}

// ReferencePass gives the reference policy's log-probabilities of
// rollouts' completion tokens, for shapers whose Scorer runs no reference
// forward pass (or that have no Scorer): the labeler attaches them to every
// row (schemas.Labeled.RefLogprobs, with Reference naming the policy), so
// the learner's KL term needs no pass of its own. model/labeler's
// Featurizer of a confidence kind gives them (TokenLogprobs).
type ReferencePass interface {
	Reference() string
	TokenLogprobs(ctx context.Context, rows []schemas.Rollout) ([][]float32, error)
}

// Pending is the durable store of incomplete groups. Add stores the given
// rows of group, keyed by sample index (storing a row again is harmless),
// and returns every row stored for that group so far, the given ones
// included.
type Pending interface {
	Add(ctx context.Context, group string, rows []schemas.Verified) ([]schemas.Verified, error)
}

// Options configure a Processor.
type Options struct {
	// Reference, if set, computes the reference log-probabilities of the
	// rows a Scorer does not give them for (every row, for the shapers
	// other than ws-grpo); nil attaches none there.
	Reference ReferencePass
	// Shaping selects the shaper and its parameters; a zero value (no
	// shaper named) means shaping.DefaultConfig() (ws-grpo).
	Shaping shaping.Config
	// Scorer scores prefixes for ws-grpo, which requires it; other
	// shapers do not use it.
	Scorer Scorer
	// Pending stores incomplete groups. Nil: a batch with an incomplete
	// group fails (ErrIncomplete), for runs whose batches always hold
	// whole groups.
	Pending Pending
	// DropZeroVariance drops groups whose shaped rewards are all equal
	// (one-member groups included) instead of emitting them with zero
	// advantages. Off by default: the trajectory log reads the labeled
	// stream.
	DropZeroVariance bool
	// StepAdvantages adds per-step credit to every row
	// (Labeled.StepAdvantages, see shaping.Config.StepAdvantages).
	StepAdvantages bool
	// Allocator allocates output batches (nil: memory.DefaultAllocator).
	Allocator memory.Allocator
	// Logger receives refused batches and scoring failures (nil discards).
	Logger *slog.Logger
}
