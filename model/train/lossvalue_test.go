package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

// runLossGraph runs g (whose logits are the graph input "logits") and
// returns the named outputs as float64 scalars.
func runLossGraph(t *testing.T, g *onnx.Graph, feeds map[string]*ort.Tensor, outs ...string) []float64 {
	t.Helper()
	rt := orttest.Runtime(t)
	b, err := onnx.NewModel(g, 17).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.NewSession(b, nil, outs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	res, err := s.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float64, len(outs))
	for i, o := range outs {
		v[i] = res[o].F64[0]
	}
	return v
}

// logSoftmaxAt returns log softmax(row)[k].
func logSoftmaxAt(row []float64, k int64) float64 {
	m := math.Inf(-1)
	for _, x := range row {
		m = math.Max(m, x)
	}
	s := 0.0
	for _, x := range row {
		s += math.Exp(x - m)
	}
	return row[k] - m - math.Log(s)
}

// TestLossValues compares the losses' forward values with a direct Go
// computation of their formulas.
func TestLossValues(t *testing.T) {
	const b, tl, v = 2, 4, 5
	rng := rand.New(rand.NewPCG(9, 9))
	logits := make([]float64, b*tl*v)
	for i := range logits {
		logits[i] = 2*rng.Float64() - 1
	}
	feeds := map[string]*ort.Tensor{}
	lossFeeds(rng, feeds, v, b, tl, map[string][2]float64{
		InputOldLogprobs: {-2.5, -1}, InputRefLogprobs: {-2.5, -1}, InputAdvantages: {-1, 1},
	}, false)
	feeds["logits"] = ort.F64Tensor(logits, b, tl, v)
	tg, mask := feeds[InputTargets].I64, feeds[InputTokenMask].F64
	old, ref, adv := feeds[InputOldLogprobs].F64, feeds[InputRefLogprobs].F64, feeds[InputAdvantages].F64
	lp := make([]float64, b*tl)
	for i := range lp {
		lp[i] = logSoftmaxAt(logits[i*v:(i+1)*v], tg[i])
	}
	newGraph := func() *onnx.Graph {
		g := onnx.NewBuilder("l")
		g.Input("logits", onnx.Double, onnx.Dim{Param: DimBatch}, onnx.Dim{Param: DimSeq}, onnx.Dim{Value: v})
		return g.Graph()
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %.15g, want %.15g", name, got, want)
		}
	}

	t.Run("target-logprobs", func(t *testing.T) {
		g := newGraph()
		out, err := AppendTargetLogprobs(g, onnx.Double, "logits")
		if err != nil {
			t.Fatal(err)
		}
		b, err := onnx.NewModel(g, 17).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s, err := orttest.Runtime(t).NewSession(b, nil, []string{out})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		res, err := s.Run(map[string]*ort.Tensor{"logits": feeds["logits"], InputTargets: feeds[InputTargets]})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range lp {
			near("logprob", res[out].F64[i], want)
		}
	})

	t.Run("cross-entropy", func(t *testing.T) {
		g := newGraph()
		loss, err := AppendCrossEntropy(g, onnx.Double, "logits")
		if err != nil {
			t.Fatal(err)
		}
		ce := feedsWithout(feeds, InputOldLogprobs, InputRefLogprobs, InputAdvantages)
		got := runLossGraph(t, g, ce, loss)
		num, den := 0.0, 0.0
		for i := range lp {
			num -= lp[i] * mask[i]
			den += mask[i]
		}
		near("ce", got[0], num/den)
	})

	grpo := func(cfg GRPOConfig) (loss, kl, clip float64) {
		var seqSum, tokSum, klSum, clipSum, cnt float64
		for r := range b {
			s, c := 0.0, 0.0
			for k := range tl {
				i := r*tl + k
				ratio := math.Exp(lp[i] - old[i])
				s1 := ratio * adv[r]
				s2 := math.Min(math.Max(ratio, 1-cfg.EpsLow), 1+cfg.EpsHigh) * adv[r]
				d := ref[i] - lp[i]
				k3 := math.Exp(d) - d - 1
				per := -math.Min(s1, s2) + cfg.Beta*k3
				s += per * mask[i]
				c += mask[i]
				klSum += k3 * mask[i]
				if s2 < s1 {
					clipSum += mask[i]
				}
			}
			seqSum += s / math.Max(c, 1)
			tokSum += s
			cnt += c
		}
		if cfg.Aggregation == TokenSumConst {
			return tokSum / (b * cfg.NormConst), klSum / cnt, clipSum / cnt
		}
		return seqSum / b, klSum / cnt, clipSum / cnt
	}
	for name, cfg := range map[string]GRPOConfig{
		"grpo-seq-mean": {EpsLow: 0.2, EpsHigh: 0.28, Beta: 0.04},
		"grpo-dr":       {EpsLow: 0.1, EpsHigh: 0.1, Beta: 0.5, Aggregation: TokenSumConst, NormConst: 7},
	} {
		t.Run(name, func(t *testing.T) {
			g := newGraph()
			o, err := AppendGRPO(g, onnx.Double, "logits", cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := runLossGraph(t, g, feeds, o.Loss, o.KL, o.ClipFrac)
			// Padding values of masked-out tokens must not leak in, even
			// when they are infinite.
			padded := feedsWithout(feeds)
			for _, name := range []string{InputOldLogprobs, InputRefLogprobs} {
				v := append([]float64(nil), feeds[name].F64...)
				v[0] = math.Inf(-1) // position 0 is masked out (prompt)
				padded[name] = ort.F64Tensor(v, feeds[name].Shape...)
			}
			if mask[0] != 0 {
				t.Fatal("test expects position 0 masked out")
			}
			gotPadded := runLossGraph(t, g, padded, o.Loss, o.KL, o.ClipFrac)
			for i := range got {
				near("padded", gotPadded[i], got[i])
			}
			loss, kl, clip := grpo(cfg)
			if clip == 0 {
				t.Fatal("test data never clips; widen the old log-prob range")
			}
			near("loss", got[0], loss)
			near("kl", got[1], kl)
			near("clip_frac", got[2], clip)
		})
	}

	t.Run("bradley-terry", func(t *testing.T) {
		g := onnx.NewBuilder("bt")
		pos := g.Input("pos", onnx.Double, onnx.Dim{Param: "N"})
		neg := g.Input("neg", onnx.Double, onnx.Dim{Param: "N"})
		loss, acc, err := AppendBradleyTerry(g.Graph(), onnx.Double, pos, neg)
		if err != nil {
			t.Fatal(err)
		}
		p, n := []float64{3, -1, 0.5, 40}, []float64{1, 2, 0.5, -40}
		got := runLossGraph(t, g.Graph(), map[string]*ort.Tensor{"pos": ort.F64Tensor(p, 4), "neg": ort.F64Tensor(n, 4)}, loss, acc)
		want := 0.0
		for i := range p {
			want += math.Log1p(math.Exp(-(p[i] - n[i])))
		}
		near("bt", got[0], want/4)
		near("accuracy", got[1], 0.5)
	})
}

func feedsWithout(f map[string]*ort.Tensor, drop ...string) map[string]*ort.Tensor {
	out := map[string]*ort.Tensor{}
	for k, v := range f {
		out[k] = v
	}
	for _, d := range drop {
		delete(out, d)
	}
	return out
}
