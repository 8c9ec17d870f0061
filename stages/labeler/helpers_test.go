package labeler_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/labeler"
)

// memPending is an in-memory Pending store.
type memPending struct {
	mu     sync.Mutex
	groups map[string]map[int32]schemas.Verified
	adds   int
	fail   error
}

func newPending() *memPending { return &memPending{groups: map[string]map[int32]schemas.Verified{}} }

func (m *memPending) Add(_ context.Context, group string, rows []schemas.Verified) ([]schemas.Verified, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	m.adds++
	g := m.groups[group]
	if g == nil {
		g = map[int32]schemas.Verified{}
		m.groups[group] = g
	}
	for _, r := range rows {
		g[r.SampleIndex] = r
	}
	out := make([]schemas.Verified, 0, len(g))
	for _, r := range g {
		out = append(out, r)
	}
	return out, nil
}

// fixedScorer scores every prefix with the same value (a test
// implementation of the stage's Scorer: no model behind it).
type fixedScorer struct {
	value float32
	extra int // scores returned beyond one per prefix
}

func (fixedScorer) ID() string { return "lbl-fixed" }

func (f fixedScorer) PrefixScores(_ context.Context, rows []schemas.Rollout) ([][]float32, error) {
	out := make([][]float32, len(rows))
	for i, r := range rows {
		out[i] = make([]float32, len(r.StepEnds)+1+f.extra)
		for t := range out[i] {
			out[i][t] = f.value
		}
	}
	return out, nil
}

// row returns a verified row of group with the given sample index, group
// size, correctness, completion length in tokens and number of steps
// (evenly spread).
func row(group string, idx, size int32, correct bool, tokens, steps int) schemas.Verified {
	ids := make([]int32, tokens)
	for i := range ids {
		ids[i] = 5
	}
	var ends []int32
	for k := 1; k <= steps; k++ {
		ends = append(ends, int32(k*tokens/steps))
	}
	return schemas.Verified{
		Rollout: schemas.Rollout{
			Prompt:             schemas.Prompt{RunID: "run", PromptID: group, Task: "arith", PromptTokenIDs: []int32{1, 5, 6}},
			TrajectoryID:       fmt.Sprintf("%s/%d", group, idx),
			GroupID:            group,
			SampleIndex:        idx,
			GroupSize:          size,
			CompletionTokenIDs: ids,
			StepEnds:           ends,
		},
		Correct: correct,
	}
}

// process runs one verified batch of rows through p and returns the
// labeled rows of its output (nil for none).
func process(t testing.TB, p *labeler.Processor, mem memory.Allocator, rows ...schemas.Verified) ([]schemas.Labeled, error) {
	t.Helper()
	in := schemas.NewVerifiedBatch(mem, rows)
	defer in.Release()
	outs, err := p.Process(context.Background(), in)
	if err != nil {
		return nil, err
	}
	var got []schemas.Labeled
	for _, o := range outs {
		rs, err := schemas.ReadLabeled(o)
		o.Release()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rs...)
	}
	if len(outs) > 1 {
		t.Fatalf("%d output batches, want at most 1", len(outs))
	}
	return got, nil
}

func mustProcess(t testing.TB, p *labeler.Processor, mem memory.Allocator, rows ...schemas.Verified) []schemas.Labeled {
	t.Helper()
	got, err := process(t, p, mem, rows...)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func newProcessor(t testing.TB, o labeler.Options) *labeler.Processor {
	t.Helper()
	p, err := labeler.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// grpoAdvantages is (r - mean) / (std + 1e-6), computed here by hand.
func grpoAdvantages(r []float64) []float64 {
	var mean, v float64
	for _, x := range r {
		mean += x
	}
	mean /= float64(len(r))
	for _, x := range r {
		v += (x - mean) * (x - mean)
	}
	std := math.Sqrt(v / float64(len(r)))
	out := make([]float64, len(r))
	for i, x := range r {
		out[i] = (x - mean) / (std + 1e-6)
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-4 }

var errDown = errors.New("store down")
