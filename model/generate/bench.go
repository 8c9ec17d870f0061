package generate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// benchPromptLen is the prompt length MeasureDecode uses.
const benchPromptLen = 8

// MeasureDecode times sampling batch completions of newTokens tokens each
// (EOS disabled, temperature 1) from a randomly initialised policy of
// architecture cfg, with the KV cache or by full recompute, and returns
// generated tokens per second. Prompts are benchPromptLen random tokens;
// cfg.MaxSeq is raised if it cannot hold prompt plus completion. The time
// includes the prefill but not session creation (one warm-up Generate runs
// first).
func MeasureDecode(rt *ort.Runtime, cfg policy.Config, batch, newTokens int, useCache bool) (float64, error) {
	if batch < 1 || newTokens < 1 {
		return 0, fmt.Errorf("%w: batch %d, new tokens %d", ErrOptions, batch, newTokens)
	}
	cfg.MaxSeq = max(cfg.MaxSeq, benchPromptLen+newTokens)
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
	m, err := Load(rt, data, nil)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	m.MaxSeq = cfg.MaxSeq
	rng := rand.New(rand.NewPCG(2, 3))
	prompts := make([][]int32, batch)
	for i := range prompts {
		prompts[i] = make([]int32, benchPromptLen)
		for j := range prompts[i] {
			prompts[i][j] = int32(rng.IntN(cfg.VocabSize))
		}
	}
	o := Options{Temperature: 1, MaxNewTokens: newTokens, EOS: -1, Seed: 4}
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

// MeasureFromBlob times turning a checkpoint blob (checkpoint.Marshal) into
// a ready sampler: FromBlob (decode the weights, build the KV-cache graph)
// plus Prepare (create its ONNX Runtime session). It does this n times,
// closing each model, and returns the mean and fastest time.
func MeasureFromBlob(rt *ort.Runtime, blob []byte, n int) (mean, fastest time.Duration, err error) {
	if n < 1 {
		return 0, 0, fmt.Errorf("%w: need a positive repetition count, got %d", ErrOptions, n)
	}
	var total time.Duration
	for i := range n {
		start := time.Now()
		m, _, err := FromBlob(rt, blob, nil)
		if err != nil {
			return 0, 0, err
		}
		err = m.Prepare()
		d := time.Since(start)
		if cerr := m.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, 0, err
		}
		total += d
		if i == 0 || d < fastest {
			fastest = d
		}
	}
	return total / time.Duration(n), fastest, nil
}
