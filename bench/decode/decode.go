// Package decode measures the sampler's decode throughput: generated tokens
// per second of a randomly initialised policy with the in-place KV cache,
// the concatenating KV cache, and by full recompute (the baseline), side by
// side in one run; and sets it against a memory-bound estimate (Traffic
// over a measured Bandwidth). `wsgrpo bench decode` and the Go benchmarks of
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

// Graph is the decoding variant a measurement runs.
type Graph int

// Decoding variants.
const (
	// InPlace decodes with policy.InPlaceKVGraph: a fixed-size cache that
	// ONNX Runtime updates in place.
	InPlace Graph = iota
	// Concat decodes with policy.KVGraph: every step returns the cache
	// grown by one position (Concat of past and new).
	Concat
	// Full recomputes the whole sequence every step with policy.FullGraph.
	Full
)

// Graphs lists every variant, in the order the reports print them.
var Graphs = []Graph{InPlace, Concat, Full}

// String names the variant as the reports print it.
func (g Graph) String() string {
	switch g {
	case InPlace:
		return "kv in place"
	case Concat:
		return "kv concat"
	case Full:
		return "full recompute"
	}
	return fmt.Sprintf("Graph(%d)", int(g))
}

// build returns the encoded graph of variant g.
func (g Graph) build(cfg policy.Config, w policy.Weights) ([]byte, error) {
	var m *onnx.Model
	var err error
	switch g {
	case InPlace:
		m, err = policy.InPlaceKVGraph(cfg, w)
	case Concat:
		m, err = policy.KVGraph(cfg, w)
	case Full:
		m, err = policy.FullGraph(cfg, w, onnx.Float)
	default:
		return nil, fmt.Errorf("%w: decode graph %v", generate.ErrOptions, g)
	}
	if err != nil {
		return nil, err
	}
	return m.Marshal()
}

// Throughput times sampling batch completions of newTokens tokens each
// (EOS disabled, temperature 1) from a randomly initialised policy of
// architecture cfg with variant g, and returns generated tokens per second.
// Prompts are PromptLen random tokens; cfg.MaxSeq is raised if it cannot
// hold prompt plus completion. The time includes the prefill but not
// session creation (one warm-up Generate runs first).
func Throughput(rt *ort.Runtime, cfg policy.Config, batch, newTokens int, g Graph) (float64, error) {
	r, err := Compare(rt, cfg, batch, newTokens, []Graph{g}, 1)
	if err != nil {
		return 0, err
	}
	return r[g][0], nil
}

// Compare measures the variants graphs in one run: rounds rounds, each of
// which times one Generate call (as Throughput) of every variant in turn,
// so that a change in the machine's load hits all of them alike. It
// returns each variant's tokens/s per round.
func Compare(rt *ort.Runtime, cfg policy.Config, batch, newTokens int, graphs []Graph, rounds int) (map[Graph][]float64, error) {
	if batch < 1 || newTokens < 1 || rounds < 1 {
		return nil, fmt.Errorf("%w: batch %d, new tokens %d, rounds %d", generate.ErrOptions, batch, newTokens, rounds)
	}
	cfg.MaxSeq = max(cfg.MaxSeq, PromptLen+newTokens)
	w, err := policy.Init(cfg, 1)
	if err != nil {
		return nil, err
	}
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
	models := make([]*generate.Model, len(graphs))
	defer func() {
		for _, m := range models {
			if m != nil {
				_ = m.Close()
			}
		}
	}()
	for i, g := range graphs {
		data, err := g.build(cfg, w)
		if err != nil {
			return nil, err
		}
		if models[i], err = generate.Load(rt, data, nil); err != nil {
			return nil, err
		}
		models[i].MaxSeq = cfg.MaxSeq
		if _, err := models[i].Generate(context.Background(), prompts, warm); err != nil {
			return nil, err
		}
	}
	res := make(map[Graph][]float64, len(graphs))
	for range rounds {
		for i, g := range graphs {
			start := time.Now()
			out, err := models[i].Generate(context.Background(), prompts, o)
			if err != nil {
				return nil, err
			}
			elapsed := time.Since(start)
			n := 0
			for _, c := range out {
				n += len(c.Tokens)
			}
			res[g] = append(res[g], float64(n)/elapsed.Seconds())
		}
	}
	return res, nil
}
