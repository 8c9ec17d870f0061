package labeler_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/segment"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// tinyRef returns a tiny random reference policy over the character
// tokenizer.
func tinyRef(t testing.TB, dModel, layers int, seed uint64) *checkpoint.Checkpoint {
	t.Helper()
	tok := tokenizer.Default()
	c, err := checkpoint.New(policy.Config{VocabSize: tok.VocabSize(), DModel: dModel, NLayers: layers, NHeads: 2, DFF: 2 * dModel, MaxSeq: 160}, tok, seed)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rollout returns a rollout of prompt with the given completion lines, its
// steps segmented as the sampler does.
func rollout(group string, sample int, prompt string, lines ...string) schemas.Rollout {
	tok := tokenizer.Default()
	ids := tok.Encode(strings.Join(lines, ""))
	return schemas.Rollout{
		Prompt:             schemas.Prompt{PromptID: group, Prompt: prompt, PromptTokenIDs: append([]int32{tok.BOS()}, tok.Encode(prompt+"\n")...)},
		TrajectoryID:       fmt.Sprintf("%s/%d", group, sample),
		GroupID:            group,
		SampleIndex:        int32(sample),
		Completion:         strings.Join(lines, ""),
		CompletionTokenIDs: ids,
		StepEnds:           segment.Lines(tok, ids),
	}
}

// arithGroup returns a group of rollouts of one addition prompt a+b+c:
// correct ones work it out line by line and state the answer; wrong ones
// work out part of it, then loop on re-checks of what they already have
// and never answer, or answer wrongly after re-checking.
func arithGroup(rng *rand.Rand, group string, size int) ([]schemas.Rollout, []bool) {
	a, b, c := rng.IntN(90)+10, rng.IntN(90)+10, rng.IntN(90)+10
	prompt := fmt.Sprintf("%d+%d+%d", a, b, c)
	s1, s2 := a+b, a+b+c
	progress := []string{fmt.Sprintf("%d+%d=%d\n", a, b, s1), fmt.Sprintf("%d+%d=%d\n", s1, c, s2)}
	var rows []schemas.Rollout
	var correct []bool
	for i := range size {
		var lines []string
		ok := i%2 == 0
		if ok {
			lines = append(append(lines, progress...), fmt.Sprintf("A:%d\n", s2))
		} else {
			lines = append(lines, progress[:rng.IntN(2)]...)
			for range 1 + rng.IntN(3) {
				lines = append(lines, "check "+progress[0])
			}
			if rng.IntN(2) == 0 {
				lines = append(lines, fmt.Sprintf("A:%d\n", s2+1+rng.IntN(9)))
			}
		}
		rows = append(rows, rollout(group, i, prompt, lines...))
		correct = append(correct, ok)
	}
	return rows, correct
}

// examples featurizes groups of rollouts into labeler examples.
func examples(t testing.TB, f *labeler.Featurizer, rows []schemas.Rollout, correct []bool) []labeler.Example {
	t.Helper()
	feats, err := f.Rollouts(rows)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]labeler.Example, len(rows))
	for i := range rows {
		out[i] = labeler.Example{Group: rows[i].GroupID, Correct: correct[i], Features: feats[i]}
	}
	return out
}
