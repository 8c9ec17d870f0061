package train

import (
	"math/rand/v2"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/autodiff"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// tinyPolicy returns a float64 policy graph with weights drawn uniformly
// from [-0.5, 0.5] (far from the near-linear regime of the usual init) and
// the names of its weights.
func tinyPolicy(t testing.TB, dt onnx.DataType, seed uint64) (*onnx.Graph, []string, policy.Config) {
	t.Helper()
	cfg := policy.Config{VocabSize: 7, DModel: 8, NLayers: 1, NHeads: 2, DFF: 16, MaxSeq: 6}
	w, err := policy.Init(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, p := range w {
		for i := range p.Data {
			p.Data[i] = float32(rng.Float64() - 0.5)
		}
	}
	m, err := policy.FullGraph(cfg, w, dt)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range cfg.ParamSpecs() {
		names = append(names, s.Name)
	}
	return m.Graph, names, cfg
}

// policyFeeds returns inputs for a [b,t] batch with one left-padded row.
func policyFeeds(rng *rand.Rand, vocab, b, t int) map[string]*ort.Tensor {
	ids := make([]int64, b*t)
	mask := make([]int64, b*t)
	pos := make([]int64, b*t)
	for r := range b {
		pad := 0
		if r == 0 {
			pad = 1
		}
		for c := range t {
			i := r*t + c
			ids[i] = int64(rng.IntN(vocab))
			if c >= pad {
				mask[i] = 1
				pos[i] = int64(c - pad)
			}
		}
	}
	return map[string]*ort.Tensor{
		policy.InputIDs:       ort.I64Tensor(ids, int64(b), int64(t)),
		policy.InputMask:      ort.I64Tensor(mask, int64(b), int64(t)),
		policy.InputPositions: ort.I64Tensor(pos, int64(b), int64(t)),
	}
}

// lossFeeds adds targets, a token mask (first two positions masked out as
// prompt), and uniform values in [lo, hi] for the named float inputs.
func lossFeeds(rng *rand.Rand, feeds map[string]*ort.Tensor, vocab, b, t int, uniform map[string][2]float64, advPerToken bool) {
	tg := make([]int64, b*t)
	tm := make([]float64, b*t)
	for i := range tg {
		tg[i] = int64(rng.IntN(vocab))
		if i%t >= 2 {
			tm[i] = 1
		}
	}
	feeds[InputTargets] = ort.I64Tensor(tg, int64(b), int64(t))
	feeds[InputTokenMask] = ort.F64Tensor(tm, int64(b), int64(t))
	for name, r := range uniform {
		n, shape := b*t, []int64{int64(b), int64(t)}
		if name == InputAdvantages && !advPerToken {
			n, shape = b, []int64{int64(b)}
		}
		v := make([]float64, n)
		for i := range v {
			v[i] = r[0] + (r[1]-r[0])*rng.Float64()
		}
		feeds[name] = ort.F64Tensor(v, shape...)
	}
}

// TestLossGradients checks each whole loss, appended to a one-layer policy
// (embeddings, attention, GELU MLP, layer norms, LM head), against central
// finite differences in float64 (h = 1e-6, |err| <= 1e-6 + 1e-5 |numeric|).
func TestLossGradients(t *testing.T) {
	rt := orttest.Runtime(t)
	const b, tl = 3, 5
	grpoInputs := map[string][2]float64{
		// Old log-probs around the model's (about -log 7 = -1.95) put
		// ratios on both sides of the clip range.
		InputOldLogprobs: {-3, -1}, InputRefLogprobs: {-3, -1}, InputAdvantages: {-1.5, 1.5},
	}
	cases := []struct {
		name   string
		append func(g *onnx.Graph) (string, error)
		inputs map[string][2]float64
		perTok bool
	}{
		{"cross-entropy", func(g *onnx.Graph) (string, error) {
			return AppendCrossEntropy(g, onnx.Double, policy.OutputLogits)
		}, nil, false},
		{"grpo-seq-mean", func(g *onnx.Graph) (string, error) {
			o, err := AppendGRPO(g, onnx.Double, policy.OutputLogits, GRPOConfig{EpsLow: 0.2, EpsHigh: 0.28, Beta: 0.1})
			return o.Loss, err
		}, grpoInputs, false},
		{"grpo-dr-token-sum-per-token-adv", func(g *onnx.Graph) (string, error) {
			o, err := AppendGRPO(g, onnx.Double, policy.OutputLogits, GRPOConfig{EpsLow: 0.2, EpsHigh: 0.2, Beta: 0.05,
				Aggregation: TokenSumConst, NormConst: 5, PerTokenAdvantages: true})
			return o.Loss, err
		}, grpoInputs, true},
		{"grpo-no-kl", func(g *onnx.Graph) (string, error) {
			o, err := AppendGRPO(g, onnx.Double, policy.OutputLogits, GRPOConfig{EpsLow: 0.1, EpsHigh: 0.1})
			return o.Loss, err
		}, grpoInputs, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, names, cfg := tinyPolicy(t, onnx.Double, uint64(i+1))
			loss, err := tc.append(g)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			feeds := policyFeeds(rng, cfg.VocabSize, b, tl)
			lossFeeds(rng, feeds, cfg.VocabSize, b, tl, tc.inputs, tc.perTok)
			worst, err := autodiff.CheckGradients(rt, g, loss, names, GraphInputs(g, feeds), autodiff.CheckConfig{MaxPerParam: 12})
			if err != nil {
				t.Fatalf("%v (worst %.3g)", err, worst)
			}
			t.Logf("worst abs error %.3g over %d weights", worst, len(names))
		})
	}
}

// mlpScorer appends a shared two-layer MLP (d -> h -> 1) applied to x [N,d]
// and returns scores [N].
func mlpScorer(b *onnx.Builder, x string) string {
	h := b.Op("Relu", []string{b.Op("Add", []string{b.Op("MatMul", []string{x, "w1"}), "b1"})})
	s := b.Op("Add", []string{b.Op("MatMul", []string{h, "w2"}), "b2"})
	return b.Op("Squeeze", []string{s, b.Constant(onnx.Int64s(-1))})
}

// TestBradleyTerryGradient checks the preference loss through an MLP that
// scores both sides of each pair with the same weights (fan-out).
func TestBradleyTerryGradient(t *testing.T) {
	rt := orttest.Runtime(t)
	rng := rand.New(rand.NewPCG(5, 5))
	const n, d, h = 6, 5, 8
	b := onnx.NewBuilder("bt")
	uni := func(name string, dims ...int64) {
		size := int64(1)
		for _, x := range dims {
			size *= x
		}
		v := make([]float64, size)
		for i := range v {
			v[i] = rng.Float64() - 0.5
		}
		b.Initializer(&onnx.Tensor{Name: name, DataType: onnx.Double, Dims: dims, Double: v})
	}
	uni("w1", d, h)
	uni("b1", h)
	uni("w2", h, 1)
	uni("b2", 1)
	pos := mlpScorer(b, b.Input("pos", onnx.Double, onnx.Dim{Param: "N"}, onnx.Dim{Value: d}))
	neg := mlpScorer(b, b.Input("neg", onnx.Double, onnx.Dim{Param: "N"}, onnx.Dim{Value: d}))
	loss, _, err := AppendBradleyTerry(b.Graph(), onnx.Double, pos, neg)
	if err != nil {
		t.Fatal(err)
	}
	feat := func() *ort.Tensor {
		v := make([]float64, n*d)
		for i := range v {
			v[i] = 2*rng.Float64() - 1
		}
		return ort.F64Tensor(v, n, d)
	}
	feeds := map[string]*ort.Tensor{"pos": feat(), "neg": feat()}
	worst, err := autodiff.CheckGradients(rt, b.Graph(), loss, []string{"w1", "b1", "w2", "b2"}, feeds, autodiff.CheckConfig{})
	if err != nil {
		t.Fatalf("%v (worst %.3g)", err, worst)
	}
	t.Logf("worst abs error %.3g", worst)
}
