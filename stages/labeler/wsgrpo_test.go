package labeler_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	mlabeler "github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/segment"
	"github.com/wsgrpo/wsgrpo/model/shaping"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/labeler"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// textRow returns a verified row whose completion is lines, tokenized and
// segmented as the sampler does.
func textRow(group string, idx, size int32, correct bool, prompt string, lines ...string) schemas.Verified {
	tok := tokenizer.Default()
	text := strings.Join(lines, "")
	ids := tok.Encode(text)
	return schemas.Verified{
		Rollout: schemas.Rollout{
			Prompt:             schemas.Prompt{RunID: "run", PromptID: group, Task: "arith", Prompt: prompt, PromptTokenIDs: append([]int32{tok.BOS()}, tok.Encode(prompt+"\n")...)},
			TrajectoryID:       fmt.Sprintf("%s/%d", group, idx),
			GroupID:            group,
			SampleIndex:        idx,
			GroupSize:          size,
			Completion:         text,
			CompletionTokenIDs: ids,
			StepEnds:           segment.Lines(tok, ids),
		},
		Correct: correct,
	}
}

// arithGroup returns a group of G rollouts of a+b+c: even samples work it
// out and answer; odd ones get part of the way, loop on re-checks, and
// answer wrongly or not at all.
func arithGroup(rng *rand.Rand, group string, g int) []schemas.Verified {
	a, b, c := rng.IntN(90)+10, rng.IntN(90)+10, rng.IntN(90)+10
	prompt := fmt.Sprintf("%d+%d+%d", a, b, c)
	progress := []string{fmt.Sprintf("%d+%d=%d\n", a, b, a+b), fmt.Sprintf("%d+%d=%d\n", a+b, c, a+b+c)}
	var out []schemas.Verified
	for i := range g {
		ok := i%2 == 0
		var lines []string
		if ok {
			lines = append(append(lines, progress...), fmt.Sprintf("A:%d\n", a+b+c))
		} else {
			lines = append(lines, progress[:rng.IntN(2)]...)
			for range 1 + rng.IntN(3) {
				lines = append(lines, "check "+progress[0])
			}
			if rng.IntN(2) == 0 {
				lines = append(lines, fmt.Sprintf("A:%d\n", a+b+c+1+rng.IntN(9)))
			}
		}
		out = append(out, textRow(group, int32(i), int32(g), ok, prompt, lines...))
	}
	return out
}

// fittedScorer fits a labeler on arithmetic groups over a tiny random
// reference policy, on hidden-state features.
func fittedScorer(t testing.TB) *mlabeler.Scorer {
	t.Helper()
	return fittedScorerOf(t, mlabeler.FeaturesHidden)
}

// fittedScorerOf is fittedScorer on features of the given kind.
func fittedScorerOf(t testing.TB, features string) *mlabeler.Scorer {
	t.Helper()
	rt := orttest.Runtime(t)
	tok := tokenizer.Default()
	ref, err := checkpoint.New(policy.Config{VocabSize: tok.VocabSize(), DModel: 32, NLayers: 1, NHeads: 2, DFF: 64, MaxSeq: 160}, tok, 7)
	if err != nil {
		t.Fatal(err)
	}
	f, err := mlabeler.NewFeaturizer(rt, ref, mlabeler.FeaturizerOptions{Features: features})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []schemas.Rollout
	var correct []bool
	for g := range 40 {
		for _, r := range arithGroup(rng, fmt.Sprintf("train%d", g), 4) {
			rows, correct = append(rows, r.Rollout), append(correct, r.Correct)
		}
	}
	feats, err := f.Rollouts(rows)
	if err != nil {
		t.Fatal(err)
	}
	ex := make([]mlabeler.Example, len(rows))
	for i := range rows {
		ex[i] = mlabeler.Example{Group: rows[i].GroupID, Correct: correct[i], Features: feats[i]}
	}
	cfg := mlabeler.DefaultConfig()
	cfg.Hidden, cfg.Epochs, cfg.Reference, cfg.Features, cfg.Anchors = 64, 40, f.Reference(), f.Features(), false
	m, rep, err := mlabeler.Fit(rt, ex, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("labeler %s: %d pairs, held-out accuracy %.3f", m.ID(), rep.Pairs, rep.HeldOutAccuracy)
	s, err := mlabeler.NewScorer(f, m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWSGRPOWithFittedLabeler runs a group through the stage with a real
// fitted labeler: a concise correct completion earns more than one that
// re-checks after its answer, which earns more than the wrong ones, and
// per-step credit pushes the re-checks down.
func TestWSGRPOWithFittedLabeler(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := fittedScorer(t)
	p := newProcessor(t, labeler.Options{Shaping: shaping.DefaultConfig(), Scorer: s, StepAdvantages: true, Allocator: mem})
	const prompt = "23+41+12"
	got := mustProcess(t, p, mem,
		textRow("q", 0, 4, true, prompt, "23+41=64\n", "64+12=76\n", "A:76\n"),
		textRow("q", 1, 4, true, prompt, "23+41=64\n", "64+12=76\n", "A:76\n", "check 23+41=64\n", "check 23+41=64\n"),
		textRow("q", 2, 4, false, prompt, "23+41=64\n", "check 23+41=64\n", "check 23+41=64\n", "A:80\n"),
		textRow("q", 3, 4, false, prompt, "check 23+41=64\n"),
	)
	if len(got) != 4 {
		t.Fatalf("%d rows, want 4", len(got))
	}
	for i, r := range got {
		t.Logf("row %d: correct %v steps %d rewards %v shaped %.3f advantage %.3f step advantages %v", i, r.Correct, len(r.StepEnds), r.StepRewards, r.ShapedReward, r.Advantage, r.StepAdvantages)
		if r.Labeler != s.ID() || r.Shaper != shaping.WSGRPO || len(r.StepScores) != len(r.StepEnds)+1 || len(r.StepRewards) != len(r.StepEnds) || len(r.StepAdvantages) != len(r.StepEnds) {
			t.Errorf("row %d: labeler %q shaper %q, %d scores, %d rewards, %d step advantages for %d steps", i, r.Labeler, r.Shaper, len(r.StepScores), len(r.StepRewards), len(r.StepAdvantages), len(r.StepEnds))
		}
	}
	if !(got[0].Advantage > got[1].Advantage && got[1].Advantage > got[2].Advantage && got[1].Advantage > got[3].Advantage) {
		t.Errorf("advantages %v %v %v %v: want concise > re-checking > wrong", got[0].Advantage, got[1].Advantage, got[2].Advantage, got[3].Advantage)
	}
	over := got[1]
	for _, k := range []int{3, 4} {
		for _, j := range []int{0, 1, 2} {
			if over.StepAdvantages[k] >= over.StepAdvantages[j] {
				t.Errorf("re-check step %d advantage %v not below progress step %d's %v", k+1, over.StepAdvantages[k], j+1, over.StepAdvantages[j])
			}
		}
		if over.StepRewards[k] >= 0.5 {
			t.Errorf("re-check step %d reward %v, want below 0.5", k+1, over.StepRewards[k])
		}
	}
}

// TestWSGRPOTooLongIsPermanent checks that a rollout the reference policy
// cannot take (longer than its MaxSeq) dead-letters the batch.
func TestWSGRPOTooLongIsPermanent(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := newProcessor(t, labeler.Options{Shaping: shaping.DefaultConfig(), Scorer: fittedScorer(t), Allocator: mem})
	long := strings.Repeat("check 23+41=64\n", 12) // 180 tokens, MaxSeq 160
	_, err := process(t, p, mem, textRow("q", 0, 2, true, "23+41", "A:64\n"), textRow("q", 1, 2, false, "23+41", long))
	if !errors.Is(err, labeler.ErrUnscorable) || !errors.Is(err, mlabeler.ErrInput) || stage.Classify(err) != stage.ClassPermanent {
		t.Fatalf("got %v (class %s), want ErrUnscorable wrapping the labeler's ErrInput, permanent", err, stage.Classify(err))
	}
	t.Log(err)
}

// TestReferenceLogprobsOnRows: with the confidence features the labeled
// rows carry the reference policy's log-probabilities of their completion
// tokens (one per token, each a log-probability) and the reference's id;
// with hidden-state features, which run no language-model head, none.
func TestReferenceLogprobsOnRows(t *testing.T) {
	for _, kind := range []string{mlabeler.FeaturesConfidence, mlabeler.FeaturesHidden} {
		t.Run(kind, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			s := fittedScorerOf(t, kind)
			p := newProcessor(t, labeler.Options{Shaping: shaping.DefaultConfig(), Scorer: s, Allocator: mem})
			const prompt = "23+41+12"
			got := mustProcess(t, p, mem,
				textRow("q", 0, 2, true, prompt, "23+41=64\n", "64+12=76\n", "A:76\n"),
				textRow("q", 1, 2, false, prompt, "check 23+41=64\n"),
			)
			for i, r := range got {
				if kind == mlabeler.FeaturesHidden {
					if r.RefLogprobs != nil || r.Reference != "" {
						t.Errorf("row %d: %d reference log-probs from %q; hidden features have none", i, len(r.RefLogprobs), r.Reference)
					}
					continue
				}
				if r.Reference != s.Reference() || len(r.RefLogprobs) != len(r.CompletionTokenIDs) {
					t.Fatalf("row %d: %d reference log-probs for %d tokens, reference %q (want %q)", i, len(r.RefLogprobs), len(r.CompletionTokenIDs), r.Reference, s.Reference())
				}
				for j, v := range r.RefLogprobs {
					if !(v <= 0) {
						t.Errorf("row %d token %d: reference log-prob %v", i, j, v)
					}
				}
			}
		})
	}
}

// TestReferencePassOtherShapers: with a shaper that runs no preference
// model (grpo) and a ReferencePass, every labeled row carries the
// reference log-probabilities of its completion, equal to the featurizer's
// own (model/labeler's TokenLogprobs and Rollouts agree); without one, none.
func TestReferencePassOtherShapers(t *testing.T) {
	rt := orttest.Runtime(t)
	tok := tokenizer.Default()
	ref, err := checkpoint.New(policy.Config{VocabSize: tok.VocabSize(), DModel: 32, NLayers: 1, NHeads: 2, DFF: 64, MaxSeq: 160}, tok, 9)
	if err != nil {
		t.Fatal(err)
	}
	f, err := mlabeler.NewFeaturizer(rt, ref, mlabeler.FeaturizerOptions{Features: mlabeler.FeaturesConfidence})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	const prompt = "23+41+12"
	group := []schemas.Verified{
		textRow("q", 0, 2, true, prompt, "23+41=64\n", "64+12=76\n", "A:76\n"),
		textRow("q", 1, 2, false, prompt, "check 23+41=64\n"),
	}
	rs := []schemas.Rollout{group[0].Rollout, group[1].Rollout}
	feats, err := f.Rollouts(rs)
	if err != nil {
		t.Fatal(err)
	}
	for _, withRef := range []bool{true, false} {
		t.Run(fmt.Sprintf("reference pass %v", withRef), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			sc := shaping.DefaultConfig()
			sc.Shaper = shaping.GRPO
			o := labeler.Options{Shaping: sc, Allocator: mem}
			if withRef {
				o.Reference = f
			}
			got := mustProcess(t, newProcessor(t, o), mem, group...)
			for i, r := range got {
				if !withRef {
					if r.RefLogprobs != nil || r.Reference != "" {
						t.Errorf("row %d: reference log-probs without a reference pass", i)
					}
					continue
				}
				if r.Reference != f.Reference() || !slices.Equal(r.RefLogprobs, feats[i].TokenLogprobs) {
					t.Errorf("row %d: reference %q, log-probs %v; want %q, %v", i, r.Reference, r.RefLogprobs, f.Reference(), feats[i].TokenLogprobs)
				}
			}
		})
	}
	hidden, err := mlabeler.NewFeaturizer(rt, ref, mlabeler.FeaturizerOptions{Features: mlabeler.FeaturesHidden})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hidden.Close() })
	if _, err := hidden.TokenLogprobs(t.Context(), rs); !errors.Is(err, mlabeler.ErrConfig) {
		t.Fatalf("a hidden-state featurizer's TokenLogprobs: err %v, want ErrConfig", err)
	}
}
