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

// PrefixScores returns, for each rollout, f_w of each of its prefixes:
// len(StepEnds)+1 scores, the empty completion first. A rollout that cannot
// be featurized gives an error wrapping ErrInput; a non-finite score one
// wrapping ErrScore.
func (s *Scorer) PrefixScores(ctx context.Context, rows []schemas.Rollout) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	feats, err := s.f.Rollouts(rows)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(rows))
	for i, rf := range feats {
		out[i] = make([]float32, len(rf.Prefixes))
		for t, x := range rf.Prefixes {
			v := s.m.Score(x)
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("%w: rollout %s prefix %d scores %v", ErrScore, rows[i].TrajectoryID, t, v)
			}
			out[i][t] = v
		}
	}
	return out, nil
}
