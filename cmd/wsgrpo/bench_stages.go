package main

import (
	"context"
	"fmt"
	"time"

	"github.com/wsgrpo/wsgrpo/bench/labeling"
	"github.com/wsgrpo/wsgrpo/bench/learning"
)

// benchLabeler prints the labeler stage's rows/s with the ws-grpo shaper
// (preference model over the reference policy's features) and with grpo,
// each beside the raw featurizer forward pass of the same rows, and the
// preference-model fit's pairs/s.
func benchLabeler(ctx context.Context, b *benchEnv) error {
	rt, err := b.runtime()
	if err != nil {
		return err
	}
	o := labeling.Options{}
	if b.quick {
		o = labeling.Options{DModel: 32, Layers: 1, Groups: 2, G: 4, Batches: 2, FitPairs: 64, FitEpochs: 2}
	}
	res, err := labeling.Run(ctx, rt, o)
	if err != nil {
		return err
	}
	o = res.Options
	tw := b.table(fmt.Sprintf("labeler stage vs raw featurizer forward pass (d_model %d, %d layers, %d-row verified batches of %.0f tokens and %.1f steps, %d batches, %d ORT thread(s))",
		o.DModel, o.Layers, res.Rows, res.TokensPerRow, res.Steps, o.Batches, b.cfg.ortConfig().IntraOpThreads),
		"shaper", "per batch", "labeler rows/s", "raw forward rows/s", "labeler/raw")
	for _, s := range res.Stages {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.2f\n", s.Shaper, s.PerBatch.Round(100*time.Microsecond), s.RowsPerSec, s.RawRowsPerSec, s.Ratio())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(b.w, "raw forward: the featurizer's ONNX Runtime pass over the same rows at every prefix position; grpo runs none (its ratio is how much cheaper the stage is without a scorer)")
	f := res.Fit
	tw = b.table(fmt.Sprintf("labeler fit: FitPairs on %d random pairs of width %d (hidden %d, %d epochs)", f.Pairs, o.DModel, 512, f.Epochs),
		"train pairs", "held-out pairs", "steps", "fit", "pairs/s (x epochs)")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%.2fs\t%.0f\n", f.Pairs-f.HeldOutPairs, f.HeldOutPairs, f.Steps, f.Seconds, res.FitPairsPerSec)
	return tw.Flush()
}

// benchLearner prints the learner stage's update time split and trained
// tokens/s beside the raw training step on the same shapes, with and
// without the KL term; with --rss also the peak RSS of a learner at
// d_model 256 (benchLearnerRSS).
func benchLearner(ctx context.Context, b *benchEnv) error {
	rt, err := b.runtime()
	if err != nil {
		return err
	}
	o := learning.Options{Warmup: 1, Updates: 5}
	if b.quick {
		o = learning.Options{DModel: 32, Layers: 1, Groups: 2, G: 4, Prompt: 5, Completion: 11, MicroBatch: 4, Warmup: 1, Updates: 2}
	}
	var rs []learning.Result
	for _, c := range []struct{ noKL, labelerRef bool }{{false, false}, {false, true}, {true, false}} {
		oo := o
		oo.NoKL, oo.LabelerRef = c.noKL, c.labelerRef
		r, err := learning.Run(ctx, rt, oo)
		if err != nil {
			return err
		}
		rs = append(rs, r)
	}
	r := rs[0]
	tw := b.table(fmt.Sprintf("learner vs raw training step (d_model %d, %d layers, %d params, %d groups x G %d = %d sequences of %d tokens, micro-batch %d, %d timed updates; goal learner/raw >= 0.8)",
		r.Options.DModel, r.Options.Layers, r.Params, r.Options.Groups, r.Options.G, r.Rows, r.Options.Prompt+r.Options.Completion-1, r.Options.MicroBatch, r.Options.Updates),
		"KL", "update", "wait", "ref", "fwd-bwd", "optimizer", "publish", "learner tok/s", "raw step", "raw tok/s", "learner/raw", "without ref")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1e3) }
	for _, r := range rs {
		kl := "on, learner's ref pass"
		switch {
		case r.Options.NoKL:
			kl = "off"
		case r.Options.LabelerRef:
			kl = "on, labeler's ref log-probs"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%.0f\t%.2f\t%.2f\n", kl, ms(r.Update), ms(r.Wait), ms(r.Ref),
			ms(r.ForwardBackward), ms(r.Optimizer), ms(r.Publish), r.TokensPerSec, ms(r.Raw), r.RawTokensPerSec, r.Ratio(), r.UpdateOnlyRatio())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(b.w, "wait: time between updates, which here holds the raw step and building the batches besides ref (the reference passes); tok/s: completion tokens trained")
	fmt.Fprintln(b.w, "labeler's ref log-probs: the rows carry the reference log-probs a ws-grpo labeler with the confidence features computes anyway (computed outside the timed region, as upstream)")
	if b.rss {
		return benchLearnerRSS(ctx, b)
	}
	return nil
}
