// Package decode measures the sampler's decode throughput: generated tokens
// per second of a randomly initialised policy, with the KV cache and by full
// recompute (its baseline). `wsgrpo bench decode` and the Go benchmarks of
// model/generate report it.
package decode

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/wsgrpo/wsgrpo/model/generate"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// PromptLen is the prompt length Throughput uses.
const PromptLen = 8

// Throughput times sampling batch completions of newTokens tokens each
// (EOS disabled, temperature 1) from a randomly initialised policy of
// architecture cfg, with the KV cache or by full recompute, and returns
// generated tokens per second. Prompts are PromptLen random tokens;
// cfg.MaxSeq is raised if it cannot hold prompt plus completion. The time
// includes the prefill but not session creation (one warm-up Generate runs
// first).
func Throughput(rt *ort.Runtime, cfg policy.Config, batch, newTokens int, useCache bool) (float64, error) {
	if batch < 1 || newTokens < 1 {
		return 0, fmt.Errorf("%w: batch %d, new tokens %d", generate.ErrOptions, batch, newTokens)
	}
	cfg.MaxSeq = max(cfg.MaxSeq, PromptLen+newTokens)
	w, err := policy.Init(cfg, 1)
	if err != nil {
		return 0, err
	}
	var g *onnx.Model
	if useCache {
		g, err = policy.KVGraph(cfg, w)
	} else {
		g, err = policy.FullGraph(cfg, w, onnx.Float)
	}
	if err != nil {
		return 0, err
	}
	data, err := g.Marshal()
	if err != nil {
		return 0, err
	}
	m, err := generate.Load(rt, data, nil)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	m.MaxSeq = cfg.MaxSeq
	rng := rand.New(rand.NewPCG(2, 3))
	prompts := make([][]int32, batch)
	for i := range prompts {
		prompts[i] = make([]int32, PromptLen)
		for j := range prompts[i] {
			prompts[i][j] = int32(rng.IntN(cfg.VocabSize))
		}
	}
	o := generate.Options{Temperature: 1, MaxNewTokens: newTokens, EOS: -1, Seed: 4}
	warm := o
	warm.MaxNewTokens = 2
	if _, err := m.Generate(context.Background(), prompts, warm); err != nil {
		return 0, err
	}
	start := time.Now()
	out, err := m.Generate(context.Background(), prompts, o)
	if err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	n := 0
	for _, c := range out {
		n += len(c.Tokens)
	}
	return float64(n) / elapsed.Seconds(), nil
}
