package hf

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/autodiff"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/train"
)

// differentiable are the ops allowed on paths from weights to outputs of
// FullGraph: ops the autodiff package has gradient rules for.
var differentiable = map[string]bool{
	"Gather": true, "MatMul": true, "Add": true, "Mul": true, "Div": true, "Sqrt": true,
	"ReduceMean": true, "Reshape": true, "Transpose": true, "Softmax": true, "Concat": true,
	"Slice": true, "Neg": true, "Pow": true, "Sigmoid": true, "Exp": true, "Unsqueeze": true, "Expand": true,
}

// loadTiny writes and loads a test checkpoint of arch in fp32.
func loadTiny(t testing.TB, arch string, seed uint64) *Checkpoint {
	t.Helper()
	dir, _ := writeTestCheckpoint(t, tinyArchs[arch], "F32", false, seed)
	ck, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return ck
}

// TestFullGraphContract checks what autodiff relies on: the initializers
// are exactly the checkpoint's tensors under their Hugging Face names and
// shapes, and only differentiable ops are reachable from a weight.
func TestFullGraphContract(t *testing.T) {
	for _, arch := range []string{ArchQwen2, ArchQwen3, ArchLlama} {
		t.Run(arch, func(t *testing.T) {
			ck := loadTiny(t, arch, 3)
			m, err := FullGraph(ck.Config, ck.Weights, GraphOptions{MaxSeq: 16})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
			g := m.Graph
			reached := map[string]bool{}
			for _, in := range g.Initializers {
				p, ok := ck.Weights[in.Name]
				if !ok || !sameShape(in.Dims, p.Shape) || in.DataType != onnx.Float {
					t.Fatalf("initializer %q (%v %v) is not a checkpoint tensor", in.Name, in.DataType, in.Dims)
				}
				reached[in.Name] = true
			}
			if len(g.Initializers) != len(ck.Weights) {
				t.Fatalf("%d initializers for %d tensors", len(g.Initializers), len(ck.Weights))
			}
			for _, n := range g.Nodes {
				hit := false
				for _, in := range n.Inputs {
					hit = hit || reached[in]
				}
				if !hit {
					continue
				}
				if !differentiable[n.OpType] {
					t.Fatalf("node %s (%s) is reachable from a weight", n.Name, n.OpType)
				}
				for _, out := range n.Outputs {
					reached[out] = true
				}
			}
			for _, out := range g.Outputs {
				if !reached[out.Name] {
					t.Fatalf("output %q does not depend on the weights", out.Name)
				}
			}
		})
	}
}

// addWeightedLoss appends loss = Σ logits·a + Σ hidden·b over the real
// tokens (a [V] and b [D] random constants) to a float64 full graph and returns the loss name.
func addWeightedLoss(g *onnx.Graph, c Config) string {
	rng := rand.New(rand.NewPCG(5, 5))
	vec := func(n int) *onnx.Tensor {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.Float64()*2 - 1
		}
		return &onnx.Tensor{DataType: onnx.Double, Dims: []int64{int64(n)}, Double: v}
	}
	node := func(op string, in []string, out string, attrs ...onnx.Attribute) string {
		g.Nodes = append(g.Nodes, &onnx.Node{Name: "n/" + out, OpType: op, Inputs: in, Outputs: []string{out}, Attrs: attrs})
		return out
	}
	// Padding rows attend to nothing (every score carries the mask bias);
	// like the learner's losses, this one ignores them.
	keep := node("Cast", []string{policy.InputMask}, "loss/keep", onnx.AttrI("to", int64(onnx.Double)))
	axes := node("Constant", nil, "loss/axes", onnx.AttrT("value", onnx.Int64s(2)))
	keep = node("Unsqueeze", []string{keep, axes}, "loss/keep3")
	sum := func(x string, w *onnx.Tensor) string {
		c := node("Constant", nil, "loss/w/"+x, onnx.AttrT("value", w))
		y := node("Mul", []string{node("Mul", []string{x, c}, "loss/mul/"+x), keep}, "loss/masked/"+x)
		return node("ReduceSum", []string{y}, "loss/sum/"+x, onnx.AttrI("keepdims", 0))
	}
	loss := node("Add", []string{sum(policy.OutputLogits, vec(c.VocabSize)), sum(policy.OutputHidden, vec(c.HiddenSize))}, "loss")
	g.Outputs = append(g.Outputs, onnx.ValueInfo{Name: loss, DataType: onnx.Double, Shape: []onnx.Dim{}})
	return loss
}

// TestTrainingGraphGradients builds the training graph of each
// architecture's float64 full graph with autodiff and checks every weight's
// gradient (a few elements each, tied embeddings included) against central
// finite differences on a left-padded batch.
func TestTrainingGraphGradients(t *testing.T) {
	rt := orttest.Runtime(t)
	for _, arch := range []string{ArchQwen2, ArchQwen3, ArchLlama} {
		t.Run(arch, func(t *testing.T) {
			ck := loadTiny(t, arch, 4)
			m, err := FullGraph(ck.Config, ck.Weights, GraphOptions{MaxSeq: 16, DType: onnx.Double})
			if err != nil {
				t.Fatal(err)
			}
			loss := addWeightedLoss(m.Graph, ck.Config)
			b, err := policy.NewBatch([][]int32{{4, 8, 15, 16, 23}, {42, 7}}, 0, true, 16)
			if err != nil {
				t.Fatal(err)
			}
			shape := []int64{int64(b.Rows), int64(b.Len)}
			feeds := map[string]*ort.Tensor{
				policy.InputIDs:  ort.I64Tensor(b.IDs, shape...),
				policy.InputMask: ort.I64Tensor(b.Mask, shape...),
			}
			worst, err := autodiff.CheckGradients(rt, m.Graph, loss, ck.Weights.Names(), feeds,
				autodiff.CheckConfig{MaxPerParam: 4, Atol: 1e-6, Rtol: 1e-5})
			if err != nil {
				t.Fatalf("CheckGradients: %v", err)
			}
			t.Logf("%d weights, worst |analytic - numeric| = %.3g", len(ck.Weights), worst)
			if math.IsNaN(worst) {
				t.Fatal("NaN gradient")
			}
		})
	}
}

// TestTrainerLearnsAndSaves trains a tiny checkpoint's float32 full graph
// with the train package (next-token cross-entropy, AdamW) on a fixed
// batch, checks the loss falls, saves the trained weights in Hugging Face
// layout, and checks the reloaded checkpoint scores the batch with the
// trained loss.
func TestTrainerLearnsAndSaves(t *testing.T) {
	rt := orttest.Runtime(t)
	for _, arch := range []string{ArchQwen2, ArchLlama} {
		t.Run(arch, func(t *testing.T) {
			ck := loadTiny(t, arch, 6)
			seqs := [][]int32{{4, 8, 15, 16, 23, 42, 4, 8}, {1, 2, 3, 4, 5}}
			b, err := policy.NewBatch(seqs, 0, true, 16)
			if err != nil {
				t.Fatal(err)
			}
			shape := []int64{int64(b.Rows), int64(b.Len)}
			targets, tokMask := make([]int64, len(b.IDs)), make([]float32, len(b.IDs))
			for i := range b.IDs {
				if i%b.Len+1 < b.Len && b.Mask[i] == 1 {
					targets[i], tokMask[i] = b.IDs[i+1], 1
				}
			}
			feeds := map[string]*ort.Tensor{
				policy.InputIDs:      ort.I64Tensor(b.IDs, shape...),
				policy.InputMask:     ort.I64Tensor(b.Mask, shape...),
				train.InputTargets:   ort.I64Tensor(targets, shape...),
				train.InputTokenMask: ort.F32Tensor(tokMask, shape...),
			}
			trainer := newTrainer(t, rt, ck)
			first, err := trainer.Step(feeds)
			if err != nil {
				t.Fatalf("Step: %v", err)
			}
			var last train.Result
			for i := 0; i < 30; i++ {
				if last, err = trainer.Step(feeds); err != nil {
					t.Fatal(err)
				}
			}
			if after, err := trainer.Evaluate(feeds); err != nil || !(after.Loss < first.Loss/2) {
				t.Fatalf("cross-entropy %v after 31 steps (last step %v), first %v: %v", after.Loss, last.Loss, first.Loss, err)
			}
			for _, p := range trainer.Params() {
				copy(ck.Weights[p.Name].Data, p.Data)
			}
			dir := t.TempDir()
			if err := Save(dir, ck, SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			back, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			want, err := trainer.Evaluate(feeds)
			if err != nil {
				t.Fatal(err)
			}
			got, err := newTrainer(t, rt, back).Evaluate(feeds)
			if err != nil {
				t.Fatal(err)
			}
			if got.Loss != want.Loss {
				t.Fatalf("reloaded checkpoint: loss %v, trained %v", got.Loss, want.Loss)
			}
			t.Logf("cross-entropy %.4f -> %.4f", first.Loss, got.Loss)
		})
	}
}

// newTrainer opens a train.Trainer on ck's float32 full graph with a
// next-token cross-entropy loss.
func newTrainer(t testing.TB, rt *ort.Runtime, ck *Checkpoint) *train.Trainer {
	t.Helper()
	m, err := FullGraph(ck.Config, ck.Weights, GraphOptions{MaxSeq: 16})
	if err != nil {
		t.Fatal(err)
	}
	loss, err := train.AppendCrossEntropy(m.Graph, onnx.Float, policy.OutputLogits)
	if err != nil {
		t.Fatal(err)
	}
	opt := optim.DefaultConfig()
	opt.LR = 1e-2
	tr, err := train.New(rt, m.Graph, loss, train.Config{Optim: opt}, nil)
	if err != nil {
		t.Fatalf("train.New: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}
