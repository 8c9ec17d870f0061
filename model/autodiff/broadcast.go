package autodiff

import (
	"math"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// reduceTo sums the gradient g (whose shape inference describes as gi) over
// the axes along which x was broadcast, so that the result has x's shape.
// When the shapes are known well enough the axes are fixed in the graph;
// otherwise they are found at run time.
func (c *ctx) reduceTo(g string, gi *vinfo, x string) string {
	xi := c.info[x]
	if xi != nil && gi != nil && sameShape(xi, gi) {
		return g
	}
	if xi != nil && gi != nil && xi.rank >= 0 && gi.rank >= xi.rank {
		if r, ok := c.staticReduce(g, gi, x, xi); ok {
			return r
		}
	}
	return c.dynamicReduce(g, x)
}

// staticReduce handles the case where every aligned dimension of x is either
// certainly equal to g's or certainly 1.
func (c *ctx) staticReduce(g string, gi *vinfo, x string, xi *vinfo) (string, bool) {
	lead := gi.rank - xi.rank
	var axes []int64
	for i := range lead {
		axes = append(axes, int64(i))
	}
	keep := false
	for i, d := range xi.dims {
		gd := gi.dims[lead+i]
		switch {
		case d.same(gd):
		case d.isOne():
			axes = append(axes, int64(lead+i))
			keep = true
		default:
			return "", false
		}
	}
	if len(axes) == 0 {
		return g, true
	}
	if !keep {
		return c.e.Op("ReduceSum", []string{g, c.e.Ints(axes...)}, onnx.AttrI("keepdims", 0)), true
	}
	r := c.e.Op("ReduceSum", []string{g, c.e.Ints(axes...)}, onnx.AttrI("keepdims", 1))
	return c.reshapeLike(r, x), true
}

// dynamicReduce finds the broadcast axes at run time: x's shape is padded on
// the left with ones to g's rank, and g is summed (keeping dims) wherever the
// padded shape is 1, then reshaped to x's shape.
func (c *ctx) dynamicReduce(g, x string) string {
	e := c.e
	gShape := e.Op("Shape", []string{g})
	xShape := e.Op("Shape", []string{x})
	diff := e.Op("Sub", []string{e.Op("Shape", []string{gShape}), e.Op("Shape", []string{xShape})})
	oneI := &onnx.Tensor{DataType: onnx.Int64, Dims: []int64{1}, Int64: []int64{1}}
	pad := e.Op("ConstantOfShape", []string{diff}, onnx.AttrT("value", oneI))
	padded := e.Op("Concat", []string{pad, xShape}, onnx.AttrI("axis", 0))
	isOne := e.Op("Equal", []string{padded, e.IntScalar(1)})
	axes := e.Op("Reshape", []string{e.Op("NonZero", []string{isOne}), e.Ints(-1)})
	r := e.Op("ReduceSum", []string{g, axes}, onnx.AttrI("keepdims", 1), onnx.AttrI("noop_with_empty_axes", 1))
	return e.Op("Reshape", []string{r, xShape})
}

// reshapeLike reshapes v to x's shape, with a constant target when x's shape
// is fully known.
func (c *ctx) reshapeLike(v, x string) string {
	if xi := c.info[x]; xi != nil && xi.fullyKnown() {
		dims := make([]int64, xi.rank)
		for i, d := range xi.dims {
			dims[i] = d.v
		}
		return c.e.Op("Reshape", []string{v, c.e.Ints(dims...)})
	}
	return c.e.Op("Reshape", []string{v, c.e.Op("Shape", []string{x})})
}

// maxInt64 is the "to the end" bound for Slice.
const maxInt64 = math.MaxInt64
