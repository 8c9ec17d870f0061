package learner

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/model/train"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// Benchmark shapes: the default policy (d_model 128, 4 layers) and one
// update of 8 groups of 8 sequences of 81 tokens (80 model inputs: a
// 10-token prompt with BOS and a 71-token completion).
const (
	benchGroups = 8
	benchG      = 8
	benchPrompt = 10
	benchComp   = 71
)

// discard is a Publisher that keeps only the latest version number.
type discard struct{ latest int64 }

func (d *discard) Latest(context.Context) (int64, bool, error) { return d.latest, d.latest > 0, nil }
func (d *discard) Publish(_ context.Context, v int64, _ []byte) error {
	d.latest = v
	return nil
}

// metricsSink keeps the last step's metrics.
type metricsSink struct{ last StepMetrics }

func (s *metricsSink) Step(m StepMetrics) { s.last = m }

// BenchmarkStep measures one learner update (8 groups arriving as 8
// batches: reference forward passes at group completion, then
// forward-backward, AdamW, snapshot and publish) next to the raw training
// step (train.Trainer.Step on the same [64, 80] GRPO batch). Each
// iteration runs one of each, in alternating order, so that load from
// other processes on the machine hits both alike. It reports the learner's time
// split, both throughputs in completion tokens/s, and the learner's
// throughput relative to the raw step: ratio_step for the update alone,
// ratio_total with the reference passes.
func BenchmarkStep(b *testing.B) {
	rt := orttest.Runtime(b)
	tok := tokenizer.Default()
	cfg := policy.DefaultConfig(tok.VocabSize())
	init, err := checkpoint.New(cfg, tok, 1)
	if err != nil {
		b.Fatal(err)
	}
	n, seqLen := benchGroups*benchG, benchPrompt+benchComp-1
	tokens := float64(n * benchComp)

	m, err := policy.FullGraph(cfg, init.Weights, onnx.Float)
	if err != nil {
		b.Fatal(err)
	}
	out, err := train.AppendGRPO(m.Graph, onnx.Float, policy.OutputLogits, Options{}.withDefaults().grpo(cfg.MaxSeq))
	if err != nil {
		b.Fatal(err)
	}
	tr, err := train.New(rt, m.Graph, out.Loss, train.Config{Optim: optim.DefaultConfig(), Metrics: out.Metrics()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tr.Close() }()
	feeds := rawFeeds(rand.New(rand.NewPCG(1, 1)), cfg.VocabSize, n, seqLen)

	sink := &metricsSink{}
	p, err := New(b.Context(), rt, init, &discard{}, Options{GroupsPerStep: benchGroups, MicroBatch: n, MaxStaleness: 1 << 40, Sink: sink})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Close(context.Background()) }()
	rng := rand.New(rand.NewPCG(2, 2))
	var raw, total, step, fb, opt, pub, ref float64
	i := 0
	for b.Loop() {
		b.StopTimer()
		batches := make([][]schemas.Labeled, benchGroups)
		for g := range batches {
			batches[g] = benchGroup(rng, tok, i)
			i++
		}
		recs := make([]arrow.RecordBatch, len(batches))
		for g, rows := range batches {
			recs[g] = batch(b, rows)
		}
		b.StartTimer()
		rawStep := func() {
			t0 := time.Now()
			if _, err := tr.Step(feeds); err != nil {
				b.Fatal(err)
			}
			raw += ms(time.Since(t0))
		}
		learnerStep := func() {
			t0 := time.Now()
			for _, rec := range recs {
				if _, err := p.Process(b.Context(), rec); err != nil {
					b.Fatal(err)
				}
			}
			total += ms(time.Since(t0))
		}
		// Whichever runs second was measured ~10% slower on a loaded
		// machine: alternate the order.
		if i/benchGroups%2 == 0 {
			rawStep()
			learnerStep()
		} else {
			learnerStep()
			rawStep()
		}
		m := sink.last
		fb, opt, pub, ref = fb+m.ForwardBackwardMs, opt+m.OptimizerMs, pub+m.PublishMs, ref+m.RefMs
		step += m.ForwardBackwardMs + m.OptimizerMs + m.PublishMs
	}
	k := float64(b.N)
	b.ReportMetric(raw/k, "raw-ms")
	b.ReportMetric(step/k, "step-ms")
	b.ReportMetric(total/k, "total-ms")
	b.ReportMetric(fb/k, "fwdbwd-ms")
	b.ReportMetric(opt/k, "optim-ms")
	b.ReportMetric(pub/k, "publish-ms")
	b.ReportMetric(ref/k, "ref-ms")
	b.ReportMetric(tokens/(raw/k/1e3), "raw-tokens/s")
	b.ReportMetric(tokens/(step/k/1e3), "tokens/s")
	b.ReportMetric(raw/step, "ratio_step")
	b.ReportMetric(raw/total, "ratio_total")
	if st := p.Stats(); st.Skipped > 0 || st.Step != int64(b.N) {
		b.Fatalf("stats %+v after %d iterations", st, b.N)
	}
}

// benchGroup returns one group of benchG rows of random tokens.
func benchGroup(rng *rand.Rand, tok *tokenizer.Char, i int) []schemas.Labeled {
	rows := make([]schemas.Labeled, benchG)
	pid := fmt.Sprintf("p%d", i)
	for k := range rows {
		l := &rows[k]
		l.TrajectoryID = schemas.TrajectoryID("bench", 0, pid, int32(k))
		l.GroupID = schemas.GroupID("bench", 0, pid)
		l.SampleIndex, l.GroupSize, l.PolicyVersion = int32(k), benchG, 1
		l.PromptTokenIDs = make([]int32, benchPrompt-1)
		for j := range l.PromptTokenIDs {
			l.PromptTokenIDs[j] = int32(4 + rng.IntN(tok.VocabSize()-4))
		}
		l.CompletionTokenIDs = make([]int32, benchComp)
		l.TokenLogprobs = make([]float32, benchComp)
		for j := range l.CompletionTokenIDs {
			l.CompletionTokenIDs[j] = int32(4 + rng.IntN(tok.VocabSize()-4))
			l.TokenLogprobs[j] = -4
		}
		l.StepEnds = []int32{benchComp}
		l.Advantage = float32(rng.NormFloat64())
	}
	return rows
}

// rawFeeds returns a GRPO batch of b rows of t tokens (a quarter prompt).
func rawFeeds(rng *rand.Rand, vocab, b, t int) map[string]*ort.Tensor {
	n := b * t
	ids, ones, tg := make([]int64, n), make([]int64, n), make([]int64, n)
	tm, old, ref, adv := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, b)
	for i := range n {
		ids[i], ones[i], tg[i] = int64(rng.IntN(vocab)), 1, int64(rng.IntN(vocab))
		if i%t >= benchPrompt-1 {
			tm[i] = 1
		}
		old[i], ref[i] = -4, -4
	}
	for i := range adv {
		adv[i] = float32(rng.NormFloat64())
	}
	s := []int64{int64(b), int64(t)}
	return map[string]*ort.Tensor{
		policy.InputIDs: ort.I64Tensor(ids, s...), policy.InputMask: ort.I64Tensor(ones, s...),
		train.InputTargets: ort.I64Tensor(tg, s...), train.InputTokenMask: ort.F32Tensor(tm, s...),
		train.InputOldLogprobs: ort.F32Tensor(old, s...), train.InputRefLogprobs: ort.F32Tensor(ref, s...),
		train.InputAdvantages: ort.F32Tensor(adv, int64(b)),
	}
}
