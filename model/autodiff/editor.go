package autodiff

import (
	"fmt"
	"math"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// Editor appends nodes to an existing graph, giving every new value a name
// that starts with its prefix and collides with no name already in the graph.
// Small constants are shared: asking twice for the same scalar or integer
// list returns the same value. It is not safe for concurrent use.
type Editor struct {
	g      *onnx.Graph
	prefix string
	next   int
	used   map[string]bool
	consts map[string]string
}

// NewEditor returns an Editor that appends to g, naming new values
// "<prefix><hint>_<n>".
func NewEditor(g *onnx.Graph, prefix string) *Editor {
	e := &Editor{g: g, prefix: prefix, used: map[string]bool{}, consts: map[string]string{}}
	for _, vi := range g.Inputs {
		e.used[vi.Name] = true
	}
	for _, t := range g.Initializers {
		e.used[t.Name] = true
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			e.used[o] = true
		}
		e.used[n.Name] = true
	}
	return e
}

// Graph returns the graph being edited (not a copy).
func (e *Editor) Graph() *onnx.Graph { return e.g }

// Fresh returns a new unused value name built from hint.
func (e *Editor) Fresh(hint string) string {
	for {
		e.next++
		name := fmt.Sprintf("%s%s_%d", e.prefix, hint, e.next)
		if !e.used[name] {
			e.used[name] = true
			return name
		}
	}
}

// Reserve marks name as used so that Fresh never returns it. It reports
// whether the name was free.
func (e *Editor) Reserve(name string) bool {
	if e.used[name] {
		return false
	}
	e.used[name] = true
	return true
}

// Op appends a node with one output and returns the output's name.
func (e *Editor) Op(opType string, inputs []string, attrs ...onnx.Attribute) string {
	return e.OpN(opType, inputs, 1, attrs...)[0]
}

// OpN appends a node with n outputs and returns their names.
func (e *Editor) OpN(opType string, inputs []string, n int, attrs ...onnx.Attribute) []string {
	outs := make([]string, n)
	for i := range outs {
		outs[i] = e.Fresh(opType)
	}
	e.Named(opType, inputs, outs, attrs...)
	return outs
}

// Named appends a node whose outputs carry the given names.
func (e *Editor) Named(opType string, inputs, outputs []string, attrs ...onnx.Attribute) {
	for _, o := range outputs {
		e.used[o] = true
	}
	e.g.Nodes = append(e.g.Nodes, &onnx.Node{
		Name:    e.Fresh("n_" + opType),
		OpType:  opType,
		Inputs:  append([]string(nil), inputs...),
		Outputs: append([]string(nil), outputs...),
		Attrs:   attrs,
	})
}

// Const appends a Constant node holding a copy of t and returns its output.
func (e *Editor) Const(t *onnx.Tensor) string {
	out := e.Fresh("const")
	c := *t
	c.Name = out
	e.Named("Constant", nil, []string{out}, onnx.AttrT("value", &c))
	return out
}

// Scalar returns a rank-0 constant of the floating-point type dt (Float or
// Double) holding v. Equal requests share one node.
func (e *Editor) Scalar(dt onnx.DataType, v float64) string {
	key := fmt.Sprintf("s%d:%x", dt, math.Float64bits(v))
	if name, ok := e.consts[key]; ok {
		return name
	}
	name := e.Const(scalarTensor(dt, v))
	e.consts[key] = name
	return name
}

// Ints returns a rank-1 int64 constant holding v. Equal requests share one
// node.
func (e *Editor) Ints(v ...int64) string {
	key := fmt.Sprintf("i%v", v)
	if name, ok := e.consts[key]; ok {
		return name
	}
	name := e.Const(onnx.Int64s(v...))
	e.consts[key] = name
	return name
}

// IntScalar returns a rank-0 int64 constant holding v.
func (e *Editor) IntScalar(v int64) string {
	key := fmt.Sprintf("is%d", v)
	if name, ok := e.consts[key]; ok {
		return name
	}
	name := e.Const(&onnx.Tensor{DataType: onnx.Int64, Int64: []int64{v}})
	e.consts[key] = name
	return name
}

// Input declares a graph input.
func (e *Editor) Input(name string, dt onnx.DataType, shape ...onnx.Dim) string {
	e.used[name] = true
	e.g.Inputs = append(e.g.Inputs, onnx.ValueInfo{Name: name, DataType: dt, Shape: shape})
	return name
}

// Output declares value as a graph output.
func (e *Editor) Output(value string, dt onnx.DataType, shape ...onnx.Dim) {
	e.g.Outputs = append(e.g.Outputs, onnx.ValueInfo{Name: value, DataType: dt, Shape: shape})
}

// scalarTensor returns a rank-0 tensor of type dt holding v; dt must be a
// floating-point type (Double, or Float for anything else).
func scalarTensor(dt onnx.DataType, v float64) *onnx.Tensor {
	if dt == onnx.Double {
		return onnx.ScalarF64(v)
	}
	return onnx.ScalarF32(float32(v))
}
