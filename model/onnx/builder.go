package onnx

import "fmt"

// Builder assembles a Graph one node at a time, naming intermediate values
// automatically. It is not safe for concurrent use.
type Builder struct {
	g    *Graph
	next int
}

// NewBuilder returns a Builder for an empty graph with the given name.
func NewBuilder(name string) *Builder {
	return &Builder{g: &Graph{Name: name}}
}

// Graph returns the graph built so far (not a copy).
func (b *Builder) Graph() *Graph { return b.g }

// fresh returns a new unique value name with the given prefix.
func (b *Builder) fresh(prefix string) string {
	b.next++
	return fmt.Sprintf("%s_%d", prefix, b.next)
}

// Input declares a graph input and returns its name. No shape arguments
// declare a scalar (rank 0); use Dim{Param: "n"} for a symbolic dimension.
func (b *Builder) Input(name string, dt DataType, shape ...Dim) string {
	b.g.Inputs = append(b.g.Inputs, ValueInfo{Name: name, DataType: dt, Shape: shapeOf(shape)})
	return name
}

// Output declares value as a graph output of the given type and shape. No
// shape arguments declare a scalar (rank 0); OutputAnyShape declares an
// output whose rank is unknown.
func (b *Builder) Output(value string, dt DataType, shape ...Dim) {
	b.g.Outputs = append(b.g.Outputs, ValueInfo{Name: value, DataType: dt, Shape: shapeOf(shape)})
}

// OutputAnyShape declares value as a graph output of the given type whose
// shape, rank included, is left to shape inference.
func (b *Builder) OutputAnyShape(value string, dt DataType) {
	b.g.Outputs = append(b.g.Outputs, ValueInfo{Name: value, DataType: dt})
}

// shapeOf copies shape, turning "no dimensions" into an explicit rank-0 shape
// (a nil Shape in a ValueInfo means the rank is unknown).
func shapeOf(shape []Dim) []Dim {
	return append([]Dim{}, shape...)
}

// Initializer adds t as a graph initializer (a weight) and returns its name.
func (b *Builder) Initializer(t *Tensor) string {
	b.g.Initializers = append(b.g.Initializers, t)
	return t.Name
}

// Constant adds a Constant node holding t and returns the name of its output.
// Constants are nodes, not initializers, so that only weights are initializers.
func (b *Builder) Constant(t *Tensor) string {
	out := b.fresh("const")
	c := *t
	c.Name = out
	b.g.Nodes = append(b.g.Nodes, &Node{
		Name:    out,
		OpType:  "Constant",
		Outputs: []string{out},
		Attrs:   []Attribute{{Name: "value", Type: AttrTensor, T: &c}},
	})
	return out
}

// Op adds a node with one output and returns the output's name.
func (b *Builder) Op(opType string, inputs []string, attrs ...Attribute) string {
	return b.OpN(opType, inputs, 1, attrs...)[0]
}

// OpN adds a node with n outputs and returns their names.
func (b *Builder) OpN(opType string, inputs []string, n int, attrs ...Attribute) []string {
	outs := make([]string, n)
	for i := range outs {
		outs[i] = b.fresh(opType)
	}
	b.g.Nodes = append(b.g.Nodes, &Node{
		Name:    b.fresh("n_" + opType),
		OpType:  opType,
		Inputs:  append([]string(nil), inputs...),
		Outputs: outs,
		Attrs:   attrs,
	})
	return outs
}

// Named adds a node whose outputs get the given names (for graph outputs that
// must carry a fixed name, such as "logits").
func (b *Builder) Named(opType string, inputs, outputs []string, attrs ...Attribute) {
	b.g.Nodes = append(b.g.Nodes, &Node{
		Name:    b.fresh("n_" + opType),
		OpType:  opType,
		Inputs:  append([]string(nil), inputs...),
		Outputs: append([]string(nil), outputs...),
		Attrs:   attrs,
	})
}

// NewModel wraps g in a Model for the default ONNX domain at the given opset.
func NewModel(g *Graph, opset int64) *Model {
	return &Model{
		IRVersion:    9,
		Opsets:       []OpsetImport{{Domain: "", Version: opset}},
		ProducerName: "wsgrpo",
		Graph:        g,
	}
}

// Dims returns fixed dimensions for the given sizes.
func Dims(sizes ...int64) []Dim {
	d := make([]Dim, len(sizes))
	for i, s := range sizes {
		d[i] = Dim{Value: s}
	}
	return d
}

// AttrI returns an integer attribute.
func AttrI(name string, v int64) Attribute { return Attribute{Name: name, Type: AttrInt, I: v} }

// AttrF returns a float attribute.
func AttrF(name string, v float32) Attribute { return Attribute{Name: name, Type: AttrFloat, F: v} }

// AttrS returns a string attribute.
func AttrS(name, v string) Attribute { return Attribute{Name: name, Type: AttrString, S: []byte(v)} }

// AttrInts returns an integer-list attribute.
func AttrInts(name string, v ...int64) Attribute {
	return Attribute{Name: name, Type: AttrIntList, Ints: append([]int64(nil), v...)}
}

// AttrT returns a tensor attribute.
func AttrT(name string, t *Tensor) Attribute { return Attribute{Name: name, Type: AttrTensor, T: t} }

// ScalarF32 returns a rank-0 float tensor.
func ScalarF32(v float32) *Tensor { return &Tensor{DataType: Float, Float: []float32{v}} }

// ScalarF64 returns a rank-0 double tensor.
func ScalarF64(v float64) *Tensor { return &Tensor{DataType: Double, Double: []float64{v}} }

// Int64s returns a rank-1 int64 tensor.
func Int64s(v ...int64) *Tensor {
	return &Tensor{DataType: Int64, Dims: []int64{int64(len(v))}, Int64: append([]int64(nil), v...)}
}
