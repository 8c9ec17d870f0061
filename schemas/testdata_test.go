package schemas

import (
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// checkedMem returns an allocator that fails the test if anything leaks.
func checkedMem(t testing.TB) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

func sampleLabeled(n int) []Labeled {
	rows := make([]Labeled, n)
	for i := range rows {
		p := Prompt{
			RunID: "run-a", Step: 3, PromptID: fmt.Sprintf("p%d", i/4), Task: "add",
			Prompt: "2+3=", PromptTokenIDs: []int32{5, 6, 7, 8}, ReferenceAnswer: "5",
			Replayed: i%2 == 0, CreatedMs: 1700000000000 + int64(i),
		}
		rows[i] = Labeled{
			Verified: Verified{
				Rollout: Rollout{
					Prompt:       p,
					TrajectoryID: TrajectoryID(p.RunID, p.Step, p.PromptID, int32(i%4)),
					GroupID:      GroupID(p.RunID, p.Step, p.PromptID), SampleIndex: int32(i % 4),
					PolicyVersion: 7, Completion: "2+3\n=5\n", CompletionTokenIDs: []int32{1, 2, 3, int32(i)},
					TokenLogprobs: []float32{-0.1, -0.2, -0.3, -0.4}, StepEnds: []int32{2, 4},
					FinishReason: "eos", SampleMs: 1.5,
				},
				ExtractedAnswer: "5", Correct: i%3 == 0, TerminalReward: 1, VerifyMs: 0.01,
			},
			StepScores: []float32{0, 0.5, 0.7}, StepRewards: []float32{0.6, 0.55},
			ShapedReward: 1.2, Advantage: -0.3, StepAdvantages: nil, Shaper: "wsgrpo", LabelMs: 0.2,
		}
	}
	return rows
}

// encodeWith encodes a one-row batch of an arbitrary schema.
func encodeWith(t testing.TB, mem memory.Allocator, s *arrow.Schema) []byte {
	t.Helper()
	rec := buildEmpty(mem, s)
	defer rec.Release()
	b, err := Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
