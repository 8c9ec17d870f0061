package train

import (
	"math/rand/v2"

	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// randomGRPOBatch returns policy and GRPO inputs over random tokens with a
// quarter of each row as prompt.
func randomGRPOBatch(rng *rand.Rand, vocab, b, t int) map[string]*ort.Tensor {
	n := b * t
	ids, ones, pos, tg := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	tm, old, ref, adv := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, b)
	for i := range n {
		ids[i], ones[i], pos[i], tg[i] = int64(rng.IntN(vocab)), 1, int64(i%t), int64(rng.IntN(vocab))
		if i%t >= t/4 {
			tm[i] = 1
		}
		old[i] = -float32(rng.Float64() * 5)
		ref[i] = -float32(rng.Float64() * 5)
	}
	for i := range adv {
		adv[i] = float32(rng.NormFloat64())
	}
	s := []int64{int64(b), int64(t)}
	return map[string]*ort.Tensor{
		policy.InputIDs: ort.I64Tensor(ids, s...), policy.InputMask: ort.I64Tensor(ones, s...),
		policy.InputPositions: ort.I64Tensor(pos, s...), InputTargets: ort.I64Tensor(tg, s...),
		InputTokenMask: ort.F32Tensor(tm, s...), InputOldLogprobs: ort.F32Tensor(old, s...),
		InputRefLogprobs: ort.F32Tensor(ref, s...), InputAdvantages: ort.F32Tensor(adv, int64(b)),
	}
}
