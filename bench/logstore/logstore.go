// Package logstore measures inserts into the trajectory log (package
// tracelog) on either backend, as the logger stage makes them, and
// generates the synthetic trajectories they insert. `wsgrpo bench
// tracelog` prints these figures (docs/benchmarks/tracelog.md); tests of
// other packages use SyntheticRows as realistic trajectory-log rows.
package logstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// SyntheticRows returns n labeled-looking rows of run with tokens completion
// tokens each, deterministic for a seed: input for insert benchmarks and
// report-latency tests. Rows cycle through steps of 64 trajectories
// (groups of 8 samples).
func SyntheticRows(run string, n, tokens int, seed uint64) []tracelog.Row {
	rng := rand.New(rand.NewPCG(seed, 0x7472616365))
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]tracelog.Row, n)
	words := []string{"so ", "then ", "add ", "carry ", "the ", "sum ", "is ", "we ", "check ", "step "}
	for i := range rows {
		step := int64(i / 64)
		prompt := fmt.Sprintf("p%d", (i%64)/8)
		sample := int32(i % 8)
		ids := make([]int32, tokens)
		lps := make([]float32, tokens)
		var lp float64
		var sb strings.Builder
		for t := range ids {
			ids[t] = int32(rng.IntN(32000))
			lps[t] = -rng.Float32() * 3
			lp += float64(lps[t])
			if t%4 == 0 {
				sb.WriteString(words[rng.IntN(len(words))])
			}
		}
		nsteps := 1 + rng.IntN(8)
		ends := make([]int32, nsteps)
		rewards := make([]float32, nsteps)
		scores := make([]float32, nsteps+1)
		for s := range ends {
			ends[s] = int32((s + 1) * tokens / nsteps)
			rewards[s] = rng.Float32() - 0.5
			scores[s+1] = rng.Float32()
		}
		correct := rng.IntN(2) == 0
		finish := "eos"
		if rng.IntN(10) == 0 {
			finish = "length"
		}
		r := tracelog.Row{
			RunID:              run,
			Step:               step,
			PolicyVersion:      max(step-1, 0),
			TrajectoryID:       schemas.TrajectoryID(run, step, prompt, sample),
			GroupID:            schemas.GroupID(run, step, prompt),
			PromptID:           prompt,
			SampleIndex:        sample,
			Task:               "arith",
			Prompt:             fmt.Sprintf("%d+%d=", rng.IntN(1000), rng.IntN(1000)),
			Completion:         sb.String(),
			CompletionTokenIDs: ids,
			CompletionTokens:   uint32(tokens),
			Steps:              uint32(nsteps),
			FinishReason:       finish,
			ExtractedAnswer:    fmt.Sprint(rng.IntN(2000)),
			Correct:            correct,
			StepRewards:        rewards,
			ShapedReward:       rng.Float32(),
			Advantage:          rng.Float32()*2 - 1,
			Shaper:             "ws",
			SamplerLogprobSum:  lp,
			SampleMs:           rng.Float64() * 100,
			VerifyMs:           rng.Float64(),
			LabelMs:            rng.Float64() * 10,
			Created:            created.Add(time.Duration(step) * time.Second),
			Labeled:            true,
			ReferenceAnswer:    "42",
			PromptTokenIDs:     []int32{1, 2, 3, 4},
			TokenLogprobs:      lps,
			StepEnds:           ends,
			StepScores:         scores,
			CreatedMs:          created.Add(time.Duration(step) * time.Second).UnixMilli(),
			GroupSize:          8,
			Labeler:            fmt.Sprintf("pm-%d", max(step-1, 0)),
		}
		if correct {
			r.TerminalReward = 1
		}
		rows[i] = r
	}
	return rows
}

// Result is the outcome of Insert and InsertParallel.
type Result struct {
	Rows      int
	BatchSize int
	Batches   int
	Elapsed   time.Duration
}

// RowsPerSecond is the insert throughput.
func (s Result) RowsPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Rows) / s.Elapsed.Seconds()
}

// Insert inserts rows into s in batches of batchSize, one Insert per
// batch as the logger stage does, and times the whole. The store must be
// migrated.
func Insert(ctx context.Context, s tracelog.Store, rows []tracelog.Row, batchSize int) (Result, error) {
	if batchSize <= 0 {
		return Result{}, fmt.Errorf("%w: batch size %d", tracelog.ErrConfig, batchSize)
	}
	st := Result{BatchSize: batchSize}
	start := time.Now()
	for i := 0; i < len(rows); i += batchSize {
		b := rows[i:min(i+batchSize, len(rows))]
		if err := s.Insert(ctx, b); err != nil {
			return st, err
		}
		st.Rows += len(b)
		st.Batches++
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

// InsertParallel is Insert with workers goroutines calling Store.Insert at
// once, each taking the next batch of batchSize rows, as a logger with
// runner Concurrency workers does. workers <= 1 is Insert.
func InsertParallel(ctx context.Context, s tracelog.Store, rows []tracelog.Row, batchSize, workers int) (Result, error) {
	if workers <= 1 {
		return Insert(ctx, s, rows, batchSize)
	}
	if batchSize <= 0 {
		return Result{}, fmt.Errorf("%w: batch size %d", tracelog.ErrConfig, batchSize)
	}
	var batches [][]tracelog.Row
	for i := 0; i < len(rows); i += batchSize {
		batches = append(batches, rows[i:min(i+batchSize, len(rows))])
	}
	next := make(chan []tracelog.Row)
	errs := make(chan error, workers)
	start := time.Now()
	for range workers {
		go func() {
			var first error
			for b := range next {
				if first == nil {
					first = s.Insert(ctx, b)
				}
			}
			errs <- first
		}()
	}
	for _, b := range batches {
		next <- b
	}
	close(next)
	var err error
	for range workers {
		err = errors.Join(err, <-errs)
	}
	st := Result{Rows: len(rows), BatchSize: batchSize, Batches: len(batches), Elapsed: time.Since(start)}
	if err != nil {
		return st, err
	}
	return st, nil
}

// WaitMerges polls system.merges every 100 ms until the store's
// ClickHouse runs no merge, or limit passes (then it returns nil: merges
// on a busy server may never pause). Insert measurements call it first so
// that one does not pay for the merges of the rows before it.
func WaitMerges(ctx context.Context, s tracelog.Store, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		res, err := s.Query(ctx, "SELECT count() FROM system.merges")
		if err != nil {
			return fmt.Errorf("wait for merges: %w", err)
		}
		if len(res.Rows) == 1 && len(res.Rows[0]) == 1 {
			if n, ok := res.Rows[0][0].(uint64); ok && n == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
