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

// arithBatch returns a rollout batch of n arithmetic completions of about
// 100 to 300 characters, with token ids and logprobs as a sampler writes
// them: three in four answer (right or wrong), the rest are cut at the
// token limit without an answer.
func arithBatch(mem memory.Allocator, n int, seed uint64) arrow.RecordBatch {
	rng := rand.New(rand.NewPCG(seed, 1))
	rows := make([]schemas.Rollout, n)
	for i := range rows {
		a, b, c := rng.IntN(100), rng.IntN(100), rng.IntN(20)
		ans := (a+b)*3 - c
		// The trace format of tasks/arith: one operation a line, re-check
		// lines and verify passes (overthinking), the answer line last.
		steps := []string{
			fmt.Sprintf("%d+%d=%d", a, b, a+b),
			fmt.Sprintf("%d*3=%d", a+b, (a+b)*3),
			fmt.Sprintf("%d-%d=%d", (a+b)*3, c, ans),
		}
		var sb strings.Builder
		target := 100 + rng.IntN(200)
		for _, st := range steps {
			sb.WriteString(st + "\n")
			if rng.IntN(2) == 0 {
				sb.WriteString("check " + st + "\n")
			}
		}
		for sb.Len() < target-20 {
			sb.WriteString("verify:\n" + strings.Join(steps, "\n") + "\n")
		}
		finish := "eos"
		switch rng.IntN(4) {
		case 0:
			finish = "length" // cut in a verify pass: no answer line
		case 1:
			fmt.Fprintf(&sb, "A:%d", ans+1)
		default:
			fmt.Fprintf(&sb, "A:%d", ans)
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
// completions of 100 to 300 characters. "retain" is the processor (input columns retained, four
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
