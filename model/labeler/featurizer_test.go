package labeler_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/schemas"
)

func TestPrefixPositions(t *testing.T) {
	for _, tc := range []struct {
		name             string
		prompt, complete int
		ends             []int32
		want             []int
		err              bool
	}{
		{name: "steps", prompt: 4, complete: 10, ends: []int32{3, 7, 10}, want: []int{3, 6, 10, 13}},
		{name: "empty completion", prompt: 4, complete: 0, want: []int{3}},
		{name: "empty prompt", prompt: 0, complete: 3, ends: []int32{3}, err: true},
		{name: "past the end", prompt: 2, complete: 3, ends: []int32{4}, err: true},
		{name: "out of order", prompt: 2, complete: 5, ends: []int32{3, 3}, err: true},
		{name: "zero end", prompt: 2, complete: 5, ends: []int32{0}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := labeler.PrefixPositions(tc.prompt, tc.complete, tc.ends)
			if tc.err {
				if !errors.Is(err, labeler.ErrInput) {
					t.Fatalf("got %v, want ErrInput", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v %v, want %v", got, err, tc.want)
			}
		})
	}
}

// TestFeaturizerMatchesPolicy checks the features of every kind against
// the unpruned policy graph, sequence by sequence, whatever the batch and
// its padding: the hidden output, and the confidence summaries of
// log-probabilities taken from its logits here.
func TestFeaturizerMatchesPolicy(t *testing.T) {
	rt := orttest.Runtime(t)
	ref := tinyRef(t, 32, 2, 3)
	full, err := ref.FullModel()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := rt.NewSession(full, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	rows := []schemas.Rollout{
		rollout("g", 0, "1+2", "1+2=3\n", "A:3\n"),
		rollout("g", 1, "1+2", ""),
		rollout("g", 2, "10+20+30", "10+20=30\n", "30+30=60\n", "A:60"),
	}
	for _, tc := range []struct {
		kind  string
		width int
	}{
		{"", 32},
		{labeler.FeaturesHidden, 32},
		{labeler.FeaturesConfidence, labeler.ConfidenceWidth},
		{labeler.FeaturesBoth, 32 + labeler.ConfidenceWidth},
	} {
		t.Run("kind="+tc.kind, func(t *testing.T) {
			f, err := labeler.NewFeaturizer(rt, ref, labeler.FeaturizerOptions{MaxBatch: 2, Features: tc.kind})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Width() != tc.width {
				t.Fatalf("width %d, want %d", f.Width(), tc.width)
			}
			feats, err := f.Rollouts(rows)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rows {
				want := policyFeatures(t, sess, r, f.Features())
				if len(feats[i].Prefixes) != len(r.StepEnds)+1 || len(want) != len(r.StepEnds)+2 {
					t.Fatalf("row %d: %d prefixes for %d steps", i, len(feats[i].Prefixes), len(r.StepEnds))
				}
				for tt, got := range append(slices.Clone(feats[i].Prefixes), feats[i].Final) {
					if len(got) != tc.width {
						t.Fatalf("row %d vector %d: width %d, want %d", i, tt, len(got), tc.width)
					}
					for k, v := range got {
						if math.Abs(float64(v-want[tt][k])) > 1e-4 {
							t.Fatalf("row %d vector %d: feature %d is %v, from the policy %v", i, tt, k, v, want[tt][k])
						}
					}
				}
			}
		})
	}
}

// policyFeatures computes the features of kind for rollout r's prefixes
// and whole trajectory from one unbatched run of the full policy graph.
func policyFeatures(t testing.TB, sess *ort.Session, r schemas.Rollout, kind string) [][]float32 {
	t.Helper()
	seq := slices.Concat(r.PromptTokenIDs, r.CompletionTokenIDs)
	ids, mask := make([]int64, len(seq)), make([]int64, len(seq))
	for k, v := range seq {
		ids[k], mask[k] = int64(v), 1
	}
	n := int64(len(seq))
	out, err := sess.Run(map[string]*ort.Tensor{policy.InputIDs: ort.I64Tensor(ids, 1, n), policy.InputMask: ort.I64Tensor(mask, 1, n)})
	if err != nil {
		t.Fatal(err)
	}
	h, logits := out[policy.OutputHidden].F32, out[policy.OutputLogits].F32
	vocab := len(logits) / len(seq)
	var lp []float32
	for i := len(r.PromptTokenIDs); i < len(seq); i++ {
		row := logits[(i-1)*vocab : i*vocab]
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v))
		}
		lp = append(lp, float32(float64(row[seq[i]])-math.Log(z)))
	}
	pos, err := labeler.PrefixPositions(len(r.PromptTokenIDs), len(r.CompletionTokenIDs), r.StepEnds)
	if err != nil {
		t.Fatal(err)
	}
	pos = append(pos, len(seq)-1)
	ends := make([]int, len(pos))
	for k, p := range pos {
		ends[k] = p + 1 - len(r.PromptTokenIDs)
	}
	conf := labeler.ConfidenceFeatures(lp, ends)
	want := make([][]float32, len(pos))
	for k, p := range pos {
		if kind != labeler.FeaturesConfidence {
			want[k] = slices.Clone(h[p*32 : (p+1)*32])
		}
		if kind != labeler.FeaturesHidden {
			want[k] = append(want[k], conf[k]...)
		}
	}
	return want
}

func TestConfidenceFeatures(t *testing.T) {
	ln := func(p float64) float32 { return float32(math.Log(p)) }
	lps := []float32{ln(0.9), ln(0.3), ln(0.05), ln(1), ln(0.99)}
	for _, tc := range []struct {
		name string
		end  int
		want [labeler.ConfidenceWidth]float64
	}{
		{"empty", 0, [4]float64{0, 0, 0, 0}},
		{"sure", 1, [4]float64{math.Log(0.9) / 16, math.Log(0.9) / 8, 0, 0}},
		{"unsure", 2, [4]float64{math.Log(0.27) / 16, math.Log(0.3) / 8, 0.25, 0}},
		{"rare", 3, [4]float64{math.Log(0.27*0.05) / 16, math.Log(0.05) / 8, 0.5, 0.25}},
		{"copies add nothing", 5, [4]float64{math.Log(0.27*0.05*0.99) / 16, math.Log(0.05) / 8, 0.5, 0.25}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := labeler.ConfidenceFeatures(lps, []int{tc.end})[0]
			for k, w := range tc.want {
				if math.Abs(float64(got[k])-w) > 1e-6 {
					t.Fatalf("summary %d: got %v, want %v (all %v)", k, got[k], w, got)
				}
			}
		})
	}
	t.Run("floor", func(t *testing.T) {
		if got := labeler.ConfidenceFeatures([]float32{-1000}, []int{1})[0][1]; got != -3 {
			t.Fatalf("least log-probability of e^-1000 scales to %v, want the floor -3", got)
		}
	})
}

func TestFeaturizerRefusesLongSequences(t *testing.T) {
	rt := orttest.Runtime(t)
	f, err := labeler.NewFeaturizer(rt, tinyRef(t, 32, 1, 3), labeler.FeaturizerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	long := make([]int32, f.MaxSeq()+1)
	for i := range long {
		long[i] = 5
	}
	_, err = f.Hidden([][]int32{{1, 5}, long}, [][]int{{1}, {0}})
	if !errors.Is(err, labeler.ErrInput) {
		t.Fatalf("got %v, want ErrInput", err)
	}
	t.Log(err)
	if _, err := f.Hidden([][]int32{{1, 5}}, [][]int{{2}}); !errors.Is(err, labeler.ErrInput) {
		t.Fatalf("position past the end: got %v, want ErrInput", err)
	}
}

// TestFeaturizerContextFull: a rollout that filled the context, one token
// past MaxSeq, is featurized (hidden state of the token before its last,
// every token counted by the confidence summaries); one more is refused.
func TestFeaturizerContextFull(t *testing.T) {
	rt := orttest.Runtime(t)
	ref := tinyRef(t, 32, 1, 3)
	f, err := labeler.NewFeaturizer(rt, ref, labeler.FeaturizerOptions{Features: labeler.FeaturesBoth})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	full := func(extra int) schemas.Rollout {
		r := rollout("g", 0, "1+2", "1+2=3\n")
		for len(r.PromptTokenIDs)+len(r.CompletionTokenIDs) < f.MaxSeq()+extra {
			r.CompletionTokenIDs = append(r.CompletionTokenIDs, r.CompletionTokenIDs[0])
		}
		r.StepEnds = append(r.StepEnds, int32(len(r.CompletionTokenIDs)))
		return r
	}
	fits, over := full(0), full(1)
	feats, err := f.Rollouts([]schemas.Rollout{fits, over})
	if err != nil {
		t.Fatalf("a rollout one token past the context: %v", err)
	}
	for k := range 32 {
		if feats[0].Final[k] != feats[1].Final[k] {
			t.Fatalf("hidden feature %d of the full rollout %v, of the one that fits %v: want the state at the token before its last", k, feats[1].Final[k], feats[0].Final[k])
		}
	}
	if feats[0].Final[32] == feats[1].Final[32] {
		t.Fatalf("summed log-probability %v for both: the last token was not counted", feats[0].Final[32])
	}
	if _, err := f.Rollouts([]schemas.Rollout{full(2)}); !errors.Is(err, labeler.ErrInput) {
		t.Fatalf("two tokens past the context: got %v, want ErrInput", err)
	}
}
