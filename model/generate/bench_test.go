package generate

import (
	"context"
	"fmt"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// benchPromptLen is the prompt length of BenchmarkDecode (as in
// bench/decode).
const benchPromptLen = 8

// BenchmarkDecode measures sampling throughput at batch 16, 256 new tokens,
// for two model sizes, with the in-place KV cache (policy.InPlaceKVGraph,
// kv=inplace), the concatenating KV cache (policy.KVGraph, kv=concat) and
// full recompute (kv=none). The tokens/s metric counts generated tokens.
func BenchmarkDecode(b *testing.B) {
	rt := orttest.Runtime(b)
	const batch, newTokens = 16, 256
	for _, d := range []int{128, 256} {
		cfg := policy.Config{VocabSize: 96, DModel: d, NLayers: 4, NHeads: 4, DFF: 4 * d, MaxSeq: benchPromptLen + newTokens}
		w, err := policy.Init(cfg, 1)
		if err != nil {
			b.Fatal(err)
		}
		for _, kv := range []string{"inplace", "concat", "none"} {
			b.Run(fmt.Sprintf("d%d_l4_kv=%s", d, kv), func(b *testing.B) {
				var g *onnx.Model
				switch kv {
				case "inplace":
					g, err = policy.InPlaceKVGraph(cfg, w)
				case "concat":
					g, err = policy.KVGraph(cfg, w)
				default:
					g, err = policy.FullGraph(cfg, w, onnx.Float)
				}
				if err != nil {
					b.Fatal(err)
				}
				data, err := g.Marshal()
				if err != nil {
					b.Fatal(err)
				}
				m, err := Load(rt, data, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = m.Close() })
				prompts := make([][]int32, batch)
				for i := range prompts {
					prompts[i] = []int32{1, 5, 9, 13, 17, 21, 25, int32(i)}
				}
				o := Options{Temperature: 1, MaxNewTokens: newTokens, EOS: -1, Seed: 1}
				warm := o
				warm.MaxNewTokens = 2
				if _, err := m.Generate(context.Background(), prompts, warm); err != nil {
					b.Fatal(err) // opens the session outside the timed loop
				}
				tokens := 0
				for b.Loop() {
					out, err := m.Generate(context.Background(), prompts, o)
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range out {
						tokens += len(c.Tokens)
					}
				}
				b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}

// BenchmarkFromBlob measures what a sampler pays to switch to a newly
// published policy: decode the blob, build and encode the KV graph, open
// the ONNX Runtime session (by a one-token Generate).
func BenchmarkFromBlob(b *testing.B) {
	rt := orttest.Runtime(b)
	tok := tokenizer.Default()
	c, err := checkpoint.New(policy.DefaultConfig(tok.VocabSize()), tok, 1)
	if err != nil {
		b.Fatal(err)
	}
	blob, err := checkpoint.Marshal(c)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		m, _, err := FromBlob(rt, blob, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Generate(context.Background(), [][]int32{{tok.BOS()}}, Options{MaxNewTokens: 1, EOS: -1}); err != nil {
			b.Fatal(err)
		}
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(blob)), "blob_bytes")
}
