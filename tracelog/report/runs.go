package report

import (
	"context"
	"fmt"
)

// QueryRuns lists the runs in a log.
const QueryRuns = "runs"

// RunInfo is one run in a log.
type RunInfo struct {
	Run           string `json:"run"`
	Trajectories  int64  `json:"trajectories"`
	TrainingSteps int64  `json:"training_steps"`
	FirstStep     int64  `json:"first_step"`
	LastStep      int64  `json:"last_step"`
}

// Runs lists the runs the log behind q holds, by run id.
func Runs(ctx context.Context, q Querier) ([]RunInfo, error) {
	res, err := builder{ctx: ctx, q: q, log: discard}.query(QueryRuns)
	if err != nil {
		return nil, err
	}
	rd, err := newReader(QueryRuns, res)
	if err != nil {
		return nil, err
	}
	i, ok := rd.cols["run_id"]
	if !ok {
		return nil, fmt.Errorf("%w: %s: no column run_id", ErrResult, QueryRuns)
	}
	out := make([]RunInfo, len(res.Rows))
	for j, row := range res.Rows {
		rd.row = row
		run, ok := row[i].(string)
		if !ok {
			return nil, fmt.Errorf("%w: %s: run_id holds %T", ErrResult, QueryRuns, row[i])
		}
		out[j] = RunInfo{Run: run, Trajectories: rd.int("n"), TrainingSteps: rd.int("training_steps"),
			FirstStep: rd.int("first_step"), LastStep: rd.int("last_step")}
	}
	return out, rd.err
}
