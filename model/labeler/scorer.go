package labeler

import (
	"context"
	"fmt"
	"math"

	"github.com/wsgrpo/wsgrpo/schemas"
)

// Scorer gives the per-prefix preference scores of rollouts: a Featurizer
// for the features and a Model to score them. It is what the labeler stage
// calls; it is safe for concurrent use. The caller owns (and closes) the
// Featurizer.
type Scorer struct {
	f *Featurizer
	m *Model
}

// NewScorer pairs a featurizer with a model. The model must take the
// featurizer's kind and width (ErrModelSize) and, when it records a reference
// policy, have been fitted on this featurizer's reference (ErrReference).
func NewScorer(f *Featurizer, m *Model) (*Scorer, error) {
	if err := m.Check(f.Features(), f.DModel()); err != nil {
		return nil, err
	}
	if r := m.Meta().Reference; r != "" && r != f.Reference() {
		return nil, fmt.Errorf("%w: the labeler %s was fitted on %s, the featurizer runs %s", ErrReference, m.ID(), r, f.Reference())
	}
	return &Scorer{f: f, m: m}, nil
}

// ID is the model's ID, recorded on every labeled row.
func (s *Scorer) ID() string { return s.m.ID() }

// Reference is the ID of the reference policy the scorer's featurizer runs
// (see ReferenceID).
func (s *Scorer) Reference() string { return s.f.Reference() }

// Scores are what Score returns for a list of rollouts.
type Scores struct {
	// Prefix[i] holds f_w of each prefix of rollout i: len(StepEnds)+1
	// scores, the empty completion first.
	Prefix [][]float32
	// RefLogprobs[i] are the reference policy's log-probabilities of
	// rollout i's completion tokens, a by-product of the confidence
	// features; nil when the features have none (FeaturesHidden).
	RefLogprobs [][]float32
}

// PrefixScores returns Score's prefix scores alone.
func (s *Scorer) PrefixScores(ctx context.Context, rows []schemas.Rollout) ([][]float32, error) {
	sc, err := s.Score(ctx, rows)
	if err != nil {
		return nil, err
	}
	return sc.Prefix, nil
}

// Score returns, for each rollout, f_w of each of its prefixes and, with
// the confidence kinds, the reference policy's log-probabilities of its
// completion tokens. A rollout that cannot be featurized gives an error
// wrapping ErrInput; a non-finite score one wrapping ErrScore.
func (s *Scorer) Score(ctx context.Context, rows []schemas.Rollout) (Scores, error) {
	if err := ctx.Err(); err != nil {
		return Scores{}, err
	}
	feats, err := s.f.Rollouts(rows)
	if err != nil {
		return Scores{}, err
	}
	out := Scores{Prefix: make([][]float32, len(rows))}
	for i, rf := range feats {
		out.Prefix[i] = make([]float32, len(rf.Prefixes))
		for t, x := range rf.Prefixes {
			v := s.m.Score(x)
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return Scores{}, fmt.Errorf("%w: rollout %s prefix %d scores %v", ErrScore, rows[i].TrajectoryID, t, v)
			}
			out.Prefix[i][t] = v
		}
		if rf.TokenLogprobs != nil {
			if out.RefLogprobs == nil {
				out.RefLogprobs = make([][]float32, len(rows))
			}
			out.RefLogprobs[i] = rf.TokenLogprobs
		}
	}
	return out, nil
}
