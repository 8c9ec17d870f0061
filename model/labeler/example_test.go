package labeler_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/shaping"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// Example fits a labeler on verified rollouts of the reference policy,
// saves it, and scores a new rollout's steps. (It needs the ONNX Runtime
// library and a checkpoint, so it is compiled, not run.)
func Example() {
	ctx := context.Background()
	rt, err := ort.Init(ort.DefaultConfig(), slog.Default())
	if err != nil {
		panic(err)
	}
	ref, err := checkpoint.Load("testdata/base") // the initial policy
	if err != nil {
		panic(err)
	}
	f, err := labeler.NewFeaturizer(rt, ref, labeler.FeaturizerOptions{Features: labeler.DefaultFeatures})
	if err != nil {
		panic(err)
	}
	defer f.Close()

	// Phase I: K rollouts per prompt, judged only by their final answer.
	var verified []schemas.Verified // from the verifier stage
	rollouts := make([]schemas.Rollout, len(verified))
	for i, v := range verified {
		rollouts[i] = v.Rollout
	}
	feats, err := f.Rollouts(rollouts)
	if err != nil {
		panic(err)
	}
	examples := make([]labeler.Example, len(verified))
	for i, v := range verified {
		examples[i] = labeler.Example{Group: v.GroupID, Correct: v.Correct, Features: feats[i]}
	}
	cfg := labeler.DefaultConfig()
	cfg.Reference, cfg.Features = f.Reference(), f.Features()
	m, rep, err := labeler.Fit(rt, examples, cfg, slog.Default())
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: held-out pair accuracy %.2f on %d pairs\n", m.ID(), rep.HeldOutAccuracy, rep.HeldOutPairs)
	if err := labeler.Save("runs/labeler", m); err != nil {
		panic(err)
	}

	// Phase II: step rewards of a new rollout.
	s, err := labeler.NewScorer(f, m)
	if err != nil {
		panic(err)
	}
	scores, err := s.PrefixScores(ctx, rollouts[:1])
	if err != nil {
		panic(err)
	}
	f64 := make([]float64, len(scores[0]))
	for i, v := range scores[0] {
		f64[i] = float64(v)
	}
	rewards, err := shaping.StepRewards(f64)
	if err != nil {
		panic(err)
	}
	fmt.Println("step rewards:", rewards)
}
