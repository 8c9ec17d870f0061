package onnx

import (
	"errors"
	"testing"
)

func TestValidate(t *testing.T) {
	node := func(op string, in, out []string, attrs ...Attribute) *Node {
		return &Node{OpType: op, Inputs: in, Outputs: out, Attrs: attrs}
	}
	graph := func(nodes []*Node, outputs ...string) *Graph {
		g := &Graph{
			Name:         "g",
			Inputs:       []ValueInfo{{Name: "x", DataType: Float}},
			Initializers: []*Tensor{ScalarF32(2)},
			Nodes:        nodes,
		}
		g.Initializers[0].Name = "w"
		for _, o := range outputs {
			g.Outputs = append(g.Outputs, ValueInfo{Name: o, DataType: Float})
		}
		return g
	}
	sub := func(in string) Attribute {
		return Attribute{Name: "body", Type: AttrGraph, G: &Graph{
			Nodes:   []*Node{node("Identity", []string{in}, []string{"inner"})},
			Outputs: []ValueInfo{{Name: "inner"}},
		}}
	}
	for _, tc := range []struct {
		name string
		m    *Model
		want error
	}{
		{"valid", NewModel(graph([]*Node{node("Mul", []string{"x", "w"}, []string{"y"})}, "y"), 17), nil},
		{"output is an input", NewModel(graph(nil, "x"), 17), nil},
		{"omitted optional input and output", NewModel(graph([]*Node{node("Clip", []string{"x", "", "w"}, []string{"y", ""})}, "y"), 17), nil},
		{"subgraph reads outer scope", NewModel(graph([]*Node{node("Loop", nil, []string{"y"}, sub("x"))}, "y"), 17), nil},
		{"initializer overrides input", NewModel(&Graph{Inputs: []ValueInfo{{Name: "w"}}, Initializers: []*Tensor{{Name: "w", DataType: Float, Float: []float32{1}}}, Outputs: []ValueInfo{{Name: "w"}}}, 17), nil},
		{"no graph", &Model{Opsets: []OpsetImport{{Version: 17}}}, ErrNoGraph},
		{"no default opset", &Model{Graph: graph(nil, "x"), Opsets: []OpsetImport{{Domain: "com.x", Version: 1}}}, ErrInvalidGraph},
		{"dangling input", NewModel(graph([]*Node{node("Mul", []string{"x", "v"}, []string{"y"})}, "y"), 17), ErrInvalidGraph},
		{"used before defined", NewModel(graph([]*Node{
			node("Neg", []string{"z"}, []string{"y"}),
			node("Neg", []string{"x"}, []string{"z"}),
		}, "y"), 17), ErrInvalidGraph},
		{"output defined twice", NewModel(graph([]*Node{
			node("Neg", []string{"x"}, []string{"y"}),
			node("Abs", []string{"x"}, []string{"y"}),
		}, "y"), 17), ErrInvalidGraph},
		{"node overwrites input", NewModel(graph([]*Node{node("Neg", []string{"x"}, []string{"x"})}, "x"), 17), ErrInvalidGraph},
		{"graph output never produced", NewModel(graph(nil, "nope"), 17), ErrInvalidGraph},
		{"graph output listed twice", NewModel(graph(nil, "x", "x"), 17), ErrInvalidGraph},
		{"missing op type", NewModel(graph([]*Node{node("", []string{"x"}, []string{"y"})}, "y"), 17), ErrInvalidGraph},
		{"nil node", NewModel(graph([]*Node{nil}, "x"), 17), ErrInvalidGraph},
		{"subgraph reads undefined", NewModel(graph([]*Node{node("Loop", nil, []string{"y"}, sub("ghost"))}, "y"), 17), ErrInvalidGraph},
		{"bad initializer", NewModel(&Graph{Initializers: []*Tensor{{Name: "w", DataType: Float, Dims: []int64{2}, Float: []float32{1}}}}, 17), ErrInvalidTensor},
		{"unnamed initializer", NewModel(&Graph{Initializers: []*Tensor{ScalarF32(1)}}, 17), ErrInvalidGraph},
		{"duplicate initializer", NewModel(&Graph{Initializers: []*Tensor{
			{Name: "w", DataType: Float, Float: []float32{1}}, {Name: "w", DataType: Float, Float: []float32{2}},
		}}, 17), ErrInvalidGraph},
		{"bad constant tensor", NewModel(graph([]*Node{node("Constant", nil, []string{"y"},
			AttrT("value", &Tensor{DataType: Int64, Dims: []int64{3}, Int64: []int64{1}}))}, "y"), 17), ErrInvalidTensor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Validate()
			if tc.want == nil && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestBuilderValidates(t *testing.T) {
	b := NewBuilder("b")
	x := b.Input("x", Float, Dims(2, 3)...)
	w := b.Initializer(&Tensor{Name: "w", DataType: Float, Dims: []int64{3}, Float: []float32{1, 2, 3}})
	y := b.Op("Mul", []string{x, w})
	b.Named("ReduceSum", []string{y, b.Constant(Int64s(1))}, []string{"s"}, AttrI("keepdims", 0))
	b.Output("s", Float, Dims(2)...)
	if err := NewModel(b.Graph(), 17).Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if sh := b.Graph().Inputs[0].Shape; len(sh) != 2 || sh[1].Value != 3 {
		t.Fatalf("input shape %v", sh)
	}
	b.Output("scalar", Float)
	if sh := b.Graph().Outputs[1].Shape; sh == nil || len(sh) != 0 {
		t.Fatalf("Output with no dims: shape %#v, want empty non-nil (scalar)", sh)
	}
	b.OutputAnyShape("any", Float)
	if sh := b.Graph().Outputs[2].Shape; sh != nil {
		t.Fatalf("OutputAnyShape: shape %#v, want nil (unknown rank)", sh)
	}
}
