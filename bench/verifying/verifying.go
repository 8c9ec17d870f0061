// Package verifying measures the verifier stage: rows per second judged on
// rollout batches of arith completions in the pretraining trace format
// (minimal and overthinking traces, some with slips, some cut at the token
// limit). `wsgrpo bench verifier` prints it beside the sampler's
// rollouts/s, the rate it has to keep up with.
package verifying

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/verifier"
	"github.com/wsgrpo/wsgrpo/tasks"
	"github.com/wsgrpo/wsgrpo/tasks/arith"
)

// ErrOptions is returned for options that cannot be measured.
var ErrOptions = errors.New("verifying: invalid options")

// Result is one measurement.
type Result struct {
	Rows       int
	Elapsed    time.Duration
	RowsPerSec float64
	// Correct is the share of rows judged correct (a sanity check of the
	// input: neither 0 nor 1).
	Correct float64
}

// Batch returns a rollout batch of rows arith completions: traces of the
// default task (overthinking, slips), every fourth one cut in the middle
// as a completion that hit the token limit.
func Batch(mem memory.Allocator, rows int, seed uint64) (arrow.RecordBatch, error) {
	task, err := arith.New(arith.DefaultConfig())
	if err != nil {
		return nil, err
	}
	tok := tokenizer.Default()
	next, stop := iter.Pull(task.Examples(tasks.Train, seed))
	defer stop()
	out := make([]schemas.Rollout, rows)
	for i := range out {
		ex, _ := next()
		text, finish := ex.Trace.Text, "eos"
		if i%4 == 3 {
			text, finish = text[:len(text)/2], "length"
		}
		ids := tok.Encode(text)
		pid := fmt.Sprintf("p%d", i/8)
		out[i] = schemas.Rollout{
			Prompt: schemas.Prompt{RunID: "bench", Step: 1, PromptID: pid, Task: arith.Name, Prompt: ex.Text,
				ReferenceAnswer: fmt.Sprint(ex.Answer)},
			TrajectoryID: schemas.TrajectoryID("bench", 1, pid, int32(i%8)), GroupID: schemas.GroupID("bench", 1, pid),
			SampleIndex: int32(i % 8), Completion: text, CompletionTokenIDs: ids, TokenLogprobs: make([]float32, len(ids)),
			FinishReason: finish,
		}
	}
	return schemas.NewRolloutBatch(mem, out), nil
}

// Run judges batches batches of rows rows each with a default verifier.
func Run(ctx context.Context, rows, batches int) (Result, error) {
	if rows < 1 || batches < 1 {
		return Result{}, fmt.Errorf("%w: rows %d, batches %d", ErrOptions, rows, batches)
	}
	in, err := Batch(memory.DefaultAllocator, rows, 1)
	if err != nil {
		return Result{}, err
	}
	defer in.Release()
	p, err := verifier.New(verifier.Options{})
	if err != nil {
		return Result{}, err
	}
	var res Result
	start := time.Now()
	for range batches {
		outs, err := p.Process(ctx, in)
		if err != nil {
			return Result{}, err
		}
		for _, o := range outs {
			o.Release()
		}
	}
	res.Elapsed = time.Since(start)
	res.Rows = rows * batches
	res.RowsPerSec = float64(res.Rows) / res.Elapsed.Seconds()
	outs, err := p.Process(ctx, in)
	if err != nil {
		return Result{}, err
	}
	defer outs[0].Release()
	vs, err := schemas.ReadVerified(outs[0])
	if err != nil {
		return Result{}, err
	}
	for _, v := range vs {
		if v.Correct {
			res.Correct++
		}
	}
	res.Correct /= float64(len(vs))
	return res, nil
}
