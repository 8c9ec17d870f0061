package schemas

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Prompt is one row of a prompt batch: a task instance to sample a group for.
type Prompt struct {
	RunID    string
	Step     int64
	PromptID string
	Task     string
	Prompt   string
	// PromptTokenIDs, when set on a prompt row, are the prompt's token ids
	// (the sampler then skips encoding Prompt and puts BOS first unless
	// they start with it). On a rollout row the sampler sets them to the
	// exact ids it conditioned on, BOS first: the labeler and the learner
	// score completions in that context.
	PromptTokenIDs  []int32
	ReferenceAnswer string
	Replayed        bool
	CreatedMs       int64
}

// Rollout is one sampled completion of a prompt.
type Rollout struct {
	Prompt
	TrajectoryID string
	GroupID      string
	SampleIndex  int32
	// GroupSize is G, the number of samples of the prompt in its group
	// (SampleIndex runs 0..G-1); the labeler scores a group once all G
	// have arrived.
	GroupSize          int32
	PolicyVersion      int64
	Completion         string
	CompletionTokenIDs []int32
	TokenLogprobs      []float32
	StepEnds           []int32 // exclusive token offsets where each reasoning step ends
	FinishReason       string  // eos, stop or length
	SampleMs           float64
}

// Verified is a rollout with its final answer judged.
type Verified struct {
	Rollout
	ExtractedAnswer string
	Correct         bool
	TerminalReward  float32
	VerifyMs        float64
}

// Labeled is a verified rollout with WS-GRPO guidance and its advantage.
type Labeled struct {
	Verified
	StepScores   []float32 // preference score of each prefix, prefix 0 (empty) first
	StepRewards  []float32 // per-step reward, one per reasoning step
	ShapedReward float32
	Advantage    float32
	// StepAdvantages is the optional per-step credit: the advantage of
	// the tokens of step t (Advantage plus a centred step term, see
	// shaping.Config.StepAdvantages); tokens after the last step end keep
	// Advantage. Nil when per-step credit is off.
	StepAdvantages []float32
	Shaper         string
	// Labeler is the version of the preference model that scored the row
	// (its artifact's id), empty for shapers that use none.
	Labeler string
	LabelMs float64
	// RefLogprobs, when set, are the reference policy's log-probabilities
	// of the completion's tokens (one per token), computed by a labeler
	// that ran the reference forward pass anyway (the confidence
	// features): a learner whose KL reference is Reference uses them
	// instead of running that pass again. Nil when the labeler ran none.
	RefLogprobs []float32
	// Reference identifies the policy RefLogprobs come from (a content
	// hash, see model/labeler.ReferenceID); empty with no RefLogprobs.
	Reference string
}

// GroupID returns the stable id of the group of samples for one prompt.
func GroupID(run string, step int64, promptID string) string {
	return fmt.Sprintf("%s/%d/%s", run, step, promptID)
}

// TrajectoryID returns the stable id of one sampled completion.
func TrajectoryID(run string, step int64, promptID string, sample int32) string {
	return fmt.Sprintf("%s/%d/%s/%d", run, step, promptID, sample)
}

// NewPromptBatch builds a prompt record batch; the caller releases it.
func NewPromptBatch(mem memory.Allocator, rows []Prompt) arrow.RecordBatch {
	return build(mem, KindPrompt, len(rows), func(w *writer, i int) { w.prompt(&rows[i]) })
}

// NewRolloutBatch builds a rollout record batch; the caller releases it.
func NewRolloutBatch(mem memory.Allocator, rows []Rollout) arrow.RecordBatch {
	return build(mem, KindRollout, len(rows), func(w *writer, i int) { w.rollout(&rows[i]) })
}

// NewVerifiedBatch builds a verified record batch; the caller releases it.
func NewVerifiedBatch(mem memory.Allocator, rows []Verified) arrow.RecordBatch {
	return build(mem, KindVerified, len(rows), func(w *writer, i int) { w.verified(&rows[i]) })
}

// NewLabeledBatch builds a labeled record batch; the caller releases it.
func NewLabeledBatch(mem memory.Allocator, rows []Labeled) arrow.RecordBatch {
	return build(mem, KindLabeled, len(rows), func(w *writer, i int) { w.labeled(&rows[i]) })
}

// ReadPrompts returns the rows of a prompt batch (or the prompt columns of
// any later kind).
func ReadPrompts(rec arrow.RecordBatch) ([]Prompt, error) {
	out := make([]Prompt, rec.NumRows())
	err := read(rec, KindPrompt, func(r *reader, i int) { r.prompt(&out[i]) })
	return out, err
}

// ReadRollouts returns the rows of a rollout batch (or the rollout columns of
// a later kind).
func ReadRollouts(rec arrow.RecordBatch) ([]Rollout, error) {
	out := make([]Rollout, rec.NumRows())
	err := read(rec, KindRollout, func(r *reader, i int) { r.rollout(&out[i]) })
	return out, err
}

// ReadVerified returns the rows of a verified batch (or the verified columns
// of a labeled batch).
func ReadVerified(rec arrow.RecordBatch) ([]Verified, error) {
	out := make([]Verified, rec.NumRows())
	err := read(rec, KindVerified, func(r *reader, i int) { r.verified(&out[i]) })
	return out, err
}

// ReadLabeled returns the rows of a labeled batch.
func ReadLabeled(rec arrow.RecordBatch) ([]Labeled, error) {
	out := make([]Labeled, rec.NumRows())
	err := read(rec, KindLabeled, func(r *reader, i int) { r.labeled(&out[i]) })
	return out, err
}

func build(mem memory.Allocator, k Kind, n int, row func(*writer, int)) arrow.RecordBatch {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	b := array.NewRecordBuilder(mem, MustSchema(k))
	defer b.Release()
	b.Reserve(n)
	w := &writer{b: b}
	for i := range n {
		w.col = 0
		row(w, i)
	}
	return b.NewRecordBatch()
}

// read checks that rec has at least the columns of kind k, in order, and
// calls row for every row. A crafted batch that slipped past Decode cannot
// make it panic: a panic becomes ErrMalformed.
func read(rec arrow.RecordBatch, k Kind, row func(*reader, int)) (err error) {
	fs, err := Fields(k)
	if err != nil {
		return err
	}
	if int(rec.NumCols()) < len(fs) {
		return fmt.Errorf("%w: %d columns, %s needs %d", ErrSchemaMismatch, rec.NumCols(), k, len(fs))
	}
	for i, f := range fs {
		g := rec.Schema().Field(i)
		if g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) {
			return fmt.Errorf("%w: column %d is %s %s, want %s %s", ErrSchemaMismatch, i, g.Name, g.Type, f.Name, f.Type)
		}
	}
	defer recoverInto(&err)
	r := &reader{rec: rec}
	for i := range int(rec.NumRows()) {
		r.col, r.row = 0, i
		row(r, i)
	}
	return nil
}

// writer appends one row's values column by column.
type writer struct {
	b   *array.RecordBuilder
	col int
}

func (w *writer) next() array.Builder { f := w.b.Field(w.col); w.col++; return f }
func (w *writer) str(v string)        { w.next().(*array.StringBuilder).Append(v) }
func (w *writer) i64(v int64)         { w.next().(*array.Int64Builder).Append(v) }
func (w *writer) i32(v int32)         { w.next().(*array.Int32Builder).Append(v) }
func (w *writer) f32(v float32)       { w.next().(*array.Float32Builder).Append(v) }
func (w *writer) f64(v float64)       { w.next().(*array.Float64Builder).Append(v) }
func (w *writer) boolean(v bool)      { w.next().(*array.BooleanBuilder).Append(v) }

func (w *writer) i32s(v []int32) {
	lb := w.next().(*array.ListBuilder)
	lb.Append(true)
	lb.ValueBuilder().(*array.Int32Builder).AppendValues(v, nil)
}

func (w *writer) f32s(v []float32) {
	lb := w.next().(*array.ListBuilder)
	lb.Append(true)
	lb.ValueBuilder().(*array.Float32Builder).AppendValues(v, nil)
}

func (w *writer) prompt(p *Prompt) {
	w.str(p.RunID)
	w.i64(p.Step)
	w.str(p.PromptID)
	w.str(p.Task)
	w.str(p.Prompt)
	w.i32s(p.PromptTokenIDs)
	w.str(p.ReferenceAnswer)
	w.boolean(p.Replayed)
	w.i64(p.CreatedMs)
}

func (w *writer) rollout(r *Rollout) {
	w.prompt(&r.Prompt)
	w.str(r.TrajectoryID)
	w.str(r.GroupID)
	w.i32(r.SampleIndex)
	w.i32(r.GroupSize)
	w.i64(r.PolicyVersion)
	w.str(r.Completion)
	w.i32s(r.CompletionTokenIDs)
	w.f32s(r.TokenLogprobs)
	w.i32s(r.StepEnds)
	w.str(r.FinishReason)
	w.f64(r.SampleMs)
}

func (w *writer) verified(v *Verified) {
	w.rollout(&v.Rollout)
	w.str(v.ExtractedAnswer)
	w.boolean(v.Correct)
	w.f32(v.TerminalReward)
	w.f64(v.VerifyMs)
}

func (w *writer) labeled(l *Labeled) {
	w.verified(&l.Verified)
	w.f32s(l.StepScores)
	w.f32s(l.StepRewards)
	w.f32(l.ShapedReward)
	w.f32(l.Advantage)
	w.f32s(l.StepAdvantages)
	w.str(l.Shaper)
	w.str(l.Labeler)
	w.f64(l.LabelMs)
	w.f32s(l.RefLogprobs)
	w.str(l.Reference)
}

// reader reads one row's values column by column.
type reader struct {
	rec      arrow.RecordBatch
	col, row int
}

func (r *reader) next() arrow.Array { c := r.rec.Column(r.col); r.col++; return c }
func (r *reader) str() string {
	// arrow-go's Value aliases the batch's buffer; rows outlive batches.
	return strings.Clone(r.next().(*array.String).Value(r.row))
}
func (r *reader) i64() int64    { return r.next().(*array.Int64).Value(r.row) }
func (r *reader) i32() int32    { return r.next().(*array.Int32).Value(r.row) }
func (r *reader) f32() float32  { return r.next().(*array.Float32).Value(r.row) }
func (r *reader) f64() float64  { return r.next().(*array.Float64).Value(r.row) }
func (r *reader) boolean() bool { return r.next().(*array.Boolean).Value(r.row) }

func (r *reader) i32s() []int32 {
	l := r.next().(*array.List)
	if l.IsNull(r.row) {
		return nil
	}
	s, e := l.ValueOffsets(r.row)
	vals := l.ListValues().(*array.Int32).Int32Values()
	return append([]int32(nil), vals[s:e]...)
}

func (r *reader) f32s() []float32 {
	l := r.next().(*array.List)
	if l.IsNull(r.row) {
		return nil
	}
	s, e := l.ValueOffsets(r.row)
	vals := l.ListValues().(*array.Float32).Float32Values()
	return append([]float32(nil), vals[s:e]...)
}

func (r *reader) prompt(p *Prompt) {
	p.RunID = r.str()
	p.Step = r.i64()
	p.PromptID = r.str()
	p.Task = r.str()
	p.Prompt = r.str()
	p.PromptTokenIDs = r.i32s()
	p.ReferenceAnswer = r.str()
	p.Replayed = r.boolean()
	p.CreatedMs = r.i64()
}

func (r *reader) rollout(o *Rollout) {
	r.prompt(&o.Prompt)
	o.TrajectoryID = r.str()
	o.GroupID = r.str()
	o.SampleIndex = r.i32()
	o.GroupSize = r.i32()
	o.PolicyVersion = r.i64()
	o.Completion = r.str()
	o.CompletionTokenIDs = r.i32s()
	o.TokenLogprobs = r.f32s()
	o.StepEnds = r.i32s()
	o.FinishReason = r.str()
	o.SampleMs = r.f64()
}

func (r *reader) verified(v *Verified) {
	r.rollout(&v.Rollout)
	v.ExtractedAnswer = r.str()
	v.Correct = r.boolean()
	v.TerminalReward = r.f32()
	v.VerifyMs = r.f64()
}

func (r *reader) labeled(l *Labeled) {
	r.verified(&l.Verified)
	l.StepScores = r.f32s()
	l.StepRewards = r.f32s()
	l.ShapedReward = r.f32()
	l.Advantage = r.f32()
	l.StepAdvantages = r.f32s()
	l.Shaper = r.str()
	l.Labeler = r.str()
	l.LabelMs = r.f64()
	l.RefLogprobs = r.f32s()
	l.Reference = r.str()
}
