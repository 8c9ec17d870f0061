package generate

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestLogSoftmaxAt(t *testing.T) {
	logits := []float32{1, 2, 3, 1000}
	if got := logSoftmaxAt(logits, 3); math.Abs(got) > 1e-9 {
		t.Fatalf("dominant token logprob %v, want 0", got)
	}
	if got := logSoftmaxAt([]float32{0, 0, 0, 0}, 2); math.Abs(got-math.Log(0.25)) > 1e-12 {
		t.Fatalf("uniform logprob %v", got)
	}
	var sum float64
	for i := range 3 {
		sum += math.Exp(logSoftmaxAt(logits[:3], i))
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Fatalf("probabilities sum to %v", sum)
	}
}

func TestPick(t *testing.T) {
	logits := []float32{0, float32(math.Log(2)), float32(math.Log(3)), float32(math.Log(4))} // p = 1,2,3,4 / 10
	tests := []struct {
		name string
		s    sampler
		want []float64 // expected frequency per token
	}{
		{"greedy", sampler{}, []float64{0, 0, 0, 1}},
		{"temperature 1", sampler{temperature: 1}, []float64{0.1, 0.2, 0.3, 0.4}},
		{"top-p 0.7 keeps 4 and 3", sampler{temperature: 1, topP: 0.7}, []float64{0, 0, 3.0 / 7, 4.0 / 7}},
		{"top-p tiny keeps argmax", sampler{temperature: 1, topP: 1e-6}, []float64{0, 0, 0, 1}},
		{"temperature 0.5 sharpens", sampler{temperature: 0.5}, []float64{1.0 / 30, 4.0 / 30, 9.0 / 30, 16.0 / 30}},
	}
	const n = 20000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			counts := make([]float64, len(logits))
			for range n {
				counts[tt.s.pick(logits, rng)]++
			}
			for i, c := range counts {
				// 5 standard deviations of a binomial frequency.
				tol := 5*math.Sqrt(tt.want[i]*(1-tt.want[i])/n) + 1e-9
				if math.Abs(c/n-tt.want[i]) > tol {
					t.Fatalf("token %d frequency %v, want %v±%v (counts %v)", i, c/n, tt.want[i], tol, counts)
				}
			}
		})
	}
}
