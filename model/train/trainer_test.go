package train

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/autodiff"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// Reverse task: "a b c d SEP d c b a" over digits 0..9; the loss covers the
// predictions of the four reversed digits.
const (
	revDigits = 4
	revSep    = 10
	revLen    = 2*revDigits + 1
)

func reverseBatch(rng *rand.Rand, b int) map[string]*ort.Tensor {
	ids := make([]int64, b*revLen)
	ones := make([]int64, b*revLen)
	pos := make([]int64, b*revLen)
	tg := make([]int64, b*revLen)
	tm := make([]float32, b*revLen)
	for r := range b {
		row := ids[r*revLen : (r+1)*revLen]
		for i := range revDigits {
			row[i] = int64(rng.IntN(10))
		}
		row[revDigits] = revSep
		for i := range revDigits {
			row[revDigits+1+i] = row[revDigits-1-i]
		}
		for c := range revLen {
			i := r*revLen + c
			ones[i], pos[i] = 1, int64(c)
			if c+1 < revLen {
				tg[i] = row[c+1]
			}
			if c >= revDigits && c+1 < revLen {
				tm[i] = 1
			}
		}
	}
	shape := []int64{int64(b), revLen}
	return map[string]*ort.Tensor{
		policy.InputIDs: ort.I64Tensor(ids, shape...), policy.InputMask: ort.I64Tensor(ones, shape...),
		policy.InputPositions: ort.I64Tensor(pos, shape...), InputTargets: ort.I64Tensor(tg, shape...),
		InputTokenMask: ort.F32Tensor(tm, shape...),
	}
}

// appendAccuracy appends the masked token accuracy of argmax(logits).
func appendAccuracy(g *onnx.Graph) string {
	e := autodiff.NewEditor(g, "acc/")
	pred := e.Op("ArgMax", []string{policy.OutputLogits}, onnx.AttrI("axis", -1), onnx.AttrI("keepdims", 0))
	hit := e.Op("Cast", []string{e.Op("Equal", []string{pred, InputTargets})}, onnx.AttrI("to", int64(onnx.Float)))
	num := e.Op("ReduceSum", []string{e.Op("Mul", []string{hit, InputTokenMask})}, onnx.AttrI("keepdims", 0))
	den := e.Op("ReduceSum", []string{InputTokenMask}, onnx.AttrI("keepdims", 0))
	return e.Op("Div", []string{num, den})
}

// TestTrainerLearnsReverse trains a 2-layer policy with cross-entropy for
// 300 AdamW steps on digit reversal and expects held-out token accuracy of
// at least 0.9 (chance is 0.1) and a falling loss.
func TestTrainerLearnsReverse(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg := policy.Config{VocabSize: 11, DModel: 32, NLayers: 2, NHeads: 2, DFF: 64, MaxSeq: revLen}
	w, err := policy.Init(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := policy.FullGraph(cfg, w, onnx.Float)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := AppendCrossEntropy(m.Graph, onnx.Float, policy.OutputLogits)
	if err != nil {
		t.Fatal(err)
	}
	acc := appendAccuracy(m.Graph)
	oc := optim.DefaultConfig()
	oc.LR = 3e-3
	tr, err := New(rt, m.Graph, loss, Config{Optim: oc, Metrics: []string{acc}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	rng := rand.New(rand.NewPCG(2, 2))
	held := GraphInputs(m.Graph, reverseBatch(rand.New(rand.NewPCG(99, 99)), 256))
	before, err := tr.Evaluate(held)
	if err != nil {
		t.Fatal(err)
	}
	const steps = 300
	var last Result
	for s := range steps {
		if last, err = tr.Step(GraphInputs(m.Graph, reverseBatch(rng, 64))); err != nil {
			t.Fatalf("step %d: %v", s, err)
		}
	}
	after, err := tr.Evaluate(held)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out loss %.3f -> %.3f, accuracy %.3f -> %.3f (last train loss %.3f, grad norm %.3f)",
		before.Loss, after.Loss, before.Metrics[acc], after.Metrics[acc], last.Loss, last.Optim.GradNorm)
	if after.Metrics[acc] < 0.9 || after.Loss >= before.Loss/4 {
		t.Fatalf("did not learn: loss %.3f -> %.3f, accuracy %.3f", before.Loss, after.Loss, after.Metrics[acc])
	}
	if tr.Optimizer().StepCount() != steps {
		t.Fatalf("optimizer at step %d, want %d", tr.Optimizer().StepCount(), steps)
	}
}

func TestTrainerErrors(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg := policy.Config{VocabSize: 11, DModel: 8, NLayers: 1, NHeads: 2, DFF: 8, MaxSeq: revLen}
	w, err := policy.Init(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := policy.FullGraph(cfg, w, onnx.Float)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := AppendCrossEntropy(m.Graph, onnx.Float, policy.OutputLogits)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(rt, m.Graph, loss, Config{Optim: optim.DefaultConfig(), Params: []string{"nope"}}, nil); !errors.Is(err, ErrTrainer) {
		t.Fatalf("unknown weight: got %v", err)
	}
	tr, err := New(rt, m.Graph, loss, Config{Optim: optim.DefaultConfig()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	if _, err := tr.Step(); !errors.Is(err, ErrTrainer) {
		t.Fatalf("no batch: got %v", err)
	}
	bad := GraphInputs(m.Graph, reverseBatch(rand.New(rand.NewPCG(1, 1)), 2))
	bad[policy.ParamLMHead] = bad[InputTokenMask]
	if _, err := tr.Step(bad); !errors.Is(err, ErrTrainer) {
		t.Fatalf("weight fed as input: got %v", err)
	}
	if err := tr.SetParam(policy.ParamLMHead, []float32{1}); !errors.Is(err, ErrTrainer) {
		t.Fatalf("wrong size: got %v", err)
	}
}

// TestTrainerResumeExact: a trainer rebuilt from another's weights and
// serialized optimizer state after 5 steps matches it bit for bit 3 steps
// later.
func TestTrainerResumeExact(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg := policy.Config{VocabSize: 11, DModel: 16, NLayers: 1, NHeads: 2, DFF: 32, MaxSeq: revLen}
	w, err := policy.Init(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	newTrainer := func() (*Trainer, *onnx.Graph) {
		m, err := policy.FullGraph(cfg, w, onnx.Float)
		if err != nil {
			t.Fatal(err)
		}
		loss, err := AppendCrossEntropy(m.Graph, onnx.Float, policy.OutputLogits)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := New(rt, m.Graph, loss, Config{Optim: optim.DefaultConfig()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		return tr, m.Graph
	}
	a, g := newTrainer()
	rng := rand.New(rand.NewPCG(4, 4))
	batches := make([]map[string]*ort.Tensor, 8)
	for i := range batches {
		batches[i] = GraphInputs(g, reverseBatch(rng, 8))
	}
	for _, bt := range batches[:5] {
		if _, err := a.Step(bt); err != nil {
			t.Fatal(err)
		}
	}
	state, err := a.Optimizer().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newTrainer()
	for _, p := range a.Params() {
		if err := b.SetParam(p.Name, p.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Optimizer().UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	for _, bt := range batches[5:] {
		ra, err := a.Step(bt)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.Step(bt)
		if err != nil {
			t.Fatal(err)
		}
		if ra.Loss != rb.Loss {
			t.Fatalf("losses differ after resume: %v vs %v", ra.Loss, rb.Loss)
		}
	}
	for i, p := range a.Params() {
		q := b.Params()[i]
		for j := range p.Data {
			if p.Data[j] != q.Data[j] {
				t.Fatalf("%s[%d] differs after resume: %v vs %v", p.Name, j, p.Data[j], q.Data[j])
			}
		}
	}
}
