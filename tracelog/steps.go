package tracelog

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/wsgrpo/wsgrpo/schemas/ddl"
)

// StepRow is one learner update as the steps table stores it. Field order
// follows StepColumns.
type StepRow struct {
	RunID         string
	Step          int64
	PolicyVersion int64 // the version this update produced
	Shaper        string
	Loss          float64
	KL            float64 // masked mean k3 KL estimate to the reference
	ClipFrac      float64 // fraction of tokens whose ratio was clipped
	Ratio         float64 // masked mean importance ratio
	GradNorm      float64
	MeanReward    float64
	Accuracy      float64
	MeanTokens    float64
	MeanSteps     float64
	Staleness     float64 // mean policy-version lag of the batch's rows
	Rows          uint32  // trajectories in the update's batch
	// Skipped is true for an update that was not applied because its loss
	// or gradient was not finite.
	Skipped           bool
	WaitMs            float64
	ForwardBackwardMs float64
	OptimizerMs       float64
	PublishMs         float64
	Created           time.Time // second precision in the table
	// Inserted is the ReplacingMergeTree version: InsertSteps sets it to the
	// insert time in nanoseconds when it is zero. Of two rows of one step
	// the reader returns the one with the larger Inserted.
	Inserted uint64
}

// StepColumns are the steps table's columns in StepRow field order: the
// column list of every INSERT and SELECT of whole step rows.
var StepColumns = []string{
	"run_id", "step", "policy_version", "shaper", "loss", "kl", "clip_frac", "ratio",
	"grad_norm", "mean_reward", "accuracy", "mean_tokens", "mean_steps", "staleness",
	"rows", "skipped", "wait_ms", "forward_backward_ms", "optimizer_ms", "publish_ms",
	"created", "inserted",
}

// stepsInsertQ is the INSERT both backends send step rows to.
var stepsInsertQ = "INSERT INTO " + ddl.StepsTable + " (" + strings.Join(StepColumns, ", ") + ")"

// stepsQuery selects the de-duplicated steps of run, ordered by step.
func stepsQuery(run string) (string, error) {
	return Bind("SELECT "+strings.Join(StepColumns, ", ")+" FROM "+ddl.StepsTable+
		" FINAL WHERE run_id = ? ORDER BY step", run)
}

// stepValues returns r's column values in StepColumns order, as the server
// driver takes them, with Inserted defaulting to version.
func stepValues(r *StepRow, version uint64) []any {
	ins := r.Inserted
	if ins == 0 {
		ins = version
	}
	return []any{
		r.RunID, r.Step, r.PolicyVersion, r.Shaper, r.Loss, r.KL, r.ClipFrac, r.Ratio,
		r.GradNorm, r.MeanReward, r.Accuracy, r.MeanTokens, r.MeanSteps, r.Staleness,
		r.Rows, boolU8(r.Skipped), r.WaitMs, r.ForwardBackwardMs, r.OptimizerMs, r.PublishMs,
		time.Unix(int64(dateTimeSeconds(r.Created)), 0).UTC(), ins,
	}
}

func boolU8(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}

// appendStepRowBinary appends r in RowBinary, columns in StepColumns order,
// with Inserted defaulting to version.
func appendStepRowBinary(b []byte, r *StepRow, version uint64) []byte {
	le := binary.LittleEndian
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	f64 := func(v float64) { b = le.AppendUint64(b, math.Float64bits(v)) }
	str(r.RunID)
	b = le.AppendUint64(b, uint64(r.Step))
	b = le.AppendUint64(b, uint64(r.PolicyVersion))
	str(r.Shaper)
	for _, v := range []float64{r.Loss, r.KL, r.ClipFrac, r.Ratio, r.GradNorm, r.MeanReward,
		r.Accuracy, r.MeanTokens, r.MeanSteps, r.Staleness} {
		f64(v)
	}
	b = le.AppendUint32(b, r.Rows)
	b = append(b, boolU8(r.Skipped))
	for _, v := range []float64{r.WaitMs, r.ForwardBackwardMs, r.OptimizerMs, r.PublishMs} {
		f64(v)
	}
	b = le.AppendUint32(b, dateTimeSeconds(r.Created))
	ins := r.Inserted
	if ins == 0 {
		ins = version
	}
	return le.AppendUint64(b, ins)
}

// decodeStepRowBinary reads step rows written in StepColumns order until
// data ends.
func decodeStepRowBinary(data []byte) ([]StepRow, error) {
	r := &rbReader{b: data}
	var rows []StepRow
	for len(r.b) > 0 && r.err == nil {
		var x StepRow
		x.RunID = r.str()
		x.Step = int64(r.u64())
		x.PolicyVersion = int64(r.u64())
		x.Shaper = r.str()
		for _, p := range []*float64{&x.Loss, &x.KL, &x.ClipFrac, &x.Ratio, &x.GradNorm, &x.MeanReward,
			&x.Accuracy, &x.MeanTokens, &x.MeanSteps, &x.Staleness} {
			*p = r.f64()
		}
		x.Rows = r.u32()
		x.Skipped = r.u8()
		for _, p := range []*float64{&x.WaitMs, &x.ForwardBackwardMs, &x.OptimizerMs, &x.PublishMs} {
			*p = r.f64()
		}
		x.Created = time.Unix(int64(r.u32()), 0).UTC()
		x.Inserted = r.u64()
		if r.err == nil {
			rows = append(rows, x)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return rows, nil
}

// InsertSteps implements Store: one INSERT in RowBinary, checked against
// the engine's count of written rows.
func (s *embeddedStore) InsertSteps(ctx context.Context, rows []StepRow) error {
	if len(rows) == 0 {
		return nil
	}
	version := uint64(time.Now().UnixNano())
	var buf []byte
	for i := range rows {
		buf = appendStepRowBinary(buf, &rows[i], version)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	res, err := s.conn.Insert(stepsInsertQ, "RowBinary", buf)
	if err != nil {
		return fmt.Errorf("%w: %w: %w", ErrInsert, ErrQuery, s.full(err))
	}
	if res.RowsWritten != uint64(len(rows)) {
		return fmt.Errorf("%w: engine wrote %d step rows, want %d", ErrInsert, res.RowsWritten, len(rows))
	}
	return nil
}

// Steps implements Store.
func (s *embeddedStore) Steps(ctx context.Context, run string) ([]StepRow, error) {
	q, err := stepsQuery(run)
	if err != nil {
		return nil, err
	}
	res, err := s.run(ctx, []byte(q), "RowBinary")
	if err != nil {
		return nil, err
	}
	rows, err := decodeStepRowBinary(res.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuery, err)
	}
	return rows, nil
}

// InsertSteps implements Store: one batch INSERT naming its columns (the
// server inserts nothing for a batch without them), whose row count is
// checked before it is sent.
func (s *serverStore) InsertSteps(ctx context.Context, rows []StepRow) error {
	if len(rows) == 0 {
		return nil
	}
	version := uint64(time.Now().UnixNano())
	batch, err := s.conn.PrepareBatch(ctx, stepsInsertQ)
	if err != nil {
		return s.classify(err)
	}
	defer func() { _ = batch.Close() }()
	for i := range rows {
		if err := batch.Append(stepValues(&rows[i], version)...); err != nil {
			return fmt.Errorf("%w: step row %d: %w", ErrInsert, i, err)
		}
	}
	if batch.Rows() != len(rows) {
		return fmt.Errorf("%w: batch holds %d step rows, want %d", ErrInsert, batch.Rows(), len(rows))
	}
	if err := batch.Send(); err != nil {
		return s.classify(err)
	}
	return nil
}

// Steps implements Store.
func (s *serverStore) Steps(ctx context.Context, run string) ([]StepRow, error) {
	q, err := stepsQuery(run)
	if err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	var out []StepRow
	for rows.Next() {
		var (
			r       StepRow
			skipped uint8
			created time.Time
		)
		err := rows.Scan(&r.RunID, &r.Step, &r.PolicyVersion, &r.Shaper, &r.Loss, &r.KL, &r.ClipFrac,
			&r.Ratio, &r.GradNorm, &r.MeanReward, &r.Accuracy, &r.MeanTokens, &r.MeanSteps, &r.Staleness,
			&r.Rows, &skipped, &r.WaitMs, &r.ForwardBackwardMs, &r.OptimizerMs, &r.PublishMs,
			&created, &r.Inserted)
		if err != nil {
			return nil, s.classify(err)
		}
		r.Skipped = skipped != 0
		r.Created = created.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.classify(err)
	}
	return out, nil
}
