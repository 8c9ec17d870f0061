package autodiff

import (
	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// ruleReduce handles ReduceSum and ReduceMean: the gradient is broadcast back
// over the reduced axes (divided by the number of reduced elements for the
// mean). Axes come from the attribute (before opset 18) or the second input.
func ruleReduce(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	x, y := n.Inputs[0], n.Outputs[0]
	var axes string
	if a := attr(n, "axes"); a != nil && len(a.Ints) > 0 {
		axes = c.e.Ints(a.Ints...)
	} else if in := input(n, 1); in != "" {
		axes = in
	}
	out := make([]string, len(n.Inputs))
	if axes == "" && attrInt(n, "noop_with_empty_axes", 0) != 0 {
		out[0] = gy[0]
		return out, nil
	}
	g := gy[0]
	if attrInt(n, "keepdims", 1) == 0 && axes != "" {
		g = c.e.Op("Unsqueeze", []string{g, axes})
	}
	xi := c.info[x]
	if xi == nil || !sameShape(xi, c.info[y]) {
		g = c.op("Expand", g, c.e.Op("Shape", []string{x}))
	}
	if n.OpType == "ReduceMean" {
		g = c.op("Mul", g, c.meanScale(n, x, y))
	}
	out[0] = g
	return out, nil
}

// meanScale returns size(y)/size(x) as a scalar of x's type, a constant when
// both sizes are known.
func (c *ctx) meanScale(n *onnx.Node, x, y string) string {
	xi, yi := c.info[x], c.info[y]
	if axes, ok := reduceAxes(n, c.info); ok && len(axes) > 0 && xi != nil && xi.rank >= 0 {
		count := int64(1)
		for _, a := range axes {
			ax := normAxis(a, xi.rank)
			if ax < 0 || ax >= xi.rank || xi.dims[ax].p != "" || xi.dims[ax].v < 1 {
				count = -1
				break
			}
			count *= xi.dims[ax].v
		}
		if count > 0 {
			return c.scalar(x, 1/float64(count))
		}
	}
	if xi != nil && yi != nil && xi.fullyKnown() && yi.fullyKnown() {
		nx, ny := int64(1), int64(1)
		for _, d := range xi.dims {
			nx *= d.v
		}
		for _, d := range yi.dims {
			ny *= d.v
		}
		if nx > 0 {
			return c.scalar(x, float64(ny)/float64(nx))
		}
	}
	dt := c.dt(x)
	sy := c.e.Op("Cast", []string{c.e.Op("Size", []string{y})}, onnx.AttrI("to", int64(dt)))
	sx := c.e.Op("Cast", []string{c.e.Op("Size", []string{x})}, onnx.AttrI("to", int64(dt)))
	return c.op("Div", sy, sx)
}
