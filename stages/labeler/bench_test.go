package labeler_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	mlabeler "github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/shaping"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/labeler"
)

// BenchmarkWSGRPO measures the stage's ws-grpo path (featurize, score,
// shape, build the output batch) on a d_model 128, 4-layer random policy:
// 64 rows of about 60 tokens (8 groups of 8), one verified batch per
// iteration. It reports rows/s.
func BenchmarkWSGRPO(b *testing.B) {
	rt := orttest.Runtime(b)
	tok := tokenizer.Default()
	ref, err := checkpoint.New(policy.DefaultConfig(tok.VocabSize()), tok, 1)
	if err != nil {
		b.Fatal(err)
	}
	f, err := mlabeler.NewFeaturizer(rt, ref, mlabeler.FeaturizerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	var pairs []mlabeler.Pair
	for g := range 4 {
		for range 8 {
			pos, neg := make([]float32, 128), make([]float32, 128)
			for i := range pos {
				pos[i], neg[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			pairs = append(pairs, mlabeler.Pair{Group: fmt.Sprint(g), Pos: pos, Neg: neg})
		}
	}
	cfg := mlabeler.DefaultConfig()
	cfg.Epochs, cfg.Reference = 1, f.Reference()
	m, _, err := mlabeler.FitPairs(rt, pairs, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	s, err := mlabeler.NewScorer(f, m)
	if err != nil {
		b.Fatal(err)
	}
	p := newProcessor(b, labeler.Options{Shaping: shaping.DefaultConfig(), Scorer: s, StepAdvantages: true})
	var rows []schemas.Verified
	tokens := 0
	for g := range 8 {
		a, c := 100+rng.IntN(900), 100+rng.IntN(900)
		prompt := fmt.Sprintf("%d+%d*3-7", a, c)
		for i := range 8 {
			lines := []string{fmt.Sprintf("%d*3=%d\n", c, 3*c), fmt.Sprintf("%d+%d=%d\n", a, 3*c, a+3*c), fmt.Sprintf("%d-7=%d\n", a+3*c, a+3*c-7)}
			for range i % 3 {
				lines = append(lines, "check "+lines[0])
			}
			lines = append(lines, fmt.Sprintf("A:%d\n", a+3*c-7))
			r := textRow(fmt.Sprintf("g%d", g), int32(i), 8, i%2 == 0, prompt, lines...)
			tokens += len(r.PromptTokenIDs) + len(r.CompletionTokenIDs)
			rows = append(rows, r)
		}
	}
	in := schemas.NewVerifiedBatch(nil, rows)
	defer in.Release()
	b.ResetTimer()
	for b.Loop() {
		outs, err := p.Process(b.Context(), in)
		if err != nil {
			b.Fatal(err)
		}
		if n := outs[0].NumRows(); n != int64(len(rows)) {
			b.Fatalf("%d rows out", n)
		}
		outs[0].Release()
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(tokens)/float64(len(rows)), "tokens/row")
}
