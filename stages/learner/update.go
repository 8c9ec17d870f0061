package learner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/train"
)

// update trains one step on groups (complete, taken from the head of the
// ready queue): forward-backward over micro-batches, a check that loss and
// gradient are finite, AdamW, then version+1 is published. A non-finite
// step changes nothing and its rows are dropped. The groups leave the
// queue either way, unless ONNX Runtime fails (then they stay and the
// error is returned).
func (p *Processor) update(ctx context.Context, groups []*group) error {
	start := p.now()
	m := StepMetrics{Step: p.step + 1, Version: p.version, Groups: len(groups), WaitMs: ms(start.Sub(p.lastEnd)), RefMs: p.refMs, RefFromLabeler: p.refRows}
	var rows []*row
	for _, g := range groups {
		if err := p.reference(g); err != nil {
			return fmt.Errorf("learner: %w", err)
		}
		for _, k := range sortedKeys(g.rows) {
			if r := g.rows[k]; r.drop == "" {
				rows = append(rows, r)
			}
		}
	}
	if len(rows) == 0 {
		// Nothing to train (every completion empty or too long): the
		// groups are done without an update.
		p.finish(groups, 0)
		return nil
	}
	mbs := split(rows, p.opts.MicroBatch)
	feeds := make([]map[string]*ort.Tensor, len(mbs))
	for i, mb := range mbs {
		f, err := p.feeds(mb, len(rows), len(mbs))
		if err != nil {
			return fmt.Errorf("learner: %w", err)
		}
		feeds[i] = f
	}
	p.describe(&m, rows)
	m.MicroBatches = len(mbs)

	t0 := p.now()
	res, err := p.tr.Gradients(feeds...)
	m.ForwardBackwardMs = ms(p.now().Sub(t0))
	if err != nil {
		return fmt.Errorf("learner: forward-backward: %w", err)
	}
	m.Loss = res.Loss
	m.KL, m.ClipFrac, m.Ratio = res.Metrics[train.OutputKL], res.Metrics[train.OutputClipFrac], res.Metrics[train.OutputRatio]
	t1 := p.now()
	var st optim.StepStats
	if finite(res.Loss) {
		st, err = p.tr.Apply()
	} else {
		err = fmt.Errorf("loss %v: %w", res.Loss, optim.ErrNonFinite)
		st.GradNorm = math.NaN()
	}
	m.OptimizerMs = ms(p.now().Sub(t1))
	m.GradNorm = st.GradNorm
	switch {
	case errors.Is(err, optim.ErrNonFinite):
		m.Skipped = true
		p.stats.Skipped++
		p.drop(DropSkippedUpdate, len(rows))
		p.log.Warn("update skipped: non-finite loss or gradient; weights and optimizer unchanged",
			"step", m.Step, "loss", res.Loss, "grad_norm", st.GradNorm, "rows", len(rows))
		p.finish(groups, 0)
		err = nil
	case err != nil:
		return fmt.Errorf("learner: optimizer: %w", err)
	default:
		p.step++
		p.version++
		p.published = false
		p.stats.RowsTrained += int64(len(rows))
		m.Version = p.version
		m.MeanStaleness = float64(p.version) - m.MeanStaleness
		p.finish(groups, p.step)
		p.purgeStale()
		t2 := p.now()
		err = p.announce(ctx)
		m.PublishMs = ms(p.now().Sub(t2))
		if err != nil {
			p.log.Warn("new version not published; retried on the next batch", "version", p.version, "err", err)
		}
		if p.step%int64(p.opts.CheckpointEvery) == 0 {
			t3 := p.now()
			if cerr := p.checkpoint(); cerr != nil {
				err = errors.Join(err, cerr)
			}
			m.CheckpointMs = ms(p.now().Sub(t3))
		}
	}
	if p.opts.Sink != nil {
		p.opts.Sink.Step(m)
	}
	p.lastEnd, p.refMs, p.refRows = p.now(), 0, 0
	return err
}

// describe fills the row statistics of m; MeanStaleness holds the mean
// policy version of the rows until the update knows its version.
func (p *Processor) describe(m *StepMetrics, rows []*row) {
	n := float64(len(rows))
	for _, r := range rows {
		l := r.l
		m.Rows++
		m.Tokens += len(l.CompletionTokenIDs)
		m.MeanReward += float64(l.ShapedReward) / n
		if l.Correct {
			m.Accuracy += 1 / n
		}
		m.MeanTokens += float64(len(l.CompletionTokenIDs)) / n
		m.MeanSteps += float64(len(l.StepEnds)) / n
		m.MeanStaleness += float64(l.PolicyVersion) / n
	}
}

// finish takes groups out of the queue and the buffer: their rows are
// resolved as consumed by update step (0: dropped, nothing to make
// durable), and their ids enter the dedup window.
func (p *Processor) finish(groups []*group, step int64) {
	for _, g := range groups {
		for _, k := range sortedKeys(g.rows) {
			r := g.rows[k]
			for _, b := range r.owners {
				b.resolve(step)
			}
			p.consumed.add(r.l.TrajectoryID, step)
			p.buffered--
		}
		g.ready = false
		delete(p.groups, g.id)
	}
	p.ready = slices.DeleteFunc(p.ready, func(g *group) bool { return slices.Contains(groups, g) })
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// joinErrs joins errors.
func joinErrs(errs []error) error { return errors.Join(errs...) }
