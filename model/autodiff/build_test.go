package autodiff

import (
	"errors"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

func smallGraph(t testing.TB, opType string) (*onnx.Graph, string) {
	t.Helper()
	b := onnx.NewBuilder("small")
	b.Initializer(&onnx.Tensor{Name: "w", DataType: onnx.Double, Dims: []int64{3}, Double: []float64{0.1, 0.2, 0.3}})
	x := b.Input("x", onnx.Double, onnx.Dim{Param: "B"}, onnx.Dim{Param: "N"})
	y := b.Op(opType, []string{b.Op("Add", []string{x, "w"})})
	loss := b.Op("ReduceSum", []string{y}, onnx.AttrI("keepdims", 0))
	b.Output(loss, onnx.Double)
	return b.Graph(), loss
}

func TestBuildErrors(t *testing.T) {
	g, loss := smallGraph(t, "Atan")
	cases := []struct {
		name   string
		loss   string
		params []string
		opts   []Option
		want   error
	}{
		{"no-rule-on-path", loss, []string{"w"}, nil, ErrUnsupportedOp},
		{"unknown-loss", "nope", []string{"w"}, nil, ErrUnknownValue},
		{"unknown-weight", loss, []string{"x"}, nil, ErrUnknownValue},
		{"duplicate-weight", loss, []string{"w", "w"}, nil, ErrUnknownValue},
		{"old-opset", loss, []string{"w"}, []Option{WithOpset(12)}, ErrOpset},
		{"unknown-output", loss, []string{"w"}, []Option{WithOutputs("nope")}, ErrUnknownValue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Build(g, tc.loss, tc.params, tc.opts...); !errors.Is(err, tc.want) {
				t.Fatalf("Build: got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestBuildLeavesForwardGraph checks that Build copies: the forward graph
// keeps its initializers and nodes, and the training graph takes the weights
// as inputs and finds broadcast axes at run time when shapes are symbolic.
func TestBuildLeavesForwardGraph(t *testing.T) {
	g, loss := smallGraph(t, "Tanh")
	nodes, inits := len(g.Nodes), len(g.Initializers)
	tg, err := Build(g, loss, []string{"w"})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != nodes || len(g.Initializers) != inits {
		t.Fatalf("forward graph modified: %d nodes, %d initializers", len(g.Nodes), len(g.Initializers))
	}
	if len(tg.Initializers) != 0 || tg.Inputs[len(tg.Inputs)-1].Name != "w" {
		t.Fatalf("weight not moved to inputs: inputs %v, %d initializers", tg.Inputs, len(tg.Initializers))
	}
	hasNonZero := false
	for _, n := range tg.Nodes {
		hasNonZero = hasNonZero || n.OpType == "NonZero"
	}
	if !hasNonZero {
		t.Fatal("symbolic broadcast should reduce over axes found at run time (NonZero)")
	}
	if err := onnx.NewModel(tg, 17).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckGradientsCatchesWrongRule swaps in a wrong rule for Exp and
// expects the finite-difference check to reject it.
func TestCheckGradientsCatchesWrongRule(t *testing.T) {
	rt := orttest.Runtime(t)
	saved := rules["Exp"]
	rules["Exp"] = unary(gradIdentity)
	t.Cleanup(func() { rules["Exp"] = saved })
	b := onnx.NewBuilder("wrong")
	b.Initializer(&onnx.Tensor{Name: "w", DataType: onnx.Double, Dims: []int64{2}, Double: []float64{0.5, -0.5}})
	loss := weightedSumLoss(b, b.Op("Exp", []string{"w"}))
	b.Output(loss, onnx.Double)
	if _, err := CheckGradients(rt, b.Graph(), loss, []string{"w"}, nil, CheckConfig{}); !errors.Is(err, ErrGradientMismatch) {
		t.Fatalf("got %v, want ErrGradientMismatch", err)
	}
}
