package generate

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// testPolicy returns the config and weights of one random policy over the
// default character tokenizer's vocabulary, with a head size (16) that the
// in-place KV graph accepts.
func testPolicy(t testing.TB) (policy.Config, policy.Weights) {
	t.Helper()
	cfg := policy.Config{VocabSize: tokenizer.Default().VocabSize(), DModel: 32, NLayers: 2, NHeads: 2, DFF: 64, MaxSeq: 48}
	w, err := policy.Init(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range w {
		if len(p.Shape) == 2 {
			for i := range p.Data {
				p.Data[i] *= 20 // peaked distributions, so sampling paths differ visibly
			}
		}
	}
	return cfg, w
}

// loadGraph builds a graph of cfg's policy, encodes and loads it.
func loadGraph(t testing.TB, rt *ort.Runtime, cfg policy.Config, build func() (*onnx.Model, error)) *Model {
	t.Helper()
	g, err := build()
	if err != nil {
		t.Fatal(err)
	}
	data, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(rt, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.MaxSeq = cfg.MaxSeq
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// testModels returns the KV-cache and full-sequence graphs of testPolicy.
func testModels(t testing.TB, rt *ort.Runtime) (kv, full *Model, cfg policy.Config) {
	t.Helper()
	cfg, w := testPolicy(t)
	kv = loadGraph(t, rt, cfg, func() (*onnx.Model, error) { return policy.KVGraph(cfg, w) })
	full = loadGraph(t, rt, cfg, func() (*onnx.Model, error) { return policy.FullGraph(cfg, w, onnx.Float) })
	return kv, full, cfg
}

// testInPlace returns the in-place KV-cache graph of testPolicy.
func testInPlace(t testing.TB, rt *ort.Runtime) *Model {
	t.Helper()
	cfg, w := testPolicy(t)
	return loadGraph(t, rt, cfg, func() (*onnx.Model, error) { return policy.InPlaceKVGraph(cfg, w) })
}

// testPrompts encodes prompts of different lengths.
func testPrompts() [][]int32 {
	tok := tokenizer.Default()
	var out [][]int32
	for _, s := range []string{"12+7=", "What is 3*4? ", "9", "(5-2)*8 = "} {
		out = append(out, append([]int32{tok.BOS()}, tok.Encode(s)...))
	}
	return out
}

func TestLoadSignature(t *testing.T) {
	rt := orttest.Runtime(t)
	kv, full, cfg := testModels(t, rt)
	if kv.Layers() != cfg.NLayers || !kv.HasCache() || kv.sig.heads != int64(cfg.NHeads) || kv.sig.headDim != int64(cfg.HeadDim()) {
		t.Fatalf("KV signature %+v", kv.sig)
	}
	if full.HasCache() || full.sig.hasPos || !full.sig.hasMask || full.sig.vocabSize != cfg.VocabSize {
		t.Fatalf("full signature %+v", full.sig)
	}
	if kv.InPlace() || full.InPlace() {
		t.Fatalf("in place: KV graph %v, full graph %v", kv.InPlace(), full.InPlace())
	}
	ip := testInPlace(t, rt)
	if !ip.InPlace() || ip.Layers() != cfg.NLayers || ip.sig.heads != int64(cfg.NHeads) || ip.sig.headDim != int64(cfg.HeadDim()) {
		t.Fatalf("in-place signature %+v", ip.sig)
	}
}

// TestCacheMatchesRecompute checks that KV-cache sampling, full recompute on
// the full graph, and the KV graph without its cache draw the same tokens
// with the same log-probabilities under one seed.
func TestCacheMatchesRecompute(t *testing.T) {
	rt := orttest.Runtime(t)
	kv, full, _ := testModels(t, rt)
	tok := tokenizer.Default()
	o := Options{Temperature: 0.9, TopP: 0.95, MaxNewTokens: 20, EOS: tok.EOS(), PAD: tok.PAD(), Seed: 42}
	ctx := context.Background()
	ref, err := kv.Generate(ctx, testPrompts(), o)
	if err != nil {
		t.Fatal(err)
	}
	noCache := o
	noCache.NoCache = true
	ip := testInPlace(t, rt)
	for name, run := range map[string]func() ([]Completion, error){
		"full graph":           func() ([]Completion, error) { return full.Generate(ctx, testPrompts(), o) },
		"kv graph, none":       func() ([]Completion, error) { return kv.Generate(ctx, testPrompts(), noCache) },
		"kv again":             func() ([]Completion, error) { return kv.Generate(ctx, testPrompts(), o) },
		"in-place graph":       func() ([]Completion, error) { return ip.Generate(ctx, testPrompts(), o) },
		"in-place graph, none": func() ([]Completion, error) { return ip.Generate(ctx, testPrompts(), noCache) },
		"in-place again":       func() ([]Completion, error) { return ip.Generate(ctx, testPrompts(), o) },
	} {
		t.Run(name, func(t *testing.T) {
			got, err := run()
			if err != nil {
				t.Fatal(err)
			}
			for i := range ref {
				if len(got[i].Tokens) != len(ref[i].Tokens) || got[i].Finish != ref[i].Finish {
					t.Fatalf("row %d: %v (%s) vs cache %v (%s)", i, got[i].Tokens, got[i].Finish, ref[i].Tokens, ref[i].Finish)
				}
				for j := range ref[i].Tokens {
					if got[i].Tokens[j] != ref[i].Tokens[j] {
						t.Fatalf("row %d token %d: %d vs cache %d", i, j, got[i].Tokens[j], ref[i].Tokens[j])
					}
					if d := math.Abs(float64(got[i].Logprobs[j] - ref[i].Logprobs[j])); d > 1e-4 {
						t.Fatalf("row %d logprob %d: %v vs cache %v", i, j, got[i].Logprobs[j], ref[i].Logprobs[j])
					}
				}
			}
		})
	}
}

// TestRowIndependence checks that a row's completion does not depend on the
// other prompts in its batch (padding and per-row random streams).
func TestRowIndependence(t *testing.T) {
	rt := orttest.Runtime(t)
	kv, _, _ := testModels(t, rt)
	tok := tokenizer.Default()
	o := Options{Temperature: 1, MaxNewTokens: 12, EOS: -1, PAD: tok.PAD(), Seed: 9}
	ctx := context.Background()
	batch, err := kv.Generate(ctx, testPrompts(), o)
	if err != nil {
		t.Fatal(err)
	}
	alone, err := kv.Generate(ctx, testPrompts()[:1], o)
	if err != nil {
		t.Fatal(err)
	}
	for j := range alone[0].Tokens {
		if alone[0].Tokens[j] != batch[0].Tokens[j] {
			t.Fatalf("row 0 alone %v, in batch %v", alone[0].Tokens, batch[0].Tokens)
		}
	}
	other := o
	other.Seed = 10
	diff, err := kv.Generate(ctx, testPrompts(), other)
	if err != nil {
		t.Fatal(err)
	}
	same := true
	for i := range diff {
		for j := range diff[i].Tokens {
			same = same && diff[i].Tokens[j] == batch[i].Tokens[j]
		}
	}
	if same {
		t.Fatal("a different seed drew the same tokens in every row")
	}
}

func TestFinishReasons(t *testing.T) {
	rt := orttest.Runtime(t)
	kv, _, cfg := testModels(t, rt)
	tok := tokenizer.Default()
	ctx := context.Background()
	greedy := Options{MaxNewTokens: 10, EOS: -1, PAD: tok.PAD()}
	base, err := kv.Generate(ctx, testPrompts(), greedy)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range base {
		if c.Finish != FinishLength || len(c.Tokens) != 10 || len(c.Logprobs) != 10 {
			t.Fatalf("row %d: %d tokens, finish %s", i, len(c.Tokens), c.Finish)
		}
		for _, lp := range c.Logprobs {
			if lp > 0 || math.IsNaN(float64(lp)) {
				t.Fatalf("row %d: logprob %v", i, lp)
			}
		}
	}
	t.Run("eos", func(t *testing.T) {
		o := greedy
		o.EOS = base[0].Tokens[3]
		got, err := kv.Generate(ctx, testPrompts(), o)
		if err != nil {
			t.Fatal(err)
		}
		c := got[0]
		k := len(c.Tokens) - 1
		if c.Finish != FinishEOS || c.Tokens[k] != o.EOS || k > 3 {
			t.Fatalf("got %v finish %s, want EOS %d by token 3", c.Tokens, c.Finish, o.EOS)
		}
	})
	t.Run("extra eos", func(t *testing.T) {
		// Any id of the set ends a completion: row 0 on its fourth token
		// (an extra id) at the latest, with EOS itself never sampled.
		o := greedy
		o.EOS = int32(cfg.VocabSize - 1)
		if slices.Contains(base[0].Tokens, o.EOS) {
			o.EOS = -1
		}
		o.ExtraEOS = []int32{tok.PAD(), base[0].Tokens[3]}
		got, err := kv.Generate(ctx, testPrompts(), o)
		if err != nil {
			t.Fatal(err)
		}
		c := got[0]
		k := len(c.Tokens) - 1
		if c.Finish != FinishEOS || !slices.Contains(o.ExtraEOS, c.Tokens[k]) || k > 3 {
			t.Fatalf("got %v finish %s, want an extra EOS of %v by token 3", c.Tokens, c.Finish, o.ExtraEOS)
		}
	})
	t.Run("stop string", func(t *testing.T) {
		o := greedy
		o.Tokenizer = tok
		text := tok.Decode(base[1].Tokens)
		o.StopStrings = []string{"\x00never", text[4:6]}
		got, err := kv.Generate(ctx, testPrompts(), o)
		if err != nil {
			t.Fatal(err)
		}
		c := got[1]
		if c.Finish != FinishStop || len(c.Tokens) > 6 || !strings.Contains(tok.Decode(c.Tokens), text[4:6]) {
			t.Fatalf("got %q finish %s, want stop on %q", tok.Decode(c.Tokens), c.Finish, text[4:6])
		}
	})
}

func TestGenerateErrors(t *testing.T) {
	rt := orttest.Runtime(t)
	kv, _, cfg := testModels(t, rt)
	ok := Options{MaxNewTokens: 4, EOS: 2}
	tests := []struct {
		name    string
		prompts [][]int32
		mod     func(*Options)
		want    error
	}{
		{"no prompts", nil, func(*Options) {}, ErrPrompt},
		{"empty prompt", [][]int32{{}}, func(*Options) {}, ErrPrompt},
		{"id out of range", [][]int32{{int32(cfg.VocabSize)}}, func(*Options) {}, ErrPrompt},
		{"negative temperature", [][]int32{{5}}, func(o *Options) { o.Temperature = -1 }, ErrOptions},
		{"top-p above 1", [][]int32{{5}}, func(o *Options) { o.TopP = 1.5 }, ErrOptions},
		{"no new tokens", [][]int32{{5}}, func(o *Options) { o.MaxNewTokens = 0 }, ErrOptions},
		{"stop without tokenizer", [][]int32{{5}}, func(o *Options) { o.StopStrings = []string{"x"} }, ErrOptions},
		{"EOS left at the PAD id", [][]int32{{5}}, func(o *Options) { o.EOS, o.PAD = 0, 0 }, ErrOptions},
		{"negative extra EOS", [][]int32{{5}}, func(o *Options) { o.ExtraEOS = []int32{-1} }, ErrOptions},
		{"extra EOS outside the vocabulary", [][]int32{{5}}, func(o *Options) { o.ExtraEOS = []int32{int32(cfg.VocabSize)} }, ErrOptions},
		{"too long", [][]int32{{5}}, func(o *Options) { o.MaxNewTokens = cfg.MaxSeq + 1 }, ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mod(&o)
			if _, err := kv.Generate(context.Background(), tt.prompts, o); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := kv.Generate(ctx, [][]int32{{5}}, ok); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

func TestReadSignatureErrors(t *testing.T) {
	f := func(name string, shape ...onnx.Dim) onnx.ValueInfo {
		return onnx.ValueInfo{Name: name, DataType: onnx.Float, Shape: shape}
	}
	i64 := func(name string) onnx.ValueInfo { return onnx.ValueInfo{Name: name, DataType: onnx.Int64} }
	b, p := onnx.Dim{Param: "b"}, onnx.Dim{Param: "p"}
	h, dh := onnx.Dim{Value: 2}, onnx.Dim{Value: 8}
	logits := f("logits", b, p, onnx.Dim{Value: 10})
	good := func() *onnx.Signature {
		return &onnx.Signature{
			Inputs: []onnx.ValueInfo{i64("input_ids"), i64("attention_mask"),
				f("past_key_values.0.key", b, h, p, dh), f("past_key_values.0.value", b, h, p, dh)},
			Outputs: []onnx.ValueInfo{logits, f("present.0.key"), f("present.0.value")},
		}
	}
	if sig, err := readSignature(good()); err != nil || sig.layers != 1 || sig.heads != 2 || sig.headDim != 8 || sig.hasPos {
		t.Fatalf("good signature: %+v %v", sig, err)
	}
	tests := []struct {
		name string
		mod  func(*onnx.Signature)
	}{
		{"no input_ids", func(s *onnx.Signature) { s.Inputs[0].Name = "tokens" }},
		{"unknown input", func(s *onnx.Signature) { s.Inputs = append(s.Inputs, i64("use_cache_branch")) }},
		{"no logits", func(s *onnx.Signature) { s.Outputs[0].Name = "scores" }},
		{"half logits", func(s *onnx.Signature) { s.Outputs[0].DataType = onnx.Float16 }},
		{"no present", func(s *onnx.Signature) { s.Outputs = s.Outputs[:2] }},
		{"no value", func(s *onnx.Signature) { s.Inputs = s.Inputs[:3] }},
		{"bad cache name", func(s *onnx.Signature) { s.Inputs[2].Name = "past_key_values.x.key" }},
		{"gap in layers", func(s *onnx.Signature) {
			s.Inputs[2].Name, s.Inputs[3].Name = "past_key_values.1.key", "past_key_values.1.value"
		}},
		{"symbolic heads", func(s *onnx.Signature) { s.Inputs[2].Shape = []onnx.Dim{b, p, p, dh} }},
		{"rank 3 cache", func(s *onnx.Signature) { s.Inputs[3].Shape = []onnx.Dim{b, p, dh} }},
		{"no mask", func(s *onnx.Signature) { s.Inputs = append(s.Inputs[:1], s.Inputs[2:]...) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			tt.mod(s)
			if _, err := readSignature(s); !errors.Is(err, ErrModel) {
				t.Fatalf("got %v, want ErrModel", err)
			}
		})
	}
}

// TestConcurrentGenerate runs Generate from several goroutines on one Model
// and checks each gets the serial result.
func TestConcurrentGenerate(t *testing.T) {
	rt := orttest.Runtime(t)
	kv, _, _ := testModels(t, rt)
	tok := tokenizer.Default()
	o := Options{Temperature: 1, MaxNewTokens: 8, EOS: tok.EOS(), PAD: tok.PAD(), Seed: 3}
	want, err := kv.Generate(context.Background(), testPrompts(), o)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			got, err := kv.Generate(context.Background(), testPrompts(), o)
			if err == nil {
				for i := range want {
					if !slices.Equal(got[i].Tokens, want[i].Tokens) {
						err = errors.New("concurrent result differs: " + tok.Decode(got[i].Tokens))
					}
				}
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Generate(context.Background(), testPrompts(), o); !errors.Is(err, ort.ErrClosed) {
		t.Fatalf("Generate after Close: %v", err)
	}
}

// TestInPlaceMatchesKV checks that the in-place KV graph samples what the
// concatenating KV graph samples (greedy and at temperature 1, with and
// without EOS), with per-token log-probabilities within 1e-4, and that a
// row's completion does not depend on the rest of its batch.
func TestInPlaceMatchesKV(t *testing.T) {
	rt := orttest.Runtime(t)
	kv, _, _ := testModels(t, rt)
	ip := testInPlace(t, rt)
	tok := tokenizer.Default()
	ctx := context.Background()
	tests := []struct {
		name    string
		o       Options
		prompts [][]int32
	}{
		{"greedy", Options{MaxNewTokens: 30, EOS: -1, PAD: tok.PAD()}, testPrompts()},
		{"greedy eos", Options{MaxNewTokens: 30, EOS: tok.EOS(), PAD: tok.PAD()}, testPrompts()},
		{"sampled", Options{Temperature: 1, MaxNewTokens: 30, EOS: -1, PAD: tok.PAD(), Seed: 3}, testPrompts()},
		{"one row", Options{Temperature: 1, MaxNewTokens: 30, EOS: -1, PAD: tok.PAD(), Seed: 3}, testPrompts()[1:2]},
		{"one token", Options{MaxNewTokens: 1, EOS: -1, PAD: tok.PAD()}, testPrompts()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := kv.Generate(ctx, tc.prompts, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ip.Generate(ctx, tc.prompts, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if !slices.Equal(got[i].Tokens, want[i].Tokens) || got[i].Finish != want[i].Finish {
					t.Fatalf("row %d: in place %v (%s), KV %v (%s)", i, got[i].Tokens, got[i].Finish, want[i].Tokens, want[i].Finish)
				}
				for j := range want[i].Logprobs {
					if d := math.Abs(float64(got[i].Logprobs[j] - want[i].Logprobs[j])); d > 1e-4 {
						t.Fatalf("row %d logprob %d: in place %v, KV %v", i, j, got[i].Logprobs[j], want[i].Logprobs[j])
					}
				}
			}
		})
	}
}

// TestLoadGraph: a graph loaded from memory (LoadGraph, whose sessions
// open through ort.Runtime.NewModelSession) reads the same interface and
// samples the same completions as its encoding through Load.
func TestLoadGraph(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg, w := testPolicy(t)
	tok := tokenizer.Default()
	o := Options{MaxNewTokens: 12, EOS: -1, PAD: tok.PAD()}
	for _, tc := range []struct {
		name  string
		build func() (*onnx.Model, error)
	}{
		{"concat", func() (*onnx.Model, error) { return policy.KVGraph(cfg, w) }},
		{"in place", func() (*onnx.Model, error) { return policy.InPlaceKVGraph(cfg, w) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := loadGraph(t, rt, cfg, tc.build)
			g, err := tc.build()
			if err != nil {
				t.Fatal(err)
			}
			m, err := LoadGraph(rt, g, nil)
			if err != nil {
				t.Fatal(err)
			}
			m.MaxSeq = cfg.MaxSeq
			t.Cleanup(func() { _ = m.Close() })
			if m.Layers() != want.Layers() || m.InPlace() != want.InPlace() || m.sig != want.sig {
				t.Fatalf("signature %+v, want %+v", m.sig, want.sig)
			}
			a, err := want.Generate(t.Context(), testPrompts(), o)
			if err != nil {
				t.Fatal(err)
			}
			b, err := m.Generate(t.Context(), testPrompts(), o)
			if err != nil {
				t.Fatal(err)
			}
			for i := range a {
				if !slices.Equal(a[i].Tokens, b[i].Tokens) {
					t.Fatalf("row %d: %v, want %v", i, b[i].Tokens, a[i].Tokens)
				}
			}
		})
	}
	if _, err := LoadGraph(rt, &onnx.Model{}, nil); !errors.Is(err, ErrModel) {
		t.Fatalf("LoadGraph of a model without a graph: %v, want ErrModel", err)
	}
}
