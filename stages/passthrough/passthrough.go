// Package passthrough is a wiring aid, not a WS-GRPO stage: its processor
// moves a batch from one hand-off kind to the next without doing any of the
// stage's work. It exists for the pipeline's wiring tests, benchmarks and the
// wiring demo.
//
// Columns the input already has are carried over unchanged (retained, not
// copied). Columns the next kind adds are filled with zero values (empty
// strings, zeros, false, empty lists); a prompt becomes exactly one rollout
// row, sample 0, whose trajectory and group ids are derived from the prompt
// as the real sampler derives them. Nothing is sampled, verified or labeled:
// "correct" is always false and every reward and advantage is zero.
//
// Input: a batch of kind From. Output: one batch of kind To (the input
// itself when From == To). Errors: an input that lacks the columns its
// kind must have wraps schemas.ErrInvalid (dead letter); nothing else
// fails.
package passthrough

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/schemas"
)

// ErrKinds is returned by New for a pair of kinds it cannot map.
var ErrKinds = errors.New("passthrough: unsupported kinds")

// Processor maps batches of kind From to kind To. It satisfies
// stage.Processor.
type Processor struct {
	From, To schemas.Kind
	mem      memory.Allocator
	schema   *arrow.Schema
}

// New returns a processor from kind from to kind to: the same kind
// (identity) or the next kind in pipeline order. mem allocates the added
// columns (nil: memory.DefaultAllocator).
func New(from, to schemas.Kind, mem memory.Allocator) (*Processor, error) {
	kinds := schemas.Kinds()
	fi, ti := -1, -1
	for i, k := range kinds {
		if k == from {
			fi = i
		}
		if k == to {
			ti = i
		}
	}
	if fi < 0 || ti < 0 || (ti != fi && ti != fi+1) {
		return nil, fmt.Errorf("%w: %q to %q (same kind or the next one only)", ErrKinds, from, to)
	}
	s, err := schemas.Schema(to)
	if err != nil {
		return nil, err
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return &Processor{From: from, To: to, mem: mem, schema: s}, nil
}

// Next returns the kind after k in pipeline order, or false for the last.
func Next(k schemas.Kind) (schemas.Kind, bool) {
	kinds := schemas.Kinds()
	for i, x := range kinds {
		if x == k && i+1 < len(kinds) {
			return kinds[i+1], true
		}
	}
	return "", false
}

// Process returns one batch of kind To holding the rows of in.
func (p *Processor) Process(_ context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	if p.From == p.To {
		in.Retain()
		return []arrow.RecordBatch{in}, nil
	}
	n := int(in.NumRows())
	cols := make([]arrow.Array, 0, p.schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	var ids, groups arrow.Array
	if p.From == schemas.KindPrompt {
		var err error
		if ids, groups, err = p.rolloutIDs(in); err != nil {
			return nil, err
		}
		defer ids.Release()
		defer groups.Release()
	}
	for i, f := range p.schema.Fields() {
		switch {
		case i < int(in.NumCols()):
			if in.ColumnName(i) != f.Name || !arrow.TypeEqual(in.Column(i).DataType(), f.Type) {
				return nil, fmt.Errorf("passthrough: %w: input column %d is %s, want %s", schemas.ErrSchemaMismatch, i, in.ColumnName(i), f.Name)
			}
			c := in.Column(i)
			c.Retain()
			cols = append(cols, c)
		case f.Name == "trajectory_id" && ids != nil:
			ids.Retain()
			cols = append(cols, ids)
		case f.Name == "group_id" && groups != nil:
			groups.Retain()
			cols = append(cols, groups)
		default:
			cols = append(cols, zeros(p.mem, f.Type, n))
		}
	}
	return []arrow.RecordBatch{array.NewRecordBatch(p.schema, cols, int64(n))}, nil
}

// rolloutIDs derives trajectory and group ids (sample 0) from prompt rows.
func (p *Processor) rolloutIDs(in arrow.RecordBatch) (ids, groups arrow.Array, err error) {
	run, ok1 := column[*array.String](in, "run_id")
	step, ok2 := column[*array.Int64](in, "step")
	pid, ok3 := column[*array.String](in, "prompt_id")
	if !ok1 || !ok2 || !ok3 {
		return nil, nil, fmt.Errorf("passthrough: %w: prompt batch lacks run_id, step or prompt_id", schemas.ErrSchemaMismatch)
	}
	ib := array.NewStringBuilder(p.mem)
	defer ib.Release()
	gb := array.NewStringBuilder(p.mem)
	defer gb.Release()
	for i := range int(in.NumRows()) {
		ib.Append(schemas.TrajectoryID(run.Value(i), step.Value(i), pid.Value(i), 0))
		gb.Append(schemas.GroupID(run.Value(i), step.Value(i), pid.Value(i)))
	}
	return ib.NewArray(), gb.NewArray(), nil
}

func column[T arrow.Array](rec arrow.RecordBatch, name string) (T, bool) {
	var zero T
	idx := rec.Schema().FieldIndices(name)
	if len(idx) != 1 {
		return zero, false
	}
	c, ok := rec.Column(idx[0]).(T)
	return c, ok
}

// zeros returns n zero values of type t (empty lists for list types).
func zeros(mem memory.Allocator, t arrow.DataType, n int) arrow.Array {
	b := array.NewBuilder(mem, t)
	defer b.Release()
	b.Reserve(n)
	for range n {
		b.AppendEmptyValue()
	}
	return b.NewArray()
}
