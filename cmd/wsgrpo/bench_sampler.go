package main

import (
	"context"
	"fmt"
	"time"

	"github.com/wsgrpo/wsgrpo/bench/sampling"
	"github.com/wsgrpo/wsgrpo/bench/verifying"
)

// benchSampler prints the sampler stage's tokens/s and rollouts/s beside
// raw decoding of the same model, with 1 and 2 workers, while a new policy
// version is published every second.
func benchSampler(ctx context.Context, b *benchEnv) error {
	rt, err := b.runtime()
	if err != nil {
		return err
	}
	o := sampling.Options{DModel: 128, Layers: 4, Prompts: 8, Samples: 8, NewTokens: 256, Batches: 4, SwapEvery: time.Second}
	if b.quick {
		o.DModel, o.Layers, o.NewTokens, o.Batches = 32, 2, 32, 1
	}
	tw := b.table(fmt.Sprintf("sampler vs raw decode (d_model %d, %d layers, %d prompts x G %d, up to %d new tokens; a version swap costs the rows with new versions the difference)",
		o.DModel, o.Layers, o.Prompts, o.Samples, o.NewTokens),
		"workers", "new versions", "sampler tok/s", "rollouts/s", "raw decode tok/s", "sampler/raw", "versions sampled", "swaps")
	for _, c := range []struct {
		workers int
		swaps   bool
	}{{1, false}, {1, true}, {2, false}, {2, true}} {
		oo := o
		oo.Workers = c.workers
		oo.Batches = o.Batches * c.workers
		every := "none"
		if !c.swaps {
			oo.SwapEvery = 0
		} else {
			every = "every " + o.SwapEvery.String()
		}
		res, err := sampling.Run(ctx, rt, oo)
		if err != nil {
			return err
		}
		b.samplerRollouts = max(b.samplerRollouts, res.RolloutsPS)
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.1f\t%.0f\t%.2f\t%d\t%d\n", c.workers, every, res.TokensPerSec, res.RolloutsPS, res.RawTokensPerSec, res.Ratio(), res.Versions, res.Swaps)
	}
	return tw.Flush()
}

// benchVerifier prints the verifier's rows/s on 64-row batches of arith
// completions and, after the sampler suite in the same run, how many times
// the sampler's best rollouts/s that is.
func benchVerifier(ctx context.Context, b *benchEnv) error {
	batches := 2000
	if b.quick {
		batches = 100
	}
	res, err := verifying.Run(ctx, 64, batches)
	if err != nil {
		return err
	}
	tw := b.table("verifier (64-row batches of arith completions)", "verifier rows/s", "sampler rollouts/s", "verifier/sampler")
	ratio := "(run the sampler suite first)"
	sampler := "-"
	if b.samplerRollouts > 0 {
		sampler = fmt.Sprintf("%.1f", b.samplerRollouts)
		ratio = fmt.Sprintf("%.0fx", res.RowsPerSec/b.samplerRollouts)
	}
	fmt.Fprintf(tw, "%.0f\t%s\t%s\n", res.RowsPerSec, sampler, ratio)
	return tw.Flush()
}
