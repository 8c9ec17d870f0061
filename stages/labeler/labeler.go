package labeler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	mlabeler "github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/shaping"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// Processor labels verified batches. It satisfies stage.Processor and is
// safe for concurrent use (as safe as its Scorer and Pending store).
type Processor struct {
	shape   shaping.Config
	scorer  Scorer
	ref     ReferencePass
	pending Pending
	drop    bool
	steps   bool
	mem     memory.Allocator
	log     *slog.Logger
	stats   counters
}

// New returns a processor for o. An unknown shaper or invalid shaping
// parameters give an error wrapping shaping.ErrConfig; ws-grpo without a
// Scorer one wrapping ErrOptions.
func New(o Options) (*Processor, error) {
	if o.Shaping.Shaper == "" {
		o.Shaping = shaping.DefaultConfig()
	}
	if err := o.Shaping.Validate(); err != nil {
		return nil, err
	}
	if o.Shaping.Shaper == shaping.WSGRPO && o.Scorer == nil {
		return nil, fmt.Errorf("%w: the %s shaper needs a Scorer (a fitted labeler)", ErrOptions, shaping.WSGRPO)
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Processor{
		shape: o.Shaping, scorer: o.Scorer, ref: o.Reference, pending: o.Pending, drop: o.DropZeroVariance,
		steps: o.StepAdvantages, mem: o.Allocator, log: o.Logger,
	}, nil
}

// Stats returns a snapshot of the processor's counters.
func (p *Processor) Stats() Stats { return p.stats.snapshot() }

// Process labels the complete groups of one verified batch. See the
// package documentation for its output and errors.
func (p *Processor) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	out, err := p.process(ctx, in)
	if err != nil {
		reason := RefuseTransient
		switch {
		case errors.Is(err, schemas.ErrInvalid):
			reason = RefuseInvalid
		case errors.Is(err, ErrUnscorable), errors.Is(err, ErrIncomplete):
			reason = RefuseScore
		case errors.Is(err, stage.ErrUnavailable):
			reason = RefusePending
		}
		p.stats.update(func(s *Stats) { s.BatchesRefused[reason]++ })
		p.log.Warn("labeler: batch refused", "reason", reason, "class", stage.Classify(err), "err", err)
		return nil, err
	}
	return out, nil
}

func (p *Processor) process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	k, err := schemas.KindOf(in)
	if err != nil {
		return nil, fmt.Errorf("labeler: %w", err)
	}
	if k != schemas.KindVerified {
		return nil, fmt.Errorf("labeler: %w: %q batch, the labeler reads verified batches", schemas.ErrWrongKind, k)
	}
	rows, err := schemas.ReadVerified(in)
	if err != nil {
		return nil, fmt.Errorf("labeler: %w", err)
	}
	groups, dups, err := groupRows(rows)
	if err != nil {
		return nil, err
	}
	var ready [][]schemas.Verified
	var fromPending, deferred int64
	for _, g := range groups {
		all, ok, err := whole(g.id, g.size, g.rows)
		if err != nil {
			return nil, err
		}
		if !ok {
			if all, ok, err = p.addPending(ctx, g); err != nil {
				return nil, err
			}
			if !ok {
				deferred++
				continue
			}
			fromPending++
		}
		ready = append(ready, all)
	}
	labeled, err := p.label(ctx, ready)
	if err != nil {
		return nil, err
	}
	var out []arrow.RecordBatch
	if len(labeled) > 0 {
		out = append(out, schemas.NewLabeledBatch(p.mem, labeled))
	}
	p.stats.update(func(s *Stats) {
		s.Batches++
		s.RowsIn += int64(len(rows))
		s.RowsLabeled += int64(len(labeled))
		s.GroupsFromPending += fromPending
		s.GroupsDeferred += deferred
		s.RowsDropped[DropDuplicate] += int64(dups)
	})
	return out, nil
}

// addPending stores an incomplete group's rows and returns the whole group
// if the store now holds it.
func (p *Processor) addPending(ctx context.Context, g *group) ([]schemas.Verified, bool, error) {
	if p.pending == nil {
		return nil, false, fmt.Errorf("%w: group %s has %d of %d samples in the batch", ErrIncomplete, g.id, len(g.rows), g.size)
	}
	stored, err := p.pending.Add(ctx, g.id, g.rows)
	if err != nil {
		return nil, false, fmt.Errorf("labeler: pending store: group %s: %w: %w", g.id, stage.ErrUnavailable, err)
	}
	return whole(g.id, g.size, stored)
}

// label scores and shapes complete groups.
func (p *Processor) label(ctx context.Context, groups [][]schemas.Verified) ([]schemas.Labeled, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	start := time.Now()
	var rs []schemas.Rollout // every row of groups, in order
	for _, g := range groups {
		for i := range g {
			rs = append(rs, g[i].Rollout)
		}
	}
	var scores, refs [][]float32
	labeler, reference := "", ""
	if p.shape.Shaper == shaping.WSGRPO {
		var err error
		if scores, refs, err = p.score(ctx, rs); err != nil {
			return nil, err
		}
		labeler = p.scorer.ID()
		if refs != nil {
			reference = p.scorer.(ReferenceScorer).Reference()
		}
	}
	if refs == nil && p.ref != nil {
		var err error
		if refs, err = p.referencePass(ctx, rs); err != nil {
			return nil, err
		}
		reference = p.ref.Reference()
	}
	// Reference log-probabilities are an optimisation for the learner: a
	// list that does not fit its row is left off (the learner computes it).
	for i := range refs {
		if len(refs[i]) != len(rs[i].CompletionTokenIDs) {
			refs[i] = nil
		}
	}
	var out []schemas.Labeled
	var kept, dropped, oneMember, dropRows int64
	next, at := 0, 0 // the next row's index in scores, and in refs
	for _, g := range groups {
		sr := make([]shaping.Rollout, len(g))
		rows := make([]schemas.Labeled, len(g))
		for i := range g {
			rows[i] = schemas.Labeled{Verified: g[i], Shaper: p.shape.Shaper, Labeler: labeler}
			sr[i] = shaping.Rollout{Correct: g[i].Correct, Tokens: len(g[i].CompletionTokenIDs)}
			if refs != nil && refs[at] != nil {
				rows[i].RefLogprobs, rows[i].Reference = refs[at], reference
			}
			at++
			if scores != nil {
				s := scores[next]
				next++
				rows[i].StepScores = s
				f := make([]float64, len(s))
				for t, v := range s {
					f[t] = float64(v)
				}
				r, err := shaping.StepRewards(f)
				if err != nil {
					return nil, fmt.Errorf("%w: row %s: %w", ErrUnscorable, g[i].TrajectoryID, err)
				}
				sr[i].StepRewards = r
				rows[i].StepRewards = f32s(r)
			}
		}
		rewards, err := p.shape.Rewards(sr)
		if err != nil {
			return nil, fmt.Errorf("%w: group %s: %w", ErrUnscorable, g[0].GroupID, err)
		}
		adv := p.shape.Advantages(rewards)
		if len(g) == 1 {
			oneMember++
		}
		if shaping.ZeroVariance(rewards) {
			if p.drop {
				dropped++
				dropRows += int64(len(g))
				continue
			}
			kept++
		}
		for i := range rows {
			rows[i].ShapedReward, rows[i].Advantage = float32(rewards[i]), float32(adv[i])
			if p.steps {
				sa, err := p.shape.StepAdvantages(adv[i], sr[i].StepRewards)
				if err != nil {
					return nil, fmt.Errorf("%w: row %s: %w", ErrUnscorable, g[i].TrajectoryID, err)
				}
				rows[i].StepAdvantages = f32s(sa)
			}
		}
		out = append(out, rows...)
	}
	n := 0
	for _, g := range groups {
		n += len(g)
	}
	per := float64(time.Since(start).Nanoseconds()) / 1e6 / float64(n)
	for i := range out {
		out[i].LabelMs = per
	}
	p.stats.update(func(s *Stats) {
		s.GroupsScored += int64(len(groups))
		s.OneMemberGroups += oneMember
		s.ZeroVarianceKept += kept
		s.ZeroVarianceDropped += dropped
		s.RowsDropped[DropZeroVariance] += dropRows
	})
	return out, nil
}

// score returns the prefix scores of rows, checked (one per prefix,
// finite), and the reference log-probabilities a ReferenceScorer gives
// with them (nil from other scorers).
func (p *Processor) score(ctx context.Context, rs []schemas.Rollout) (scores, refs [][]float32, err error) {
	if rsc, ok := p.scorer.(ReferenceScorer); ok {
		var sc mlabeler.Scores
		sc, err = rsc.Score(ctx, rs)
		scores, refs = sc.Prefix, sc.RefLogprobs
	} else {
		scores, err = p.scorer.PrefixScores(ctx, rs)
	}
	switch {
	case errors.Is(err, mlabeler.ErrInput), errors.Is(err, mlabeler.ErrScore):
		return nil, nil, fmt.Errorf("%w: %w", ErrUnscorable, err)
	case err != nil:
		return nil, nil, fmt.Errorf("labeler: scorer: %w", err)
	case len(scores) != len(rs):
		return nil, nil, fmt.Errorf("%w: the scorer returned %d score lists for %d rows", ErrUnscorable, len(scores), len(rs))
	case refs != nil && len(refs) != len(rs):
		return nil, nil, fmt.Errorf("%w: the scorer returned %d reference log-probability lists for %d rows", ErrUnscorable, len(refs), len(rs))
	}
	for i, s := range scores {
		if len(s) != len(rs[i].StepEnds)+1 {
			return nil, nil, fmt.Errorf("%w: row %s: %d prefix scores for %d steps", ErrUnscorable, rs[i].TrajectoryID, len(s), len(rs[i].StepEnds))
		}
		for t, v := range s {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, nil, fmt.Errorf("%w: row %s: prefix %d score %v", ErrUnscorable, rs[i].TrajectoryID, t, v)
			}
		}
	}
	return scores, refs, nil
}

// referencePass computes the reference log-probabilities of rows with the
// ReferencePass. A failure is transient, unless
// the rows cannot be scored (too long for the reference policy), which
// leaves them without: the learner runs its own pass then.
func (p *Processor) referencePass(ctx context.Context, rs []schemas.Rollout) ([][]float32, error) {
	refs, err := p.ref.TokenLogprobs(ctx, rs)
	switch {
	case errors.Is(err, mlabeler.ErrInput):
		p.log.Warn("rows the reference policy cannot take: no reference log-probs attached", "rows", len(rs), "err", err)
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("labeler: reference pass: %w", err)
	case len(refs) != len(rs):
		return nil, fmt.Errorf("%w: the reference pass returned %d lists for %d rows", ErrUnscorable, len(refs), len(rs))
	}
	return refs, nil
}

func f32s(xs []float64) []float32 {
	if xs == nil {
		return nil
	}
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}
