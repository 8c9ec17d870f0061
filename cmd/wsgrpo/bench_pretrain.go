package main

import (
	"context"
	"fmt"
	"time"

	"github.com/wsgrpo/wsgrpo/bench/trainstep"
	"github.com/wsgrpo/wsgrpo/pretrain"
)

// benchPretrain prints `wsgrpo pretrain`'s training throughput beside the
// raw training-step benchmark at the same shape (batch, and the mean
// padded length of pretrain's batches), in one run.
func benchPretrain(ctx context.Context, b *benchEnv) error {
	rt, err := b.runtime()
	if err != nil {
		return err
	}
	pc := pretrain.DefaultConfig()
	const skip = 5 // steps before the clock starts (session warm-up)
	pc.Steps, pc.EvalEvery, pc.EvalPrompts, pc.EvalOps = 45, 0, 0, nil
	if b.quick {
		pc.Steps = 12
		pc.Policy.DModel, pc.Policy.NLayers, pc.Policy.DFF = 64, 2, 256
	}
	var t0 time.Time
	var tok0, pad0, tok1, pad1 int64
	var elapsed time.Duration
	if _, err := pretrain.Run(ctx, rt, pc, func(p pretrain.Progress) {
		switch p.Step {
		case skip:
			t0, tok0, pad0 = time.Now(), p.Tokens, p.PaddedTokens
		case pc.Steps:
			elapsed, tok1, pad1 = time.Since(t0), p.Tokens, p.PaddedTokens
		}
	}, b.log); err != nil {
		return err
	}
	steps := pc.Steps - skip
	realTPS := float64(tok1-tok0) / elapsed.Seconds()
	padTPS := float64(pad1-pad0) / elapsed.Seconds()
	seq := int((pad1 - pad0) / int64(steps*pc.Batch))
	raw, err := trainstep.Run(rt, trainstep.Options{Policy: pc.Policy, Batch: pc.Batch, Seq: seq, Warmup: 2, Steps: max(steps/4, 3)}, b.log)
	if err != nil {
		return err
	}
	rawTPS := float64(raw.Tokens) / raw.StepTime.Seconds()
	tw := b.table(fmt.Sprintf("pretrain vs raw training step (d_model %d, %d layers, batch %d, mean padded length %d, %d ORT threads)",
		pc.Policy.DModel, pc.Policy.NLayers, pc.Batch, seq, b.cfg.ORT.Threads),
		"pretrain real tok/s", "pretrain padded tok/s", "raw step tok/s", "real/raw", "padded/raw", "padding")
	fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.1f%%\n", realTPS, padTPS, rawTPS, realTPS/rawTPS, padTPS/rawTPS,
		100*(1-float64(tok1-tok0)/float64(pad1-pad0)))
	return tw.Flush()
}
