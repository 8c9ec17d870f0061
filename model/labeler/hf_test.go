package labeler_test

import (
	"math"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/hf/hftest"
	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// TestHFFeaturizer: a Hugging Face reference model featurizes rollouts
// (hf.FullGraph): one finite vector of the model's hidden size (and the
// confidence summaries) per prefix, the reference named by HFReferenceID,
// and reference log-probabilities with the confidence kinds.
func TestHFFeaturizer(t *testing.T) {
	rt := orttest.Runtime(t)
	b := hftest.Bundle(t, 1, false)
	ck := b.Checkpoint
	id, err := labeler.HFReferenceID(ck)
	if err != nil {
		t.Fatal(err)
	}
	other, err := labeler.HFReferenceID(hftest.Bundle(t, 2, false).Checkpoint)
	if err != nil || other == id {
		t.Fatalf("two models share the reference id %s (%v)", id, err)
	}
	var row schemas.Rollout
	row.TrajectoryID, row.PromptTokenIDs = "t0", []int32{50, 51, 52}
	row.CompletionTokenIDs, row.StepEnds = []int32{60, 61, 62, 63, hftest.EOS}, []int32{1, 4}
	for _, kind := range []string{labeler.FeaturesHidden, labeler.FeaturesBoth} {
		t.Run(kind, func(t *testing.T) {
			f, err := labeler.NewHFFeaturizer(rt, ck, 64, hftest.PAD, labeler.FeaturizerOptions{Features: kind})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			if f.Reference() != id || f.DModel() != ck.Config.HiddenSize || f.MaxSeq() != 64 {
				t.Fatalf("reference %s, d_model %d, max_seq %d", f.Reference(), f.DModel(), f.MaxSeq())
			}
			feats, err := f.Rollouts([]schemas.Rollout{row})
			if err != nil {
				t.Fatal(err)
			}
			if len(feats) != 1 || len(feats[0].Prefixes) != 3 {
				t.Fatalf("features %+v, want 3 prefixes of one rollout", feats)
			}
			for _, v := range feats[0].Prefixes {
				if len(v) != f.Width() {
					t.Fatalf("feature width %d, want %d", len(v), f.Width())
				}
				for _, x := range v {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						t.Fatal("non-finite feature")
					}
				}
			}
			if kind == labeler.FeaturesBoth && len(feats[0].TokenLogprobs) != len(row.CompletionTokenIDs) {
				t.Fatalf("%d reference log-probabilities, want %d", len(feats[0].TokenLogprobs), len(row.CompletionTokenIDs))
			}
		})
	}
}
