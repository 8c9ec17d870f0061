package hf

import (
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// f32Checkpoint is a float32 case of checkpointCases written and loaded,
// with the Go reference over the same weights.
type f32Checkpoint struct {
	name string
	ck   *Checkpoint
	ref  refModel
}

// f32Checkpoints writes and loads the float32 cases of checkpointCases.
func f32Checkpoints(t *testing.T) []f32Checkpoint {
	t.Helper()
	var out []f32Checkpoint
	for i, tc := range checkpointCases {
		if tc.dtype != "F32" {
			continue
		}
		a := tinyArchs[tc.arch]
		dir, ts := writeTestCheckpoint(t, a, tc.dtype, tc.sharded, uint64(i+1))
		ck, err := Load(dir)
		if err != nil {
			t.Fatalf("Load %s: %v", tc.name, err)
		}
		out = append(out, f32Checkpoint{name: tc.name, ck: ck, ref: refModel{a: a, w: ts}})
	}
	return out
}

// TestFusedVariantsMatchReference checks every way of writing FusedKVGraph
// (fusedVariants) the way TestGraphsMatchReference checks the default one:
// the logits of every real token of a left-padded batch, prefilled then
// decoded one column per step into an in-place cache, against the Go
// reference (tolerance tolF32), and greedy generation with and without the
// cache against the reference's, for every architecture.
func TestFusedVariantsMatchReference(t *testing.T) {
	rt := orttest.Runtime(t)
	for _, tc := range f32Checkpoints(t) {
		ck, ref := tc.ck, tc.ref
		refLogits := make([][][]float64, len(testPrompts))
		for r, p := range testPrompts {
			refLogits[r], _ = ref.forward(toInts(p))
		}
		for _, v := range fusedVariants {
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				build := func(c Config, w policy.Weights, o GraphOptions) (*onnx.Model, error) {
					return fusedKVGraph(c, w, o, v.opts)
				}
				opt := GraphOptions{MaxSeq: 32}
				e := &errTracker{t: t, tol: tolF32}
				checkKV(t, rt, ck, build, true, opt, refLogits, e)
				checkGreedy(t, rt, ck, build, true, opt, ref)
				t.Logf("max |graph - reference| %.3g", e.worst)
			})
		}
	}
}

// TestFusedChunkedSteps runs every variant of FusedKVGraph over one
// prompt in steps of several positions after a first one (3 columns, then
// 4, then 1 at a time), the case where the causal mask within a step
// matters after a cache (generate prefills once and then decodes one
// position per step), and checks the logits of every token against the Go
// reference (tolerance tolF32). ONNX Runtime's CPU GroupQueryAttention
// takes several new positions after a cache for a batch of one row only.
func TestFusedChunkedSteps(t *testing.T) {
	rt := orttest.Runtime(t)
	for _, tc := range f32Checkpoints(t) {
		ck, ref := tc.ck, tc.ref
		for _, v := range fusedVariants {
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				m, err := fusedKVGraph(ck.Config, ck.Weights, GraphOptions{MaxSeq: 32}, v.opts)
				if err != nil {
					t.Fatal(err)
				}
				checkChunked(t, rt, ck.Config, m, ref, testPrompts[:1], []int{3, 4, 1, 1})
			})
		}
	}
}

// checkChunked runs the in-place sampling graph m over the left-padded
// prompts, widths[i] columns at step i, and compares every real token's
// logits with the reference.
func checkChunked(t *testing.T, rt *ort.Runtime, c Config, m *onnx.Model, ref refModel, prompts [][]int32, widths []int) {
	t.Helper()
	outs := []string{policy.OutputLogits}
	for l := 0; l < c.NumLayers; l++ {
		outs = append(outs, policy.PresentKeyName(l), policy.PresentValueName(l))
	}
	s := newSession(t, rt, m, outs...)
	b, err := policy.NewBatch(prompts, 0, true, 32)
	if err != nil {
		t.Fatal(err)
	}
	rows, n, v := b.Rows, b.Len, c.VocabSize
	capacity := n + 2
	in, bound := map[string]*ort.Tensor{}, map[string]*ort.Tensor{}
	for l := 0; l < c.NumLayers; l++ {
		for _, name := range []string{policy.PastKeyName(l), policy.PastValueName(l)} {
			in[name] = ort.F32Tensor(make([]float32, rows*c.KVDim()*capacity),
				int64(rows), int64(c.NumKVHeads), int64(capacity), int64(c.HeadDim))
		}
		bound[policy.PresentKeyName(l)] = in[policy.PastKeyName(l)]
		bound[policy.PresentValueName(l)] = in[policy.PastValueName(l)]
	}
	want := make([][][]float64, rows)
	for r, p := range prompts {
		want[r], _ = ref.forward(toInts(p))
	}
	e := &errTracker{t: t, tol: tolF32}
	lo := 0
	for _, w := range widths {
		hi := min(lo+w, n)
		w = hi - lo
		ids, pos, mask := make([]int64, rows*w), make([]int64, rows*w), make([]int64, rows*hi)
		for r := 0; r < rows; r++ {
			copy(ids[r*w:], b.IDs[r*n+lo:r*n+hi])
			copy(pos[r*w:], b.Positions[r*n+lo:r*n+hi])
			copy(mask[r*hi:], b.Mask[r*n:r*n+hi])
		}
		in[policy.InputIDs] = ort.I64Tensor(ids, int64(rows), int64(w))
		in[policy.InputPositions] = ort.I64Tensor(pos, int64(rows), int64(w))
		in[policy.InputMask] = ort.I64Tensor(mask, int64(rows), int64(hi))
		out, err := s.RunInto(in, bound)
		if err != nil {
			t.Fatalf("step over columns %d..%d: %v", lo, hi, err)
		}
		for r := 0; r < rows; r++ {
			for j := 0; j < w; j++ {
				if tok := lo + j - b.Offset[r]; tok >= 0 {
					for k := 0; k < v; k++ {
						e.check("logits", float64(out[policy.OutputLogits].F32[(r*w+j)*v+k]), want[r][tok][k])
					}
				}
			}
		}
		lo = hi
	}
	if lo != n {
		t.Fatalf("widths %v cover %d of %d columns", widths, lo, n)
	}
}
