package hf

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/generate"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// Tolerances against the float64 reference forward. The float32 graphs
// differ from it only by float32 rounding in matrix products of width <= 64,
// softmax and RMSNorm over logits of magnitude about 1-5: errors of a few
// 1e-6 are expected, so 1e-4 absolute plus 1e-4 relative leaves a margin of
// ten or more while any real mistake (a wrong rotation, mask or head
// mapping) shows up as errors of 1e-2 or more. The float64 graph computes
// the same sums in the same precision as the reference: 1e-9.
const (
	tolF32 = 1e-4
	tolF64 = 1e-9
)

// checkpointCases are the test checkpoints: every architecture, in fp32 and
// bf16, one file or sharded with an index.
var checkpointCases = []struct {
	name, arch, dtype string
	sharded           bool
}{
	{"qwen2 fp32", ArchQwen2, "F32", false},
	{"qwen2 bf16 sharded", ArchQwen2, "BF16", true},
	{"qwen3 bf16", ArchQwen3, "BF16", false},
	{"qwen3 fp32 sharded", ArchQwen3, "F32", true},
	{"llama3 fp32", ArchLlama, "F32", false},
	{"llama3 bf16 sharded", ArchLlama, "BF16", true},
}

// testPrompts are sequences of different lengths: padding on both sides
// and a single token.
var testPrompts = [][]int32{{5, 17, 3, 44, 9, 28, 60, 11, 7}, {30, 2, 51, 19, 8}, {13}}

// newSession marshals m and opens a session with all inputs and the given
// outputs.
func newSession(t testing.TB, rt *ort.Runtime, m *onnx.Model, outputs ...string) *ort.Session {
	t.Helper()
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	s, err := rt.NewSession(data, nil, outputs)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// errTracker records the largest error seen against a tolerance.
type errTracker struct {
	t     testing.TB
	tol   float64
	worst float64
}

// check compares got with want.
func (e *errTracker) check(what string, got, want float64) {
	e.t.Helper()
	d := math.Abs(got - want)
	e.worst = max(e.worst, d)
	if !(d <= e.tol*(1+math.Abs(want))) {
		e.t.Fatalf("%s: got %.9g, reference %.9g (|diff| %.3g, tolerance %g·(1+|ref|))", what, got, want, d, e.tol)
	}
}

// toInts converts a prompt to reference ids.
func toInts(s []int32) []int {
	out := make([]int, len(s))
	for i, v := range s {
		out[i] = int(v)
	}
	return out
}

func TestGraphsMatchReference(t *testing.T) {
	rt := orttest.Runtime(t)
	for i, tc := range checkpointCases {
		t.Run(tc.name, func(t *testing.T) {
			a := tinyArchs[tc.arch]
			dir, ts := writeTestCheckpoint(t, a, tc.dtype, tc.sharded, uint64(i+1))
			ck, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if ck.DType != tc.dtype || len(ck.Weights) != len(ts) {
				t.Fatalf("loaded dtype %s, %d tensors; wrote %s, %d", ck.DType, len(ck.Weights), tc.dtype, len(ts))
			}
			for name, want := range ts {
				got := ck.Weights[name]
				if !slices.Equal(got.Shape, want.shape) || !slices.Equal(got.Data, want.data) {
					t.Fatalf("tensor %s differs from what was written", name)
				}
			}
			ref := refModel{a: a, w: ts}
			refLogits := make([][][]float64, len(testPrompts))
			refHidden := make([][][]float64, len(testPrompts))
			for r, p := range testPrompts {
				refLogits[r], refHidden[r] = ref.forward(toInts(p))
			}
			opt := GraphOptions{MaxSeq: 32}
			e32 := &errTracker{t: t, tol: tolF32}
			checkFull(t, rt, ck, opt, refLogits, refHidden, e32)
			e64 := &errTracker{t: t, tol: tolF64}
			opt64 := opt
			opt64.DType = onnx.Double
			checkFull(t, rt, ck, opt64, refLogits, refHidden, e64)
			worst := []float64{e32.worst, e64.worst}
			for _, kv := range kvGraphs {
				ekv := &errTracker{t: t, tol: tolF32}
				checkKV(t, rt, ck, kv.build, kv.inPlace, opt, refLogits, ekv)
				checkGreedy(t, rt, ck, kv.build, kv.inPlace, opt, ref)
				worst = append(worst, ekv.worst)
			}
			t.Logf("max |graph - reference|: FullGraph float32 %.3g, float64 %.3g; KVGraph %.3g; FusedKVGraph %.3g",
				worst[0], worst[1], worst[2], worst[3])
		})
	}
}

// checkFull runs FullGraph on left- and right-padded batches of the test
// prompts and compares the logits and hidden states of every real token
// with the reference.
func checkFull(t *testing.T, rt *ort.Runtime, ck *Checkpoint, opt GraphOptions, refLogits, refHidden [][][]float64, e *errTracker) {
	t.Helper()
	m, err := FullGraph(ck.Config, ck.Weights, opt)
	if err != nil {
		t.Fatalf("FullGraph: %v", err)
	}
	s := newSession(t, rt, m, policy.OutputLogits, policy.OutputHidden)
	v, d := ck.Config.VocabSize, ck.Config.HiddenSize
	for _, left := range []bool{true, false} {
		b, err := policy.NewBatch(testPrompts, 0, left, opt.MaxSeq)
		if err != nil {
			t.Fatal(err)
		}
		shape := []int64{int64(b.Rows), int64(b.Len)}
		out, err := s.Run(map[string]*ort.Tensor{
			policy.InputIDs:  ort.I64Tensor(b.IDs, shape...),
			policy.InputMask: ort.I64Tensor(b.Mask, shape...),
		})
		if err != nil {
			t.Fatalf("full Run: %v", err)
		}
		get := func(name string, i int) float64 {
			if opt.DType == onnx.Double {
				return out[name].F64[i]
			}
			return float64(out[name].F32[i])
		}
		for r, p := range testPrompts {
			for j := range p {
				col := b.Offset[r] + j
				for k := 0; k < v; k++ {
					e.check("full logits", get(policy.OutputLogits, (r*b.Len+col)*v+k), refLogits[r][j][k])
				}
				for k := 0; k < d; k++ {
					e.check("full hidden", get(policy.OutputHidden, (r*b.Len+col)*d+k), refHidden[r][j][k])
				}
			}
		}
	}
}

// graphFunc builds a sampling graph.
type graphFunc func(Config, policy.Weights, GraphOptions) (*onnx.Model, error)

// kvGraphs are the sampling graphs: the primitive one whose cache grows by
// concatenation, and the fused one with an in-place cache.
var kvGraphs = []struct {
	build   graphFunc
	inPlace bool
}{{KVGraph, false}, {FusedKVGraph, true}}

// checkKV runs a sampling graph over a left-padded batch of the test
// prompts: a prefill of the first four columns, then one column per step
// with the cache fed back (or, in place, bound to the same buffers), and
// compares the logits of every real token with the reference.
func checkKV(t *testing.T, rt *ort.Runtime, ck *Checkpoint, build graphFunc, inPlace bool, opt GraphOptions, refLogits [][][]float64, e *errTracker) {
	t.Helper()
	c := ck.Config
	m, err := build(c, ck.Weights, opt)
	if err != nil {
		t.Fatalf("building the sampling graph: %v", err)
	}
	outs := []string{policy.OutputLogits}
	for l := 0; l < c.NumLayers; l++ {
		outs = append(outs, policy.PresentKeyName(l), policy.PresentValueName(l))
	}
	s := newSession(t, rt, m, outs...)
	b, err := policy.NewBatch(testPrompts, 0, true, opt.MaxSeq)
	if err != nil {
		t.Fatal(err)
	}
	rows, n, v := b.Rows, b.Len, c.VocabSize
	capacity := 0
	if inPlace {
		capacity = n + 2
	}
	kvShape := []int64{int64(rows), int64(c.NumKVHeads), int64(capacity), int64(c.HeadDim)}
	past, bound := map[string]*ort.Tensor{}, map[string]*ort.Tensor{}
	for l := 0; l < c.NumLayers; l++ {
		for _, name := range []string{policy.PastKeyName(l), policy.PastValueName(l)} {
			buf := make([]float32, rows*c.KVDim()*capacity)
			for i := range buf {
				buf[i] = sentinel
			}
			past[name] = ort.F32Tensor(buf, kvShape...)
		}
		if inPlace {
			bound[policy.PresentKeyName(l)] = past[policy.PastKeyName(l)]
			bound[policy.PresentValueName(l)] = past[policy.PastValueName(l)]
		}
	}
	for lo := 0; lo < n; {
		hi := min(lo+1, n)
		if lo == 0 {
			hi = min(4, n)
		}
		w := hi - lo
		ids, pos, mask := make([]int64, rows*w), make([]int64, rows*w), make([]int64, rows*hi)
		for r := 0; r < rows; r++ {
			copy(ids[r*w:], b.IDs[r*n+lo:r*n+hi])
			copy(pos[r*w:], b.Positions[r*n+lo:r*n+hi])
			copy(mask[r*hi:], b.Mask[r*n:r*n+hi])
		}
		in := map[string]*ort.Tensor{
			policy.InputIDs:       ort.I64Tensor(ids, int64(rows), int64(w)),
			policy.InputPositions: ort.I64Tensor(pos, int64(rows), int64(w)),
			policy.InputMask:      ort.I64Tensor(mask, int64(rows), int64(hi)),
		}
		for k, val := range past {
			in[k] = val
		}
		out, err := s.RunInto(in, bound)
		if err != nil {
			t.Fatalf("KV step at column %d: %v", lo, err)
		}
		for r := 0; r < rows; r++ {
			for j := 0; j < w; j++ {
				tok := lo + j - b.Offset[r]
				if tok < 0 {
					continue // padding
				}
				for k := 0; k < v; k++ {
					e.check("kv logits", float64(out[policy.OutputLogits].F32[(r*w+j)*v+k]), refLogits[r][tok][k])
				}
			}
		}
		if inPlace {
			checkWritten(t, past, rows*c.NumKVHeads, capacity, c.HeadDim, hi)
		}
		for l := 0; l < c.NumLayers && !inPlace; l++ {
			past[policy.PastKeyName(l)] = out[policy.PresentKeyName(l)]
			past[policy.PastValueName(l)] = out[policy.PresentValueName(l)]
		}
		lo = hi
	}
}

// sentinel fills an in-place cache before the first step.
const sentinel = 12345

// checkWritten checks that an in-place step wrote cache positions 0..hi-1
// of every row and head and left the rest of each buffer alone.
func checkWritten(t *testing.T, bufs map[string]*ort.Tensor, rowsHeads, capacity, dh, hi int) {
	t.Helper()
	for name, buf := range bufs {
		for bh := 0; bh < rowsHeads; bh++ {
			for p := 0; p < capacity; p++ {
				written := buf.F32[(bh*capacity+p)*dh] != sentinel
				if written != (p < hi) {
					t.Fatalf("%s after the step to %d: position %d written = %v", name, hi, p, written)
				}
			}
		}
	}
}

// checkGreedy generates greedily through the generate package with and
// without the KV cache, and checks both against the reference's greedy
// continuation of each prompt alone.
func checkGreedy(t *testing.T, rt *ort.Runtime, ck *Checkpoint, build graphFunc, inPlace bool, opt GraphOptions, ref refModel) {
	t.Helper()
	m, err := build(ck.Config, ck.Weights, opt)
	if err != nil {
		t.Fatal(err)
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	gm, err := generate.Load(rt, data, nil)
	if err != nil {
		t.Fatalf("generate.Load: %v", err)
	}
	t.Cleanup(func() { _ = gm.Close() })
	if gm.InPlace() != inPlace {
		t.Fatalf("generate sees an in-place cache: %v, want %v", gm.InPlace(), inPlace)
	}
	gm.MaxSeq = opt.MaxSeq
	const newTokens = 10
	var got [2][]generate.Completion
	for i, noCache := range []bool{false, true} {
		got[i], err = gm.Generate(t.Context(), testPrompts, generate.Options{MaxNewTokens: newTokens, EOS: -1, NoCache: noCache})
		if err != nil {
			t.Fatalf("Generate(NoCache=%v): %v", noCache, err)
		}
	}
	for r, p := range testPrompts {
		want := ref.greedy(toInts(p), newTokens)
		cached, full := toInts(got[0][r].Tokens), toInts(got[1][r].Tokens)
		if !slices.Equal(cached, full) || !slices.Equal(cached, want) {
			t.Fatalf("prompt %d: greedy with cache %v, without %v, reference %v", r, cached, full, want)
		}
	}
}

func TestFusedSupported(t *testing.T) {
	base := benchConfig()
	tests := []struct {
		name    string
		headDim int
		want    bool
	}{
		{"head 32", 32, true},
		{"head 128", 128, true},
		{"head 8", 8, false},
		{"head 24", 24, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.HeadDim = tt.headDim
			if got := FusedSupported(c); got != tt.want {
				t.Fatalf("FusedSupported = %v, want %v", got, tt.want)
			}
			w := randomWeights(c, 1)
			if _, err := FusedKVGraph(c, w, GraphOptions{}); (err == nil) != tt.want {
				t.Fatalf("FusedKVGraph: %v", err)
			}
			m, err := SamplingGraph(c, w, GraphOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if fused := len(m.Opsets) == 2; fused != tt.want {
				t.Fatalf("SamplingGraph chose the fused graph: %v, want %v", fused, tt.want)
			}
		})
	}
}

// TestGraphNoSizeLimit checks that checkpoints whose weights exceed one
// protobuf's 2 GiB are no longer refused for their size: Qwen2.5-0.5B in
// float64 and Qwen2.5-1.5B in float32 get as far as the weights check.
func TestGraphNoSizeLimit(t *testing.T) {
	small, err := ParseConfig([]byte(qwen25Config))
	if err != nil {
		t.Fatal(err)
	}
	big := small
	big.HiddenSize, big.IntermediateSize, big.NumLayers, big.NumHeads, big.HeadDim = 1536, 8960, 28, 12, 128
	tests := []struct {
		name  string
		cfg   Config
		dt    onnx.DataType
		build graphFunc
	}{
		{"0.5B float32 full", small, onnx.Float, FullGraph},
		{"0.5B float64 full", small, onnx.Double, FullGraph},
		{"1.5B float32 full", big, onnx.Float, FullGraph},
		{"1.5B KV", big, onnx.Float, KVGraph},
		{"1.5B fused KV", big, onnx.Float, FusedKVGraph},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.build(tt.cfg, nil, GraphOptions{DType: tt.dt}); !errors.Is(err, ErrWeights) {
				t.Fatalf("graph with no weights = %v, want ErrWeights", err)
			}
		})
	}
	if !errors.Is(ErrTooLarge, onnx.ErrTooLarge) {
		t.Fatal("ErrTooLarge is not onnx.ErrTooLarge")
	}
}
