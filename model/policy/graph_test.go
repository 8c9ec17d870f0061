package policy

import (
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// differentiable are the ops allowed on paths from weights to outputs: the
// ops the autodiff package differentiates.
var differentiable = map[string]bool{
	"Gather": true, "MatMul": true, "Add": true, "Sub": true, "Mul": true, "Div": true,
	"ReduceMean": true, "Sqrt": true, "Reshape": true, "Transpose": true, "Softmax": true,
	"Tanh": true, "Concat": true,
}

// TestGraphContract checks what the autodiff package and the ONNX tooling
// rely on: the models validate, use opset 17, hold exactly the parameters as
// initializers (named by parameter name, in the requested dtype), and only
// differentiable ops are reachable from a weight.
func TestGraphContract(t *testing.T) {
	cfg := smallConfig()
	w, err := Init(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	full32, err32 := FullGraph(cfg, w, onnx.Float)
	full64, err64 := FullGraph(cfg, w, onnx.Double)
	kv, errKV := KVGraph(cfg, w)
	for _, err := range []error{err32, err64, errKV} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := FullGraph(cfg, w, onnx.Int64); err == nil {
		t.Fatal("FullGraph accepted an int64 dtype")
	}
	tests := []struct {
		name string
		m    *onnx.Model
		dt   onnx.DataType
	}{
		{"full float", full32, onnx.Float},
		{"full double", full64, onnx.Double},
		{"kv", kv, onnx.Float},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if len(tt.m.Opsets) != 1 || tt.m.Opsets[0].Version != Opset {
				t.Fatalf("opsets %v", tt.m.Opsets)
			}
			g := tt.m.Graph
			inits := map[string]bool{}
			for _, in := range g.Initializers {
				p, ok := w[in.Name]
				if !ok {
					t.Fatalf("initializer %q is not a parameter", in.Name)
				}
				if in.DataType != tt.dt || !sameShape(in.Dims, p.Shape) {
					t.Fatalf("initializer %q: %v %v", in.Name, in.DataType, in.Dims)
				}
				inits[in.Name] = true
			}
			if len(inits) != len(w) || len(g.Initializers) != len(w) {
				t.Fatalf("%d initializers for %d parameters", len(g.Initializers), len(w))
			}
			reached := map[string]bool{}
			for name := range inits {
				reached[name] = true
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
