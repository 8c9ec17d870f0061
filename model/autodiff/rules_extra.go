package autodiff

import (
	"fmt"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// Rules for operators common in exported models (LayerNormalization,
// ReduceMax/Min, Sin/Cos of rotary embeddings, Trilu masks, LeakyRelu).
func init() {
	rules["LayerNormalization"] = ruleLayerNorm
	rules["ReduceMax"] = ruleReduceExtreme
	rules["ReduceMin"] = ruleReduceExtreme
	rules["Sin"] = unary(func(c *ctx, x, _, gy string) string { return c.op("Mul", gy, c.op("Cos", x)) })
	rules["Cos"] = unary(func(c *ctx, x, _, gy string) string { return c.op("Neg", c.op("Mul", gy, c.op("Sin", x))) })
	rules["Trilu"] = ruleTrilu
	rules["LeakyRelu"] = ruleLeakyRelu
}

// ruleLayerNorm recomputes the normalisation statistics from primitives:
// with xhat = (x - mean) * rstd over axes axis..rank-1,
//
//	dscale = sum over leading axes of dy * xhat;  dbias = sum of dy
//	dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * scale.
func ruleLayerNorm(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	if len(n.Outputs) > 1 && (len(gy) > 1 && gy[1] != "" || len(gy) > 2 && gy[2] != "") {
		return nil, fmt.Errorf("%w: gradient through LayerNormalization's Mean/InvStdDev outputs", ErrUnsupportedOp)
	}
	x, scale := n.Inputs[0], n.Inputs[1]
	r, err := c.rank(x)
	if err != nil {
		return nil, err
	}
	axis := normAxis(attrInt(n, "axis", -1), r)
	var axes []int64
	for i := axis; i < r; i++ {
		axes = append(axes, int64(i))
	}
	ax := c.e.Ints(axes...)
	mean := func(v string) string {
		return c.e.Op("ReduceMean", []string{v}, onnx.AttrInts("axes", axes...), onnx.AttrI("keepdims", 1))
	}
	if c.opset >= 18 {
		mean = func(v string) string { return c.e.Op("ReduceMean", []string{v, ax}, onnx.AttrI("keepdims", 1)) }
	}
	eps := float64(attrFloat(n, "epsilon", 1e-5))
	d := c.op("Sub", x, mean(x))
	rstd := c.op("Reciprocal", c.op("Sqrt", c.op("Add", mean(c.op("Mul", d, d)), c.scalar(x, eps))))
	xhat := c.op("Mul", d, rstd)
	g := gy[0]
	out := make([]string, len(n.Inputs))
	yi := c.outInfo(n)
	if want[0] {
		dxhat := c.op("Mul", g, scale)
		inner := c.op("Sub", c.op("Sub", dxhat, mean(dxhat)), c.op("Mul", xhat, mean(c.op("Mul", dxhat, xhat))))
		out[0] = c.op("Mul", rstd, inner)
	}
	if want[1] {
		out[1] = c.reduceTo(c.op("Mul", g, xhat), yi, scale)
	}
	if len(n.Inputs) > 2 && n.Inputs[2] != "" && want[2] {
		out[2] = c.reduceTo(g, yi, n.Inputs[2])
	}
	return out, nil
}

// ruleReduceExtreme routes the gradient of ReduceMax/ReduceMin to the
// elements equal to the result, split evenly among ties.
func ruleReduceExtreme(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
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
	g, yk := gy[0], y
	if attrInt(n, "keepdims", 1) == 0 && axes != "" {
		g = c.e.Op("Unsqueeze", []string{g, axes})
		yk = c.e.Op("Unsqueeze", []string{y, axes})
	}
	mask := c.castTo(c.op("Equal", x, yk), c.dt(x))
	var count string
	if axes != "" {
		count = c.e.Op("ReduceSum", []string{mask, axes}, onnx.AttrI("keepdims", 1))
	} else {
		count = c.e.Op("ReduceSum", []string{mask}, onnx.AttrI("keepdims", 1))
	}
	out[0] = c.op("Mul", mask, c.op("Div", g, count))
	return out, nil
}

// ruleTrilu applies the same triangle mask to the gradient.
func ruleTrilu(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	out := make([]string, len(n.Inputs))
	in := []string{gy[0]}
	if k := input(n, 1); k != "" {
		in = append(in, k)
	}
	out[0] = c.e.Op("Trilu", in, onnx.AttrI("upper", attrInt(n, "upper", 1)))
	return out, nil
}

func ruleLeakyRelu(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	x := n.Inputs[0]
	alpha := float64(attrFloat(n, "alpha", 0.01))
	slope := c.op("Where", c.op("Greater", x, c.scalar(x, 0)), c.scalar(x, 1), c.scalar(x, alpha))
	return []string{c.op("Mul", gy[0], slope)}, nil
}
