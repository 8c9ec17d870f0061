package autodiff

import (
	"fmt"
	"math"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// rule computes gradient contributions for a node's inputs. gy holds the
// gradient of each output ("" where an output has none); want says which
// inputs need one. It returns one name per input ("" for none).
type rule func(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error)

// rules maps operator types to gradient rules.
var rules = map[string]rule{
	"Add": ruleAdd, "Sum": ruleAdd, "Sub": ruleSub, "Mul": ruleMul, "Div": ruleDiv,
	"Mean": ruleMean, "Pow": rulePow, "Neg": unary(gradNeg), "Exp": unary(gradExp),
	"Log": unary(gradLog), "Sqrt": unary(gradSqrt), "Tanh": unary(gradTanh),
	"Sigmoid": unary(gradSigmoid), "Erf": unary(gradErf), "Relu": unary(gradRelu),
	"Abs": unary(gradAbs), "Softplus": unary(gradSoftplus), "Reciprocal": unary(gradReciprocal),
	"Identity": unary(gradIdentity), "Cast": ruleCast, "Clip": ruleClip,
	"Min": ruleMinMax, "Max": ruleMinMax, "Where": ruleWhere,
	"Softmax": ruleSoftmax, "LogSoftmax": ruleLogSoftmax,
	"ReduceSum": ruleReduce, "ReduceMean": ruleReduce,
	"MatMul": ruleMatMul, "Gemm": ruleGemm,
	"Gather": ruleGather, "GatherElements": ruleGatherElements,
	"Reshape": ruleReshape, "Squeeze": ruleReshape, "Unsqueeze": ruleReshape, "Flatten": ruleReshape,
	"Expand": ruleExpand, "Transpose": ruleTranspose, "Concat": ruleConcat,
	"Split": ruleSplit, "Slice": ruleSlice, "CumSum": ruleCumSum,
}

func (c *ctx) outInfo(n *onnx.Node) *vinfo { return c.info[n.Outputs[0]] }

func ruleAdd(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	out := make([]string, len(n.Inputs))
	for i, x := range n.Inputs {
		if want[i] {
			out[i] = c.reduceTo(gy[0], c.outInfo(n), x)
		}
	}
	return out, nil
}

func ruleMean(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	g := c.op("Mul", gy[0], c.scalar(n.Outputs[0], 1/float64(len(n.Inputs))))
	return ruleAdd(c, n, []string{g}, want)
}

func ruleSub(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	out := make([]string, 2)
	if want[0] {
		out[0] = c.reduceTo(gy[0], c.outInfo(n), n.Inputs[0])
	}
	if want[1] {
		out[1] = c.reduceTo(c.op("Neg", gy[0]), c.outInfo(n), n.Inputs[1])
	}
	return out, nil
}

func ruleMul(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	a, b := n.Inputs[0], n.Inputs[1]
	out := make([]string, 2)
	if want[0] {
		out[0] = c.reduceTo(c.op("Mul", gy[0], b), c.outInfo(n), a)
	}
	if want[1] {
		out[1] = c.reduceTo(c.op("Mul", gy[0], a), c.outInfo(n), b)
	}
	return out, nil
}

func ruleDiv(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	a, b, y := n.Inputs[0], n.Inputs[1], n.Outputs[0]
	out := make([]string, 2)
	if want[0] {
		out[0] = c.reduceTo(c.op("Div", gy[0], b), c.outInfo(n), a)
	}
	if want[1] {
		g := c.op("Neg", c.op("Div", c.op("Mul", gy[0], y), b))
		out[1] = c.reduceTo(g, c.outInfo(n), b)
	}
	return out, nil
}

// rulePow: d(a^b)/da = b a^(b-1); d(a^b)/db = a^b log a.
func rulePow(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	a, b, y := n.Inputs[0], n.Inputs[1], n.Outputs[0]
	out := make([]string, 2)
	if want[0] {
		var bm1 string
		if isFloat(c.dt(b)) {
			bm1 = c.op("Sub", b, c.e.Scalar(c.dt(b), 1))
		} else {
			bm1 = c.op("Sub", b, c.e.Const(intScalarOf(c.dt(b), 1)))
		}
		bAsA := c.castTo(b, c.dt(a))
		g := c.op("Mul", c.op("Mul", gy[0], bAsA), c.op("Pow", a, bm1))
		out[0] = c.reduceTo(g, c.outInfo(n), a)
	}
	if want[1] {
		g := c.op("Mul", c.op("Mul", gy[0], y), c.op("Log", a))
		out[1] = c.reduceTo(c.castTo(g, c.dt(b)), c.outInfo(n), b)
	}
	return out, nil
}

func intScalarOf(dt onnx.DataType, v int64) *onnx.Tensor {
	if dt == onnx.Int32 {
		return &onnx.Tensor{DataType: onnx.Int32, Int32: []int32{int32(v)}}
	}
	return &onnx.Tensor{DataType: onnx.Int64, Int64: []int64{v}}
}

// castTo casts v to dt unless its type already is dt.
func (c *ctx) castTo(v string, dt onnx.DataType) string {
	if c.dt(v) == dt {
		return v
	}
	return c.e.Op("Cast", []string{v}, onnx.AttrI("to", int64(dt)))
}

// unary adapts a one-input gradient function to a rule.
func unary(f func(c *ctx, x, y, gy string) string) rule {
	return func(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
		out := make([]string, len(n.Inputs))
		if want[0] {
			out[0] = f(c, n.Inputs[0], n.Outputs[0], gy[0])
		}
		return out, nil
	}
}

func gradNeg(c *ctx, _, _, gy string) string      { return c.op("Neg", gy) }
func gradExp(c *ctx, _, y, gy string) string      { return c.op("Mul", gy, y) }
func gradLog(c *ctx, x, _, gy string) string      { return c.op("Div", gy, x) }
func gradIdentity(_ *ctx, _, _, gy string) string { return gy }

func gradSqrt(c *ctx, _, y, gy string) string {
	return c.op("Div", c.op("Mul", gy, c.scalar(y, 0.5)), y)
}

func gradTanh(c *ctx, _, y, gy string) string {
	return c.op("Mul", gy, c.op("Sub", c.scalar(y, 1), c.op("Mul", y, y)))
}

func gradSigmoid(c *ctx, _, y, gy string) string {
	return c.op("Mul", c.op("Mul", gy, y), c.op("Sub", c.scalar(y, 1), y))
}

func gradErf(c *ctx, x, _, gy string) string {
	e := c.op("Exp", c.op("Neg", c.op("Mul", x, x)))
	return c.op("Mul", c.op("Mul", gy, c.scalar(x, 2/math.Sqrt(math.Pi))), e)
}

func gradRelu(c *ctx, x, _, gy string) string {
	return c.op("Where", c.op("Greater", x, c.scalar(x, 0)), gy, c.scalar(x, 0))
}

func gradAbs(c *ctx, x, _, gy string) string { return c.op("Mul", gy, c.op("Sign", x)) }

func gradSoftplus(c *ctx, x, _, gy string) string { return c.op("Mul", gy, c.op("Sigmoid", x)) }

func gradReciprocal(c *ctx, _, y, gy string) string {
	return c.op("Neg", c.op("Mul", gy, c.op("Mul", y, y)))
}

func ruleCast(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	x := n.Inputs[0]
	if !isFloat(c.dt(x)) {
		return make([]string, 1), nil
	}
	return []string{c.castTo(gy[0], c.dt(x))}, nil
}

// ruleClip passes the gradient where min <= x <= max; the bounds get the
// gradient of the elements they clipped.
func ruleClip(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	x := n.Inputs[0]
	lo, hi := input(n, 1), input(n, 2)
	if attr(n, "min") != nil || attr(n, "max") != nil {
		return nil, fmt.Errorf("%w: Clip with min/max attributes (opset < 11)", ErrUnsupportedOp)
	}
	zero := c.scalar(x, 0)
	out := make([]string, len(n.Inputs))
	var mask string
	if lo != "" {
		mask = c.op("GreaterOrEqual", x, lo)
	}
	if hi != "" {
		m := c.op("LessOrEqual", x, hi)
		if mask == "" {
			mask = m
		} else {
			mask = c.op("And", mask, m)
		}
	}
	if want[0] {
		if mask == "" {
			out[0] = gy[0]
		} else {
			out[0] = c.op("Where", mask, gy[0], zero)
		}
	}
	if lo != "" && want[1] {
		out[1] = c.reduceTo(c.op("Where", c.op("Less", x, lo), gy[0], zero), c.outInfo(n), lo)
	}
	if hi != "" && want[2] {
		out[2] = c.reduceTo(c.op("Where", c.op("Greater", x, hi), gy[0], zero), c.outInfo(n), hi)
	}
	return out, nil
}

// ruleMinMax routes the gradient to the inputs equal to the output, split
// evenly among ties (as PyTorch does for two-input minimum and maximum).
func ruleMinMax(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	y := n.Outputs[0]
	dt := c.dt(y)
	masks := make([]string, len(n.Inputs))
	for i, x := range n.Inputs {
		masks[i] = c.castTo(c.op("Equal", x, y), dt)
	}
	g := gy[0]
	if len(masks) > 1 {
		g = c.op("Div", gy[0], c.e.Op("Sum", masks))
	}
	out := make([]string, len(n.Inputs))
	for i, x := range n.Inputs {
		if want[i] {
			out[i] = c.reduceTo(c.op("Mul", g, masks[i]), c.outInfo(n), x)
		}
	}
	return out, nil
}

func ruleWhere(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	cond, a, b := n.Inputs[0], n.Inputs[1], n.Inputs[2]
	zero := c.scalar(n.Outputs[0], 0)
	out := make([]string, 3)
	if want[1] {
		out[1] = c.reduceTo(c.op("Where", cond, gy[0], zero), c.outInfo(n), a)
	}
	if want[2] {
		out[2] = c.reduceTo(c.op("Where", cond, zero, gy[0]), c.outInfo(n), b)
	}
	return out, nil
}

// ruleSoftmax: dx = y * (dy - sum(dy*y, axis)).
func ruleSoftmax(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	y := n.Outputs[0]
	axes := c.e.Ints(attrInt(n, "axis", -1))
	s := c.e.Op("ReduceSum", []string{c.op("Mul", gy[0], y), axes}, onnx.AttrI("keepdims", 1))
	return []string{c.op("Mul", y, c.op("Sub", gy[0], s))}, nil
}

// ruleLogSoftmax: dx = dy - exp(y) * sum(dy, axis).
func ruleLogSoftmax(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	y := n.Outputs[0]
	axes := c.e.Ints(attrInt(n, "axis", -1))
	s := c.e.Op("ReduceSum", []string{gy[0], axes}, onnx.AttrI("keepdims", 1))
	return []string{c.op("Sub", gy[0], c.op("Mul", c.op("Exp", y), s))}, nil
}
