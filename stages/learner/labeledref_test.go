package learner

import (
	"math"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	mlabeler "github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// withLabelerRef returns copies of groups whose rows carry the reference
// log-probabilities a labeler with the confidence features computes of
// init (model/labeler's Featurizer), under the given reference id, each
// value passed through change.
func withLabelerRef(t testing.TB, rt *ort.Runtime, init *checkpoint.Checkpoint, groups [][]schemas.Labeled, id string, change func(float32) float32) [][]schemas.Labeled {
	t.Helper()
	f, err := mlabeler.NewFeaturizer(rt, init, mlabeler.FeaturizerOptions{Features: mlabeler.FeaturesConfidence})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	out := make([][]schemas.Labeled, len(groups))
	for g, rows := range groups {
		rs := make([]schemas.Rollout, len(rows))
		for i := range rows {
			rs[i] = rows[i].Rollout
			// The prompt's ids as the sampler sets them (the learner
			// encodes the text the same way, tokenizer.PromptIDs).
			if rs[i].PromptTokenIDs, err = tokenizer.PromptIDs(init.Tokenizer, "", rs[i].Prompt.Prompt, nil); err != nil {
				t.Fatal(err)
			}
		}
		feats, err := f.Rollouts(rs)
		if err != nil {
			t.Fatal(err)
		}
		out[g] = make([]schemas.Labeled, len(rows))
		for i := range rows {
			l := rows[i]
			l.Reference = id
			l.RefLogprobs = make([]float32, len(feats[i].TokenLogprobs))
			for j, v := range feats[i].TokenLogprobs {
				l.RefLogprobs[j] = change(v)
			}
			out[g][i] = l
		}
	}
	return out
}

// TestLabelerReferenceLogprobs: rows carrying the labeler's reference
// log-probabilities of this learner's reference policy train (almost) the
// same weights as rows without them, with no reference pass of the
// learner's own (RefFromLabeler counts every row); rows whose log-probs
// name another reference, or are not log-probabilities, are recomputed
// (bitwise the same weights); and the learner does use the ones it takes
// (shifted values change the weights).
func TestLabelerReferenceLogprobs(t *testing.T) {
	rt := orttest.Runtime(t)
	init := tiny(t, 11)
	id, err := mlabeler.ReferenceID(init)
	if err != nil {
		t.Fatal(err)
	}
	inputs := resumeInputs(t, 2)
	rows := 0
	for _, g := range inputs {
		rows += len(g)
	}
	o := Options{GroupsPerStep: 2, MicroBatch: 3, MaxStaleness: 100, Beta: 0.5, Optim: optim.Config{LR: 1e-2}}
	run := func(t *testing.T, groups [][]schemas.Labeled) (*checkpoint.Checkpoint, int, float64) {
		t.Helper()
		fromLabeler, refMs := 0, 0.0
		oo := o
		oo.Sink = sinkFunc(func(m StepMetrics) { fromLabeler += m.RefFromLabeler; refMs += m.RefMs })
		p := newLearner(t, rt, init, &store{}, oo)
		for _, g := range groups {
			feed(t.Context(), t, p, g)
		}
		if st := p.Stats(); st.Step != 2 {
			t.Fatalf("%d updates, want 2", st.Step)
		}
		return snapshot(t, p), fromLabeler, refMs
	}
	want, n, _ := run(t, inputs)
	if n != 0 {
		t.Fatalf("rows without reference log-probs: %d counted as the labeler's", n)
	}
	same := func(v float32) float32 { return v }
	shifted := func(v float32) float32 { return v - 0.5 }
	tests := []struct {
		name     string
		id       string
		change   func(float32) float32
		counted  int
		relation string // "close", "bitwise" or "different"
	}{
		{"labeler's, same reference", id, same, rows, "close"},
		{"another reference", "ref-000000000000", same, 0, "bitwise"},
		{"above zero", id, func(float32) float32 { return 0.5 }, 0, "bitwise"},
		{"NaN", id, func(float32) float32 { return float32(math.NaN()) }, 0, "bitwise"},
		{"shifted, used", id, shifted, rows, "different"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n, _ := run(t, withLabelerRef(t, rt, init, inputs, tc.id, tc.change))
			if n != tc.counted {
				t.Fatalf("RefFromLabeler %d, want %d", n, tc.counted)
			}
			d := maxDiff(want, got)
			t.Logf("weights differ by up to %g", d)
			switch tc.relation {
			case "close":
				// The labeler's forward pass batches differently (other
				// padding and row order, so other summation orders):
				// the log-probs agree to float32 rounding ...
				if lp := maxRefDiff(t, rt, init, withLabelerRef(t, rt, init, inputs, id, same)); lp > 1e-5 {
					t.Fatalf("the labeler's reference log-probs differ by up to %g from the learner's", lp)
				}
				// ... which AdamW's first steps (g / sqrt(g^2)) amplify for
				// weights whose gradient is near 0: a few percent of one
				// step of 1e-2 at most, against whole steps when the
				// log-probs are wrong (the "shifted" case).
				if d > 1e-3 {
					t.Fatalf("weights differ by up to %g from the learner's own reference pass", d)
				}
			case "bitwise":
				if d != 0 {
					t.Fatalf("weights differ by up to %g; ignored log-probs must leave the learner's own pass", d)
				}
			case "different":
				if d < 1e-2 {
					t.Fatalf("weights differ by only %g: the learner did not use the log-probs it counted", d)
				}
			}
		})
	}
}

// maxRefDiff is the largest difference between the reference log-probs
// the rows carry and the learner's own reference pass over them.
func maxRefDiff(t testing.TB, rt *ort.Runtime, init *checkpoint.Checkpoint, groups [][]schemas.Labeled) float64 {
	t.Helper()
	s, err := newScorer(rt, builtin{init}, init.Tokenizer.PAD())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	d := 0.0
	for _, rows := range groups {
		for i := range rows {
			prompt, err := tokenizer.PromptIDs(init.Tokenizer, "", rows[i].Prompt.Prompt, nil)
			if err != nil {
				t.Fatal(err)
			}
			lps, err := s.logprobs([][]int32{append(prompt, rows[i].CompletionTokenIDs...)}, []int{len(prompt)})
			if err != nil {
				t.Fatal(err)
			}
			for j, v := range lps[0] {
				d = max(d, math.Abs(float64(v-rows[i].RefLogprobs[j])))
			}
		}
	}
	t.Logf("reference log-probs: labeler vs learner differ by up to %g", d)
	return d
}

// maxDiff is the largest absolute difference between a's and b's weights.
func maxDiff(a, b *checkpoint.Checkpoint) float64 {
	d := 0.0
	for name, pa := range a.Weights {
		pb := b.Weights[name]
		for i := range pa.Data {
			d = max(d, math.Abs(float64(pa.Data[i]-pb.Data[i])))
		}
	}
	return d
}
