package labeler_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/shaping"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// TestRedundantStepsScoreBelowHalf is the controlled case: a labeler
// fitted on prefix pairs of arithmetic rollouts (correct ones reach the
// answer line, wrong ones loop on re-checks) gives the progress steps of a
// new completion rewards above 0.5 and the redundant re-checks appended
// after its correct answer rewards below 0.5.
// probeLines are two progress steps, the correct answer, and two redundant
// re-checks after it.
var probeLines = []string{"23+41=64\n", "64+12=76\n", "A:76\n", "check 23+41=64\n", "check 23+41=64\n"}

func TestRedundantStepsScoreBelowHalf(t *testing.T) {
	rt := orttest.Runtime(t)
	f, err := labeler.NewFeaturizer(rt, tinyRef(t, 32, 1, 7), labeler.FeaturizerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []schemas.Rollout
	var correct []bool
	for g := range 60 {
		r, c := arithGroup(rng, fmt.Sprintf("g%d", g), 4)
		rows, correct = append(rows, r...), append(correct, c...)
	}
	cfg := labeler.DefaultConfig()
	// Same-prompt pairs only: the case is about what those teach (anchor
	// pairs are tested in TestAnchorPairs and on real rollouts in
	// docs/RESULTS.md).
	cfg.Hidden, cfg.Epochs, cfg.Reference, cfg.Features, cfg.Anchors = 64, 40, f.Reference(), f.Features(), false
	m, rep, err := labeler.Fit(rt, examples(t, f, rows, correct), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fit: %+v", rep)
	if rep.HeldOutPairs == 0 || rep.HeldOutAccuracy < 0.9 {
		t.Fatalf("held-out accuracy %.3f on %d pairs, want >= 0.9", rep.HeldOutAccuracy, rep.HeldOutPairs)
	}
	s, err := labeler.NewScorer(f, m)
	if err != nil {
		t.Fatal(err)
	}
	probe := rollout("probe", 0, "23+41+12", probeLines...)
	scores, err := s.PrefixScores(t.Context(), []schemas.Rollout{probe})
	if err != nil {
		t.Fatal(err)
	}
	sc := make([]float64, len(scores[0]))
	for i, v := range scores[0] {
		sc[i] = float64(v)
	}
	rewards, err := shaping.StepRewards(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scores %v rewards %v", sc, rewards)
	if len(rewards) != 5 {
		t.Fatalf("%d step rewards, want 5 (two progress lines, the answer, two re-checks)", len(rewards))
	}
	for i, r := range rewards {
		if progress := i < 3; progress != (r > 0.5) {
			t.Errorf("step %d (%q): reward %.3f, want %s 0.5", i+1, probeLines[i], r, map[bool]string{true: "above", false: "below"}[progress])
		}
	}
}
