package hf

import (
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// TestFusedVariantsMatchReference checks every way of writing FusedKVGraph
// (fusedVariants) the way TestGraphsMatchReference checks the default one:
// the logits of every real token of a left-padded batch, prefilled then
// decoded one column per step into an in-place cache, against the Go
// reference (tolerance tolF32), and greedy generation with and without the
// cache against the reference's, for every architecture.
func TestFusedVariantsMatchReference(t *testing.T) {
	rt := orttest.Runtime(t)
	for i, tc := range checkpointCases {
		if tc.dtype != "F32" {
			continue
		}
		a := tinyArchs[tc.arch]
		dir, ts := writeTestCheckpoint(t, a, tc.dtype, tc.sharded, uint64(i+1))
		ck, err := Load(dir)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		ref := refModel{a: a, w: ts}
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
