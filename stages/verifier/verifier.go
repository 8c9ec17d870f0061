// Package verifier is the verifier stage: it judges the final answer of
// every sampled completion against its prompt's reference answer.
//
// Input: a rollout batch. Output: one verified batch holding the same rows
// in the same order, every rollout column carried unchanged (the input's
// arrays are retained, not copied) and the verifier's four columns added:
// extracted_answer (the normalised answer, "" for none), correct,
// terminal_reward (Options.CorrectReward or Options.WrongReward) and
// verify_ms (the time spent judging the row).
//
// The row's task column chooses how its answer is extracted
// (Options.Extractors; by default "arith" takes the last "A:" line, and
// "gsm8k" and "dataset" take the "####" answer, else the last \boxed{},
// else the last number). The extracted answer and the reference are
// normalised (Normalise: exact rational comparison of numbers, a
// case-insensitive comparison of text otherwise) and compared. A
// completion without an answer, or with one that cannot be normalised (a
// number over MaxDigits digits), is wrong. A completion cut at the token
// limit (finish reason "length") is judged the same way, from what it
// holds. A reference answer that normalises to nothing matches no
// completion, so every row of its prompt is wrong.
//
// Errors: the batch is judged as a whole. One row whose task has no
// extractor refuses the whole batch with an error wrapping ErrUnknownTask
// (and so schemas.ErrInvalid), naming the task; a batch that is not a
// rollout batch, or does not read as one, is refused with an error
// wrapping schemas.ErrInvalid. The runner dead-letters both. Nothing else
// fails and nothing is retried: the verifier has no dependencies, so the
// same batch always gives the same verdicts.
package verifier

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/schemas"
)

// ErrUnknownTask is wrapped by the error for a row whose task has no
// extractor. It wraps schemas.ErrInvalid: the runner dead-letters the batch.
var ErrUnknownTask = fmt.Errorf("%w: unknown task", schemas.ErrInvalid)

// ErrOptions is wrapped by the errors of Options.Validate and New.
var ErrOptions = errors.New("verifier: invalid options")

// Default rewards, used when Options sets neither.
const (
	DefaultCorrectReward float32 = 1
	DefaultWrongReward   float32 = 0
)

// Options configure a Processor. The zero value is the default verifier.
type Options struct {
	// Extractors maps a task name (the task column) to the extractor of
	// its answers; nil means DefaultExtractors(). New copies the map, so
	// changing it later does not change the processor.
	Extractors map[string]Extractor
	// CorrectReward is the terminal reward of a correct completion and
	// WrongReward that of a wrong one (no answer included). When both
	// are zero the defaults apply: DefaultCorrectReward (1) and
	// DefaultWrongReward (0). CorrectReward must exceed WrongReward.
	CorrectReward float32
	WrongReward   float32
	// Allocator allocates the added columns (nil: memory.DefaultAllocator).
	Allocator memory.Allocator
}

func (o Options) withDefaults() Options {
	if o.Extractors == nil {
		o.Extractors = DefaultExtractors()
	}
	if o.CorrectReward == 0 && o.WrongReward == 0 {
		o.CorrectReward, o.WrongReward = DefaultCorrectReward, DefaultWrongReward
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	return o
}

// Validate reports whether o, with its defaults applied, can make a
// processor: rewards finite with CorrectReward above WrongReward, every
// extractor non-nil and named. Its errors wrap ErrOptions.
func (o Options) Validate() error {
	o = o.withDefaults()
	for _, r := range []float32{o.CorrectReward, o.WrongReward} {
		if math.IsNaN(float64(r)) || math.IsInf(float64(r), 0) {
			return fmt.Errorf("%w: reward %v is not finite", ErrOptions, r)
		}
	}
	if o.CorrectReward <= o.WrongReward {
		return fmt.Errorf("%w: correct reward %v must exceed wrong reward %v", ErrOptions, o.CorrectReward, o.WrongReward)
	}
	if len(o.Extractors) == 0 {
		return fmt.Errorf("%w: no extractors", ErrOptions)
	}
	for name, ex := range o.Extractors {
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("%w: extractor with an empty task name", ErrOptions)
		}
		if ex == nil {
			return fmt.Errorf("%w: task %q has a nil extractor", ErrOptions, name)
		}
	}
	return nil
}

// Processor verifies rollout batches. It satisfies stage.Processor, holds
// no mutable state and is safe for concurrent use.
type Processor struct {
	extractors     map[string]Extractor
	tasks          string // known task names, for errors
	correct, wrong float32
	mem            memory.Allocator
	schema         *arrow.Schema
	nIn            int // rollout columns
}

// New returns a processor for o (see Options.Validate).
func New(o Options) (*Processor, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	in, err := schemas.Fields(schemas.KindRollout)
	if err != nil {
		return nil, err
	}
	return &Processor{
		extractors: maps.Clone(o.Extractors),
		tasks:      strings.Join(slices.Sorted(maps.Keys(o.Extractors)), ", "),
		correct:    o.CorrectReward,
		wrong:      o.WrongReward,
		mem:        o.Allocator,
		schema:     schemas.MustSchema(schemas.KindVerified),
		nIn:        len(in),
	}, nil
}

// Verdict is the judgement of one completion.
type Verdict struct {
	// Answer is the normalised extracted answer, "" for none.
	Answer string
	// Correct reports whether Answer is equivalent to the reference.
	Correct bool
	// Reward is the terminal reward: the correct or the wrong reward.
	Reward float32
}

// Judge judges one completion of task against its reference answer, as
// Process judges a row. Its error wraps ErrUnknownTask when the task has
// no extractor.
func (p *Processor) Judge(task, completion, reference string) (Verdict, error) {
	ex, ok := p.extractors[task]
	if !ok {
		return Verdict{}, p.unknownTask(task)
	}
	ref, refNum := normalise(reference)
	return p.judge(ex, completion, ref, refNum), nil
}

func (p *Processor) judge(ex Extractor, completion, ref string, refNum bool) Verdict {
	ans, num := normalise(ex(completion))
	v := Verdict{Answer: ans, Correct: ans != "" && num == refNum && ans == ref, Reward: p.wrong}
	if v.Correct {
		v.Reward = p.correct
	}
	return v
}

func (p *Processor) unknownTask(task string) error {
	if len(task) > 64 {
		task = task[:64] + "..."
	}
	return fmt.Errorf("%w %q (known tasks: %s)", ErrUnknownTask, task, p.tasks)
}

// Process judges every row of the rollout batch in and returns one
// verified batch of the same rows. See the package documentation for its
// errors.
func (p *Processor) Process(_ context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	tasks, completions, refs, err := p.columns(in)
	if err != nil {
		return nil, err
	}
	n := int(in.NumRows())
	exs := make([]Extractor, n)
	for i := range n {
		t := tasks.Value(i)
		ex, ok := p.extractors[t]
		if !ok {
			return nil, fmt.Errorf("verifier: row %d: %w", i, p.unknownTask(t))
		}
		exs[i] = ex
	}
	ab := array.NewStringBuilder(p.mem)
	defer ab.Release()
	cb := array.NewBooleanBuilder(p.mem)
	defer cb.Release()
	rb := array.NewFloat32Builder(p.mem)
	defer rb.Release()
	mb := array.NewFloat64Builder(p.mem)
	defer mb.Release()
	ab.Reserve(n)
	cb.Reserve(n)
	rb.Reserve(n)
	mb.Reserve(n)
	// Rows of one prompt share their reference: normalise it once.
	var lastRef, ref string
	var refNum, haveRef bool
	for i := range n {
		start := time.Now()
		if r := refs.Value(i); !haveRef || r != lastRef {
			lastRef, haveRef = r, true
			ref, refNum = normalise(r)
		}
		v := p.judge(exs[i], completions.Value(i), ref, refNum)
		ab.Append(v.Answer)
		cb.Append(v.Correct)
		rb.Append(v.Reward)
		mb.Append(float64(time.Since(start).Nanoseconds()) / 1e6)
	}
	cols := make([]arrow.Array, 0, p.schema.NumFields())
	for i := range p.nIn {
		c := in.Column(i)
		c.Retain()
		cols = append(cols, c)
	}
	cols = append(cols, ab.NewArray(), cb.NewArray(), rb.NewArray(), mb.NewArray())
	out := array.NewRecordBatch(p.schema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return []arrow.RecordBatch{out}, nil
}

// columns checks that in is a rollout batch and returns its task,
// completion and reference answer columns.
func (p *Processor) columns(in arrow.RecordBatch) (tasks, completions, refs *array.String, err error) {
	k, err := schemas.KindOf(in)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("verifier: %w", err)
	}
	if k != schemas.KindRollout {
		return nil, nil, nil, fmt.Errorf("verifier: %w: %q batch, the verifier reads rollout batches", schemas.ErrWrongKind, k)
	}
	if int(in.NumCols()) < p.nIn {
		return nil, nil, nil, fmt.Errorf("verifier: %w: %d columns, a rollout batch has %d", schemas.ErrSchemaMismatch, in.NumCols(), p.nIn)
	}
	for i := range p.nIn {
		want, got := p.schema.Field(i), in.Schema().Field(i)
		if got.Name != want.Name || !arrow.TypeEqual(got.Type, want.Type) {
			return nil, nil, nil, fmt.Errorf("verifier: %w: column %d is %s %s, want %s %s", schemas.ErrSchemaMismatch, i, got.Name, got.Type, want.Name, want.Type)
		}
		if in.Column(i).Len() != int(in.NumRows()) {
			return nil, nil, nil, fmt.Errorf("verifier: %w: column %s has %d rows, the batch %d", schemas.ErrMalformed, want.Name, in.Column(i).Len(), in.NumRows())
		}
	}
	col := func(name string) *array.String {
		return in.Column(p.schema.FieldIndices(name)[0]).(*array.String)
	}
	return col("task"), col("completion"), col("reference_answer"), nil
}
