package generate

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

func TestMeasureDecode(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg := policy.Config{VocabSize: 20, DModel: 16, NLayers: 1, NHeads: 2, DFF: 32, MaxSeq: 8}
	for _, cache := range []bool{true, false} {
		tps, err := MeasureDecode(rt, cfg, 2, 5, cache)
		if err != nil || tps <= 0 {
			t.Fatalf("cache=%v: %v tokens/s, %v", cache, tps, err)
		}
	}
	if _, err := MeasureDecode(rt, cfg, 0, 5, true); !errors.Is(err, ErrOptions) {
		t.Fatalf("batch 0: %v", err)
	}
	cfg.NHeads = 3
	if _, err := MeasureDecode(rt, cfg, 1, 5, true); !errors.Is(err, policy.ErrConfig) {
		t.Fatalf("bad config: %v", err)
	}
}

func TestMeasureFromBlob(t *testing.T) {
	rt := orttest.Runtime(t)
	tok := tokenizer.Default()
	cfg := policy.Config{VocabSize: tok.VocabSize(), DModel: 16, NLayers: 1, NHeads: 2, DFF: 32, MaxSeq: 16}
	c, err := checkpoint.New(cfg, tok, 1)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := checkpoint.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	mean, fastest, err := MeasureFromBlob(rt, blob, 2)
	if err != nil || mean <= 0 || fastest <= 0 || fastest > mean {
		t.Fatalf("mean %v, fastest %v, err %v", mean, fastest, err)
	}
	for _, tc := range []struct {
		name string
		blob []byte
		n    int
	}{
		{"no repetitions", blob, 0},
		{"junk blob", []byte("junk"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := MeasureFromBlob(rt, tc.blob, tc.n); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// BenchmarkReadySampler measures turning a checkpoint blob into a ready
// sampler (FromBlob + Prepare, MeasureFromBlob) for the decode benchmark's
// model sizes.
func BenchmarkReadySampler(b *testing.B) {
	rt := orttest.Runtime(b)
	tok := tokenizer.Default()
	for _, d := range []int{128, 256} {
		b.Run(fmt.Sprintf("d%d_l4", d), func(b *testing.B) {
			cfg := policy.Config{VocabSize: tok.VocabSize(), DModel: d, NLayers: 4, NHeads: 4, DFF: 4 * d, MaxSeq: 264}
			c, err := checkpoint.New(cfg, tok, 1)
			if err != nil {
				b.Fatal(err)
			}
			blob, err := checkpoint.Marshal(c)
			if err != nil {
				b.Fatal(err)
			}
			mean, fastest, err := MeasureFromBlob(rt, blob, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(mean.Seconds()*1e3, "ms/ready")
			b.ReportMetric(fastest.Seconds()*1e3, "min-ms/ready")
			b.ReportMetric(float64(len(blob))/(1<<20), "blob-MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkDecode measures sampling throughput at batch 16, 256 new tokens,
// for two model sizes, with the KV cache and with full recompute. The
// tokens/s metric counts generated tokens.
func BenchmarkDecode(b *testing.B) {
	rt := orttest.Runtime(b)
	const batch, newTokens = 16, 256
	for _, d := range []int{128, 256} {
		cfg := policy.Config{VocabSize: 96, DModel: d, NLayers: 4, NHeads: 4, DFF: 4 * d, MaxSeq: benchPromptLen + newTokens}
		w, err := policy.Init(cfg, 1)
		if err != nil {
			b.Fatal(err)
		}
		for _, cache := range []bool{true, false} {
			b.Run(fmt.Sprintf("d%d_l4_cache=%v", d, cache), func(b *testing.B) {
				var g *onnx.Model
				if cache {
					g, err = policy.KVGraph(cfg, w)
				} else {
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
