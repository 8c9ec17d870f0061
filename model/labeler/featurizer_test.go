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

// TestFeaturizerMatchesPolicy checks the features against the unpruned
// policy graph's hidden output, sequence by sequence, whatever the batch
// and its padding.
func TestFeaturizerMatchesPolicy(t *testing.T) {
	rt := orttest.Runtime(t)
	ref := tinyRef(t, 32, 2, 3)
	f, err := labeler.NewFeaturizer(rt, ref, labeler.FeaturizerOptions{MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
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
	feats, err := f.Rollouts(rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
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
		h := out[policy.OutputHidden].F32
		pos, err := labeler.PrefixPositions(len(r.PromptTokenIDs), len(r.CompletionTokenIDs), r.StepEnds)
		if err != nil {
			t.Fatal(err)
		}
		if len(feats[i].Prefixes) != len(r.StepEnds)+1 {
			t.Fatalf("row %d: %d prefixes for %d steps", i, len(feats[i].Prefixes), len(r.StepEnds))
		}
		check := func(what string, got []float32, p int) {
			for k, v := range got {
				if math.Abs(float64(v-h[p*32+k])) > 1e-4 {
					t.Fatalf("row %d %s: feature %d is %v, the policy's hidden state %v", i, what, k, v, h[p*32+k])
				}
			}
		}
		for tt, p := range pos {
			check("prefix", feats[i].Prefixes[tt], p)
		}
		check("final", feats[i].Final, len(seq)-1)
	}
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
