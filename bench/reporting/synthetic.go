package reporting

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/report"
)

// syntheticGroup is the trajectories per training step of synthetic runs,
// as in logstore.SyntheticRows.
const syntheticGroup = 64

// SyntheticRows returns trajectories first..first+n-1 of a synthetic run of
// total trajectories with completions of 1..maxTokens tokens (64
// trajectories per training step). Unlike logstore.SyntheticRows, lengths
// vary and carry a trend a report can show: completions get shorter over
// training, longer ones are less often correct, those at maxTokens are
// truncated (finish_reason 'length'), and reasoning steps grow with length.
// Rows are deterministic for (run, first, n, total, maxTokens, seed), so a
// large run can be generated and inserted chunk by chunk.
func SyntheticRows(run string, first, n, total, maxTokens int, seed uint64) []tracelog.Row {
	maxTokens = max(maxTokens, 1)
	rows := logstore.SyntheticRows(run, n, maxTokens, seed^uint64(first))
	rng := rand.New(rand.NewPCG(seed, uint64(first)))
	lastStep := float64(max((total-1)/syntheticGroup, 1))
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		r := &rows[i]
		idx := first + i
		step := int64(idx / syntheticGroup)
		// rows[i] came from logstore.SyntheticRows numbered from 0: renumber.
		prompt, sample := "p"+strconv.Itoa((idx%syntheticGroup)/8), int32(idx%8)
		r.Step, r.PolicyVersion, r.PromptID, r.SampleIndex = step, max(step-1, 0), prompt, sample
		r.TrajectoryID = schemas.TrajectoryID(run, step, prompt, sample)
		r.GroupID = schemas.GroupID(run, step, prompt)
		r.Created = created.Add(time.Duration(step) * time.Second)
		r.CreatedMs = r.Created.UnixMilli()

		// Mean length falls from 75% to 35% of the limit over training.
		progress := float64(step) / lastStep
		mean := (0.75 - 0.4*progress) * float64(maxTokens)
		length := int(mean + rng.NormFloat64()*0.25*float64(maxTokens))
		length = min(max(length, 1), maxTokens)
		r.CompletionTokenIDs = r.CompletionTokenIDs[:length]
		r.TokenLogprobs = r.TokenLogprobs[:length]
		r.SamplerLogprobSum = 0
		for _, lp := range r.TokenLogprobs {
			r.SamplerLogprobSum += float64(lp)
		}
		r.CompletionTokens = uint32(length)
		r.FinishReason = "eos"
		if length == maxTokens {
			r.FinishReason = "length"
		}
		nsteps := 1 + length*8/(maxTokens+1) + rng.IntN(2)
		r.Steps = uint32(nsteps)
		r.StepEnds = make([]int32, nsteps)
		r.StepRewards = make([]float32, nsteps)
		r.StepScores = make([]float32, nsteps+1)
		for s := range nsteps {
			r.StepEnds[s] = int32((s + 1) * length / nsteps)
			r.StepRewards[s] = rng.Float32() - 0.5
			r.StepScores[s+1] = rng.Float32()
		}
		pCorrect := 0.3 + 0.5*progress - 0.4*float64(length)/float64(maxTokens)
		r.Correct = r.FinishReason != "length" && rng.Float64() < pCorrect
		r.TerminalReward = 0
		if r.Correct {
			r.TerminalReward = 1
		}
	}
	return rows
}

// InsertSynthetic writes a synthetic run of n trajectories (SyntheticRows)
// into s in batches of batchSize, generating one batch at a time so that
// memory stays small. s must be migrated.
func InsertSynthetic(ctx context.Context, s tracelog.Store, run string, n, batchSize, maxTokens int, seed uint64) (logstore.Result, error) {
	if batchSize < 1 {
		return logstore.Result{}, fmt.Errorf("%w: batch size %d", report.ErrOptions, batchSize)
	}
	total := logstore.Result{BatchSize: batchSize}
	for first := 0; first < n; first += batchSize {
		rows := SyntheticRows(run, first, min(batchSize, n-first), n, maxTokens, seed)
		st, err := logstore.Insert(ctx, s, rows, batchSize)
		total.Rows += st.Rows
		total.Batches += st.Batches
		total.Elapsed += st.Elapsed
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
