package generate

import (
	"math"
	"math/rand/v2"
	"sort"
)

// sampler draws tokens from logits rows. It keeps scratch buffers, so one
// sampler serves one goroutine.
type sampler struct {
	temperature float64
	topP        float64
	probs       []float64
	order       []int
}

// logSoftmaxAt returns log softmax(logits)[tok] at temperature 1, computed
// in float64.
func logSoftmaxAt(logits []float32, tok int) float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, float64(v))
	}
	var z float64
	for _, v := range logits {
		z += math.Exp(float64(v) - m)
	}
	return float64(logits[tok]) - m - math.Log(z)
}

// argmax returns the index of the largest logit (the first on ties).
func argmax(logits []float32) int {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return best
}

// pick returns a token drawn from softmax(logits/temperature) restricted to
// the smallest set of most likely tokens whose mass reaches topP (nucleus
// sampling), or the argmax when temperature is 0. rng is consulted exactly
// once per call unless temperature is 0.
func (s *sampler) pick(logits []float32, rng *rand.Rand) int {
	if s.temperature == 0 {
		return argmax(logits)
	}
	u := rng.Float64()
	n := len(logits)
	if cap(s.probs) < n {
		s.probs, s.order = make([]float64, n), make([]int, n)
	}
	probs, order := s.probs[:n], s.order[:n]
	m := float64(logits[argmax(logits)])
	var z float64
	for i, v := range logits {
		probs[i] = math.Exp((float64(v) - m) / s.temperature)
		z += probs[i]
		order[i] = i
	}
	if s.topP > 0 && s.topP < 1 {
		sort.SliceStable(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
		var kept float64
		k := 0
		for k < n {
			kept += probs[order[k]]
			k++
			if kept >= s.topP*z {
				break
			}
		}
		order, z = order[:k], kept
	}
	target := u * z
	var acc float64
	for _, i := range order {
		acc += probs[i]
		if acc > target {
			return i
		}
	}
	return order[len(order)-1]
}
