package verifier

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/schemas"
)

// arithBatch returns a rollout batch of n arithmetic completions of 100 to
// 300 characters, with token ids and logprobs as a sampler writes them:
// three in four answer (right or wrong), the rest are cut at the token
// limit without an answer.
func arithBatch(mem memory.Allocator, n int, seed uint64) arrow.RecordBatch {
	rng := rand.New(rand.NewPCG(seed, 1))
	rows := make([]schemas.Rollout, n)
	for i := range rows {
		a, b, c := rng.IntN(100), rng.IntN(100), rng.IntN(20)
		ans := (a+b)*3 - c
		var sb strings.Builder
		fmt.Fprintf(&sb, "Q: (%d+%d)*3-%d\n", a, b, c)
		fmt.Fprintf(&sb, "First add the numbers in the brackets: %d+%d = %d.\n", a, b, a+b)
		fmt.Fprintf(&sb, "Then multiply by three: %d*3 = %d.\n", a+b, (a+b)*3)
		for sb.Len() < 100+rng.IntN(150) {
			sb.WriteString("Check the carry once more before going on.\n")
		}
		finish := "eos"
		switch rng.IntN(4) {
		case 0:
			finish = "length"
		case 1:
			fmt.Fprintf(&sb, "Finally subtract: %d-%d = %d.\nA: %d", (a+b)*3, c, ans+1, ans+1)
		default:
			fmt.Fprintf(&sb, "Finally subtract: %d-%d = %d.\nA: %d", (a+b)*3, c, ans, ans)
		}
		tokens := sb.Len() / 3
		ids := make([]int32, tokens)
		lps := make([]float32, tokens)
		for t := range ids {
			ids[t] = int32(rng.IntN(32000))
			lps[t] = -rng.Float32() * 3
		}
		pid := fmt.Sprintf("p%d", i/8)
		rows[i] = schemas.Rollout{
			Prompt: schemas.Prompt{
				RunID: "bench", Step: 1, PromptID: pid, Task: "arith",
				Prompt: fmt.Sprintf("(%d+%d)*3-%d", a, b, c), PromptTokenIDs: []int32{1, 2, 3, 4, 5, 6},
				ReferenceAnswer: fmt.Sprint(ans), CreatedMs: 1,
			},
			TrajectoryID:       schemas.TrajectoryID("bench", 1, pid, int32(i%8)),
			GroupID:            schemas.GroupID("bench", 1, pid),
			SampleIndex:        int32(i % 8),
			Completion:         sb.String(),
			CompletionTokenIDs: ids,
			TokenLogprobs:      lps,
			StepEnds:           []int32{int32(tokens / 3), int32(2 * tokens / 3), int32(tokens)},
			FinishReason:       finish,
			SampleMs:           30,
		}
	}
	return schemas.NewRolloutBatch(mem, rows)
}

// BenchmarkVerifier measures the processor on 64-row batches of arithmetic
// completions. "retain" is the processor (input columns retained, four
// columns added); "rebuild" is the simple construction it replaced (read
// the rows, judge them, schemas.NewVerifiedBatch), kept for comparison.
func BenchmarkVerifier(b *testing.B) {
	const rows = 64
	in := arithBatch(memory.DefaultAllocator, rows, 7)
	defer in.Release()
	p, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("retain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			outs, err := p.Process(context.Background(), in)
			if err != nil {
				b.Fatal(err)
			}
			outs[0].Release()
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("rebuild", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rebuild(b, p, in, memory.DefaultAllocator).Release()
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
