package labeler

import (
	"hash/fnv"
	"math/rand/v2"
)

// Example is one rollout as the labeler learns from it: its group (the
// prompt it answers), its final correctness and its features.
type Example struct {
	Group    string
	Correct  bool
	Features RolloutFeatures
}

// Pair is one Bradley-Terry training pair: Pos, the features of a correct
// rollout's trajectory or prefix, is preferred to Neg, an incorrect one's
// of the same prompt.
type Pair struct {
	// Group is the prompt both sides answer (held-out splits go by it).
	Group string
	// Depth is 0 for a full-trajectory pair, t for a pair of prefixes of
	// t steps, AnchorDepth for an anchor pair (AnchorPairs).
	Depth    int
	Pos, Neg []float32
}

// featureTolerance is the largest difference under which two feature
// vectors count as the same (the same tokens, batched differently).
const featureTolerance = 1e-5

// BuildPairs returns the training pairs of examples, grouped by Group: for
// each (correct, incorrect) pair of rollouts of one group, their full
// trajectories, and their prefixes at every depth t = 1..min(steps) both
// have. A group whose rollouts are all correct or all wrong gives none. A
// pair whose two sides have the same features (prefixes that agree token
// for token, so far) teaches nothing and is skipped. When a group has more
// than maxPerGroup pairs (0: no cap), it keeps maxPerGroup of them, full
// trajectories first, each kind in a random order drawn from seed and the
// group, so that one prompt cannot dominate the fit. Groups keep their
// order of first appearance.
func BuildPairs(examples []Example, maxPerGroup int, seed uint64) []Pair {
	var order []string
	byGroup := map[string][]*Example{}
	for i := range examples {
		e := &examples[i]
		if _, ok := byGroup[e.Group]; !ok {
			order = append(order, e.Group)
		}
		byGroup[e.Group] = append(byGroup[e.Group], e)
	}
	var out []Pair
	for _, g := range order {
		var pos, neg []*Example
		for _, e := range byGroup[g] {
			if e.Correct {
				pos = append(pos, e)
			} else {
				neg = append(neg, e)
			}
		}
		var full, prefix []Pair
		for _, p := range pos {
			for _, n := range neg {
				if !same(p.Features.Final, n.Features.Final) {
					full = append(full, Pair{Group: g, Pos: p.Features.Final, Neg: n.Features.Final})
				}
				depth := min(len(p.Features.Prefixes), len(n.Features.Prefixes)) - 1
				for t := 1; t <= depth; t++ {
					a, b := p.Features.Prefixes[t], n.Features.Prefixes[t]
					if !same(a, b) {
						prefix = append(prefix, Pair{Group: g, Depth: t, Pos: a, Neg: b})
					}
				}
			}
		}
		if maxPerGroup > 0 && len(full)+len(prefix) > maxPerGroup {
			h := fnv.New64a()
			h.Write([]byte(g))
			rng := rand.New(rand.NewPCG(seed, h.Sum64()))
			rng.Shuffle(len(full), func(i, j int) { full[i], full[j] = full[j], full[i] })
			rng.Shuffle(len(prefix), func(i, j int) { prefix[i], prefix[j] = prefix[j], prefix[i] })
			full = full[:min(len(full), maxPerGroup)]
			prefix = prefix[:maxPerGroup-len(full)]
		}
		out = append(out, full...)
		out = append(out, prefix...)
	}
	return out
}

// AnchorDepth is the Depth of an anchor pair.
const AnchorDepth = -1

// AnchorPairs returns the anchor pairs of examples: each correct rollout's
// full trajectory is preferred to its prompt's empty completion, and the
// empty completion to each incorrect rollout's full trajectory. Same-depth
// pairs never compare prefixes of different lengths, so they leave the
// score's level across depths free; the anchors tie it down, so that the
// score rises along correct trajectories and falls along wrong ones, and a
// step reward sigmoid(f(t) - f(t-1)) above 0.5 means progress towards a
// correct answer. On the arith warm-up they moved the mean step reward of
// progress lines in correct rollouts from 0.41 to 0.56 while re-check and
// verify lines stayed at or below 0.5 (docs/RESULTS.md). Every rollout
// gives one, whether or not its group has both outcomes; a rollout whose
// full trajectory is its empty completion gives none.
func AnchorPairs(examples []Example) []Pair {
	out := make([]Pair, 0, len(examples))
	for _, e := range examples {
		if len(e.Features.Prefixes) == 0 {
			continue
		}
		empty, full := e.Features.Prefixes[0], e.Features.Final
		if same(empty, full) {
			continue
		}
		if e.Correct {
			out = append(out, Pair{Group: e.Group, Depth: AnchorDepth, Pos: full, Neg: empty})
		} else {
			out = append(out, Pair{Group: e.Group, Depth: AnchorDepth, Pos: empty, Neg: full})
		}
	}
	return out
}

// Pairs returns the training pairs of examples as c asks: BuildPairs with
// c.MaxPairsPerGroup and c.Seed, followed by AnchorPairs when c.Anchors.
func Pairs(examples []Example, c Config) []Pair {
	out := BuildPairs(examples, c.MaxPairsPerGroup, c.Seed)
	if c.Anchors {
		out = append(out, AnchorPairs(examples)...)
	}
	return out
}

// same reports whether two feature vectors are equal within
// featureTolerance.
func same(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if d := a[i] - b[i]; d > featureTolerance || d < -featureTolerance {
			return false
		}
	}
	return true
}
