package main

import "github.com/wsgrpo/wsgrpo/model/labeler"

// testReport is a fitted preference model's pair accuracy on rows it was
// not fitted on (`labeler fit --eval-where`).
type testReport struct {
	// Where is the filter that selected the test rows.
	Where string `json:"where"`
	// Pairs and Groups count the (correct, incorrect) pairs scored and
	// the prompts they come from; FullPairs of them are whole trajectories,
	// the rest same-depth prefixes.
	Pairs     int `json:"pairs"`
	Groups    int `json:"groups"`
	FullPairs int `json:"full_pairs"`
	// Accuracy is the share of pairs whose correct side scores higher;
	// FullAccuracy and PrefixAccuracy split it by kind.
	Accuracy       float64 `json:"accuracy"`
	FullAccuracy   float64 `json:"full_accuracy"`
	PrefixAccuracy float64 `json:"prefix_accuracy"`
}

// scoreTestPairs scores pairs with m: a pair is right when its correct
// side scores strictly higher.
func scoreTestPairs(m *labeler.Model, pairs []labeler.Pair) testReport {
	var r testReport
	groups := map[string]bool{}
	var right, fullRight int
	for _, p := range pairs {
		groups[p.Group] = true
		ok := m.Score(p.Pos) > m.Score(p.Neg)
		r.Pairs++
		if ok {
			right++
		}
		if p.Depth == 0 {
			r.FullPairs++
			if ok {
				fullRight++
			}
		}
	}
	r.Groups = len(groups)
	ratio := func(a, b int) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	r.Accuracy = ratio(right, r.Pairs)
	r.FullAccuracy = ratio(fullRight, r.FullPairs)
	r.PrefixAccuracy = ratio(right-fullRight, r.Pairs-r.FullPairs)
	return r
}
