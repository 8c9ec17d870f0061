package learner

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/schemas"
)

func TestTokenAdvantages(t *testing.T) {
	cases := []struct {
		name  string
		n     int
		ends  []int32
		steps []float32
		want  []float32
	}{
		{"no steps", 3, nil, nil, []float32{1, 1, 1}},
		{"ends without step advantages", 3, []int32{1, 3}, nil, []float32{1, 1, 1}},
		{"two steps", 4, []int32{1, 4}, []float32{1.5, 0.5}, []float32{1.5, 0.5, 0.5, 0.5}},
		{"trailing tokens keep the sequence advantage", 5, []int32{2, 3}, []float32{2, 0}, []float32{2, 2, 0, 1, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := make([]float32, tc.n)
			tokenAdvantages(got, 1, tc.ends, tc.steps)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	cases := []struct {
		rows, max int
		want      []int
	}{
		{7, 7, []int{7}},
		{7, 3, []int{2, 2, 3}},
		{8, 3, []int{2, 3, 3}},
		{4, 1, []int{1, 1, 1, 1}},
	}
	for _, tc := range cases {
		rows := make([]*row, tc.rows)
		for i := range rows {
			rows[i] = &row{l: &schemas.Labeled{}, seq: make([]int32, i+2)}
		}
		var sizes []int
		prev := math.MaxInt
		for _, mb := range split(rows, tc.max) {
			sizes = append(sizes, len(mb))
			for _, r := range mb {
				if len(r.seq) > prev {
					t.Fatalf("%d rows by %d: not longest first", tc.rows, tc.max)
				}
				prev = len(r.seq)
			}
		}
		if !slices.Equal(sizes, tc.want) {
			t.Errorf("%d rows by %d: sizes %v, want %v", tc.rows, tc.max, sizes, tc.want)
		}
	}
}

// TestMicroBatchWeighting: the loss of a step is the same however its
// rows are cut into micro-batches of unequal sizes, for both aggregations
// (so are its gradients, the derivative of the same weighted sum).
func TestMicroBatchWeighting(t *testing.T) {
	rt := orttest.Runtime(t)
	init := tiny(t, 8)
	for _, agg := range []string{AggSeqMean, AggTokenSum} {
		t.Run(agg, func(t *testing.T) {
			p := newLearner(t, rt, init, &store{}, Options{Aggregation: agg})
			rng := rand.New(rand.NewPCG(8, 8))
			comps := []string{"1", "22", "333", "4444", "55555", "666666", "7777777"}
			advs := make([]float32, len(comps))
			for i := range advs {
				advs[i] = float32(rng.NormFloat64())
			}
			ls := spec{prompt: "9*9", comps: comps, advs: advs, version: 1}.build(t, nil)
			rows, err := p.prepare(ls)
			if err != nil {
				t.Fatal(err)
			}
			g := &group{rows: map[int32]*row{}}
			for i, r := range rows {
				g.rows[int32(i)] = r
			}
			if err := p.reference(g); err != nil {
				t.Fatal(err)
			}
			var losses []float64
			for _, mb := range []int{7, 3, 2, 1} {
				parts := split(rows, mb)
				feeds := make([]map[string]*ort.Tensor, len(parts))
				for i, part := range parts {
					if feeds[i], err = p.feeds(part, len(rows), len(parts)); err != nil {
						t.Fatal(err)
					}
				}
				res, err := p.tr.Gradients(feeds...)
				if err != nil {
					t.Fatal(err)
				}
				losses = append(losses, res.Loss)
			}
			for _, l := range losses[1:] {
				if math.Abs(l-losses[0]) > 1e-5*math.Max(1, math.Abs(losses[0])) {
					t.Fatalf("losses by micro-batch size 7, 3, 2, 1: %v", losses)
				}
			}
			t.Logf("losses %v", losses)
		})
	}
}
