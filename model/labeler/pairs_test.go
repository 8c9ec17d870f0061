package labeler_test

import (
	"slices"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/labeler"
)

// ex returns an example whose prefix t has the feature {id, t} and whose
// full trajectory {id, -1}: every vector is distinct, so pairs can be
// traced back.
func ex(group string, id float32, correct bool, steps int) labeler.Example {
	p := make([][]float32, steps+1)
	for t := range p {
		p[t] = []float32{id, float32(t)}
	}
	return labeler.Example{Group: group, Correct: correct, Features: labeler.RolloutFeatures{Prefixes: p, Final: []float32{id, -1}}}
}

func TestBuildPairs(t *testing.T) {
	type pair struct {
		pos, neg float32
		depth    int
	}
	for _, tc := range []struct {
		name string
		ex   []labeler.Example
		cap  int
		want []pair // nil with count: only the count is checked
		n    int
	}{
		{name: "all correct", ex: []labeler.Example{ex("g", 1, true, 2), ex("g", 2, true, 3)}},
		{name: "all wrong", ex: []labeler.Example{ex("g", 1, false, 2), ex("g", 2, false, 3)}},
		{name: "same depth prefixes", ex: []labeler.Example{ex("g", 1, true, 3), ex("g", 2, false, 2)},
			want: []pair{{1, 2, 0}, {1, 2, 1}, {1, 2, 2}}, n: 3},
		{name: "no prefix pairs for an empty completion", ex: []labeler.Example{ex("g", 1, true, 3), ex("g", 2, false, 0)},
			want: []pair{{1, 2, 0}}, n: 1},
		{name: "groups do not mix", ex: []labeler.Example{ex("a", 1, true, 1), ex("b", 2, false, 1), ex("a", 3, false, 1)},
			want: []pair{{1, 3, 0}, {1, 3, 1}}, n: 2},
		{name: "cap keeps full pairs first", ex: []labeler.Example{ex("g", 1, true, 5), ex("g", 2, false, 5), ex("g", 3, false, 5)},
			cap: 3, n: 3},
		{name: "cap is per group", ex: []labeler.Example{ex("a", 1, true, 5), ex("a", 2, false, 5), ex("b", 3, true, 5), ex("b", 4, false, 5)},
			cap: 4, n: 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := labeler.BuildPairs(tc.ex, tc.cap, 1)
			if len(got) != tc.n {
				t.Fatalf("%d pairs, want %d: %v", len(got), tc.n, got)
			}
			for i, p := range got {
				if p.Pos[0] == p.Neg[0] || p.Depth < 0 {
					t.Errorf("pair %d: %v", i, p)
				}
				// Same depth on both sides; depth 0 is the full trajectory.
				if want := float32(p.Depth); p.Depth == 0 && (p.Pos[1] != -1 || p.Neg[1] != -1) || p.Depth > 0 && (p.Pos[1] != want || p.Neg[1] != want) {
					t.Errorf("pair %d at depth %d: %v vs %v", i, p.Depth, p.Pos, p.Neg)
				}
			}
			for i, w := range tc.want {
				if g := got[i]; g.Pos[0] != w.pos || g.Neg[0] != w.neg || g.Depth != w.depth {
					t.Errorf("pair %d: %v vs %v at %d, want %v", i, g.Pos, g.Neg, g.Depth, w)
				}
			}
			if tc.cap > 0 && tc.name == "cap keeps full pairs first" {
				for i := range 2 {
					if got[i].Depth != 0 {
						t.Errorf("pair %d has depth %d: full pairs must come first", i, got[i].Depth)
					}
				}
			}
		})
	}
}

func TestBuildPairsSkipsIdenticalPrefixes(t *testing.T) {
	a, b := ex("g", 1, true, 3), ex("g", 2, false, 3)
	// Both rollouts start with the same step: prefix 1 is the same.
	b.Features.Prefixes[1] = a.Features.Prefixes[1]
	got := labeler.BuildPairs([]labeler.Example{a, b}, 0, 1)
	for _, p := range got {
		if p.Depth == 1 {
			t.Fatalf("pair of identical prefixes kept: %v", p)
		}
	}
	if len(got) != 3 {
		t.Fatalf("%d pairs, want 3 (full, depths 2 and 3)", len(got))
	}
}

func TestAnchorPairs(t *testing.T) {
	v := func(x float32) []float32 { return []float32{x, 0} }
	mk := func(group string, correct bool, empty, final float32) labeler.Example {
		return labeler.Example{Group: group, Correct: correct, Features: labeler.RolloutFeatures{Prefixes: [][]float32{v(empty), v(final)}, Final: v(final)}}
	}
	examples := []labeler.Example{
		mk("g", true, 0, 1),
		mk("g", false, 0, 2),
		mk("h", true, 5, 5), // an empty completion: its whole trajectory is its empty prefix
		{Group: "h", Features: labeler.RolloutFeatures{Final: v(3)}},
	}
	got := labeler.AnchorPairs(examples)
	want := []labeler.Pair{
		{Group: "g", Depth: labeler.AnchorDepth, Pos: v(1), Neg: v(0)},
		{Group: "g", Depth: labeler.AnchorDepth, Pos: v(0), Neg: v(2)},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d anchor pairs %v, want %v", len(got), got, want)
	}
	for i := range want {
		if got[i].Group != want[i].Group || got[i].Depth != want[i].Depth || !slices.Equal(got[i].Pos, want[i].Pos) || !slices.Equal(got[i].Neg, want[i].Neg) {
			t.Errorf("pair %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	c := labeler.DefaultConfig()
	plain := len(labeler.BuildPairs(examples, c.MaxPairsPerGroup, c.Seed))
	if n := len(labeler.Pairs(examples, c)); n != plain+len(want) {
		t.Errorf("Pairs with anchors: %d pairs, want BuildPairs' %d and %d anchors", n, plain, len(want))
	}
	c.Anchors = false
	if n := len(labeler.Pairs(examples, c)); n != plain {
		t.Errorf("Pairs without anchors: %d pairs, want BuildPairs' %d", n, plain)
	}
}
