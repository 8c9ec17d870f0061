package tracelog

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wsgrpo/wsgrpo/schemas/ddl"
)

// rowReader is implemented by both backends: whole rows, read exactly.
type rowReader interface {
	readRows(ctx context.Context, query string) ([]Row, error)
}

// ReadRows returns the de-duplicated rows that satisfy where (a SQL boolean
// expression over the trajectories columns, with ? placeholders bound to
// args; "" for every row), ordered by step and trajectory id. where is SQL:
// pass values as args, never spliced into it.
func ReadRows(ctx context.Context, s Store, where string, args ...any) ([]Row, error) {
	return readRowsWhere(ctx, s, where, "ORDER BY step, trajectory_id", args...)
}

// readRowsWhere reads whole rows through FINAL; where is wrapped in
// parentheses so it cannot reach past its clause, tail (ORDER BY, LIMIT) is
// this package's own SQL.
func readRowsWhere(ctx context.Context, s Store, where, tail string, args ...any) ([]Row, error) {
	rr, ok := s.(rowReader)
	if !ok {
		return nil, fmt.Errorf("%w: %T cannot read whole rows", ErrConfig, s)
	}
	q := "SELECT " + strings.Join(Columns, ", ") + " FROM " + ddl.Table + " FINAL"
	if strings.TrimSpace(where) != "" {
		q += " WHERE (" + where + "\n)"
	}
	q += " " + tail
	bound, err := Bind(q, args...)
	if err != nil {
		return nil, err
	}
	return rr.readRows(ctx, bound)
}

// ReadRun returns the de-duplicated rows of one run.
func ReadRun(ctx context.Context, s Store, run string) ([]Row, error) {
	return ReadRows(ctx, s, "run_id = ?", run)
}

func (s *embeddedStore) readRows(ctx context.Context, q string) ([]Row, error) {
	res, err := s.run(ctx, []byte(q), "RowBinary")
	if err != nil {
		return nil, err
	}
	rows, err := decodeRowBinary(res.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuery, err)
	}
	return rows, nil
}

func (s *serverStore) readRows(ctx context.Context, q string) ([]Row, error) {
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var (
			r                        Row
			correct, replayed, label uint8
			created                  time.Time
		)
		err := rows.Scan(&r.RunID, &r.Step, &r.PolicyVersion, &r.TrajectoryID, &r.GroupID, &r.PromptID,
			&r.SampleIndex, &r.Task, &r.Prompt, &r.Completion, &r.CompletionTokenIDs, &r.CompletionTokens,
			&r.Steps, &r.FinishReason, &r.ExtractedAnswer, &correct, &r.TerminalReward, &r.StepRewards,
			&r.ShapedReward, &r.Advantage, &r.Shaper, &r.SamplerLogprobSum, &r.SampleMs, &r.VerifyMs,
			&r.LabelMs, &replayed, &created, &r.Inserted,
			&label, &r.ReferenceAnswer, &r.PromptTokenIDs, &r.TokenLogprobs, &r.StepEnds,
			&r.StepScores, &r.StepAdvantages, &r.CreatedMs,
			&r.GroupSize, &r.Labeler)
		if err != nil {
			return nil, s.classify(err)
		}
		r.Correct, r.Replayed, r.Labeled = correct != 0, replayed != 0, label != 0
		r.Created = created.UTC()
		nilIfEmpty(&r)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.classify(err)
	}
	return out, nil
}

// nilIfEmpty makes empty arrays nil, as the embedded backend reads them.
func nilIfEmpty(r *Row) {
	for _, p := range []*[]int32{&r.CompletionTokenIDs, &r.PromptTokenIDs, &r.StepEnds} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	for _, p := range []*[]float32{&r.StepRewards, &r.TokenLogprobs, &r.StepScores, &r.StepAdvantages} {
		if len(*p) == 0 {
			*p = nil
		}
	}
}
