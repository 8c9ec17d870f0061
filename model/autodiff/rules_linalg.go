package autodiff

import (
	"fmt"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// swapLast transposes the last two axes of a value of the given rank.
func (c *ctx) swapLast(v string, rank int) string {
	perm := make([]int64, rank)
	for i := range perm {
		perm[i] = int64(i)
	}
	perm[rank-1], perm[rank-2] = perm[rank-2], perm[rank-1]
	return c.e.Op("Transpose", []string{v}, onnx.AttrInts("perm", perm...))
}

// ruleMatMul handles batched MatMul with numpy broadcasting of the batch
// dimensions and rank-1 operands (which are promoted to matrices first).
// A rank-2 right operand (a weight) gets its gradient from one Gemm over the
// flattened batch instead of a batched product and a sum.
func ruleMatMul(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	a, b, y := n.Inputs[0], n.Inputs[1], n.Outputs[0]
	rb, err := c.rank(b)
	if err != nil {
		return nil, err
	}
	ra, err := c.rank(a)
	if err != nil {
		if rb != 2 {
			return nil, err
		}
		// A product with a matrix (a weight) needs no batch reduction, so an
		// input of unknown rank (at least 2) is fine.
		return c.matMulByMatrix(a, b, gy[0], want), nil
	}
	if ra < 1 || rb < 1 {
		return nil, fmt.Errorf("%w: MatMul of a scalar", ErrUnsupportedOp)
	}
	ai, bi, yi := c.info[a], c.info[b], c.info[y]
	g := gy[0]
	// Promote rank-1 operands: a [k] -> [1,k]; b [k] -> [k,1].
	if ra == 1 {
		a = c.e.Op("Unsqueeze", []string{a, c.e.Ints(0)})
		g = c.e.Op("Unsqueeze", []string{g, c.e.Ints(-2)})
		ai = dimsInfo(ai.dt, append([]dim{{v: 1}}, ai.dims...))
		ra = 2
	}
	if rb == 1 {
		b = c.e.Op("Unsqueeze", []string{b, c.e.Ints(-1)})
		g = c.e.Op("Unsqueeze", []string{g, c.e.Ints(-1)})
		bi = dimsInfo(bi.dt, append(append([]dim(nil), bi.dims...), dim{v: 1}))
		rb = 2
	}
	ry := max(ra, rb)
	out := make([]string, 2)
	if want[0] {
		var ga string
		if ra == 2 && rb == 2 {
			ga = c.e.Op("Gemm", []string{g, b}, onnx.AttrI("transB", 1))
		} else {
			ga = c.op("MatMul", g, c.swapLast(b, rb))
		}
		gi := matGradInfo(yi, ry, ai)
		out[0] = c.reduceTo(ga, gi, a)
		if a != n.Inputs[0] {
			out[0] = c.reshapeLike(out[0], n.Inputs[0])
		}
	}
	if want[1] {
		var gb string
		switch rb {
		case 2:
			// Flatten the batch: gb = A2^T @ G2 with A2 [N,k], G2 [N,n].
			a2 := c.flattenTo2(a, ai)
			g2 := c.flattenTo2(g, lastDimInfo(bi))
			gb = c.e.Op("Gemm", []string{a2, g2}, onnx.AttrI("transA", 1))
		default:
			gb = c.op("MatMul", c.swapLast(a, ra), g)
		}
		gi := matGradInfo(yi, ry, bi)
		if rb == 2 {
			gi = bi
		}
		out[1] = c.reduceTo(gb, gi, b)
		if b != n.Inputs[1] {
			out[1] = c.reshapeLike(out[1], n.Inputs[1])
		}
	}
	return out, nil
}

// matMulByMatrix is the gradient of A·B for B of rank 2 and A of rank >= 2.
func (c *ctx) matMulByMatrix(a, b, g string, want []bool) []string {
	out := make([]string, 2)
	if want[0] {
		out[0] = c.op("MatMul", g, c.swapLast(b, 2))
	}
	if want[1] {
		out[1] = c.e.Op("Gemm", []string{c.flattenTo2(a, nil), c.flattenTo2(g, nil)}, onnx.AttrI("transA", 1))
	}
	return out
}

// matGradInfo describes the raw gradient of a MatMul operand: y's batch
// dimensions followed by the operand's last two dimensions.
func matGradInfo(yi *vinfo, ry int, xi *vinfo) *vinfo {
	if yi == nil || xi == nil || xi.rank < 2 {
		return nil
	}
	dims := make([]dim, ry)
	for i := range dims {
		dims[i] = unknownDim
	}
	if yi.rank == ry {
		copy(dims, yi.dims[:ry-2])
	}
	dims[ry-2], dims[ry-1] = xi.dims[xi.rank-2], xi.dims[xi.rank-1]
	return dimsInfo(xi.dt, dims)
}

// lastDimInfo describes a value of unknown leading shape whose last
// dimension is x's last (the output gradient of a product with matrix x).
func lastDimInfo(x *vinfo) *vinfo {
	if x == nil || x.rank < 1 {
		return nil
	}
	return dimsInfo(x.dt, []dim{unknownDim, unknownDim, x.dims[x.rank-1]})
}

// flattenTo2 reshapes v to [-1, last dim].
func (c *ctx) flattenTo2(v string, vi *vinfo) string {
	if vi != nil && vi.rank == 2 {
		return v
	}
	if vi != nil && vi.rank > 0 {
		if d := vi.dims[vi.rank-1]; d.v > 0 && d.p == "" {
			return c.e.Op("Reshape", []string{v, c.e.Ints(-1, d.v)})
		}
	}
	last := c.e.Op("Slice", []string{c.e.Op("Shape", []string{v}), c.e.Ints(-1), c.e.Ints(maxInt64)})
	shape := c.e.Op("Concat", []string{c.e.Ints(-1), last}, onnx.AttrI("axis", 0))
	return c.e.Op("Reshape", []string{v, shape})
}

// ruleGemm: Y = alpha op(A) op(B) + beta C.
func ruleGemm(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	a, b := n.Inputs[0], n.Inputs[1]
	ta, tb := attrInt(n, "transA", 0) != 0, attrInt(n, "transB", 0) != 0
	alpha, beta := attrFloat(n, "alpha", 1), attrFloat(n, "beta", 1)
	g := gy[0]
	gemm := func(x, y string, tx, ty bool) string {
		attrs := []onnx.Attribute{onnx.AttrF("alpha", alpha)}
		if tx {
			attrs = append(attrs, onnx.AttrI("transA", 1))
		}
		if ty {
			attrs = append(attrs, onnx.AttrI("transB", 1))
		}
		return c.e.Op("Gemm", []string{x, y}, attrs...)
	}
	out := make([]string, len(n.Inputs))
	if want[0] {
		switch {
		case !ta && !tb:
			out[0] = gemm(g, b, false, true)
		case !ta && tb:
			out[0] = gemm(g, b, false, false)
		case ta && !tb:
			out[0] = gemm(b, g, false, true)
		default:
			out[0] = gemm(b, g, true, true)
		}
	}
	if want[1] {
		switch {
		case !tb && !ta:
			out[1] = gemm(a, g, true, false)
		case !tb && ta:
			out[1] = gemm(a, g, false, false)
		case tb && !ta:
			out[1] = gemm(g, a, true, false)
		default:
			out[1] = gemm(g, a, true, true)
		}
	}
	if len(n.Inputs) > 2 && n.Inputs[2] != "" && want[2] {
		gc := g
		if beta != 1 {
			gc = c.op("Mul", g, c.scalar(n.Outputs[0], float64(beta)))
		}
		out[2] = c.reduceTo(gc, c.outInfo(n), n.Inputs[2])
	}
	return out, nil
}

// ruleGather scatters the gradient back into a zero tensor shaped like the
// data, adding rows that were gathered more than once (ScatterND with
// reduction "add", opset 16). Only the data input (axis 0) is differentiable.
func ruleGather(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	data, idx := n.Inputs[0], n.Inputs[1]
	if !want[0] {
		return make([]string, 2), nil
	}
	if c.opset < 16 {
		return nil, fmt.Errorf("%w: Gather gradient needs ScatterND reduction (opset 16), have %d", ErrOpset, c.opset)
	}
	r, err := c.rank(data)
	if err != nil {
		return nil, err
	}
	if normAxis(attrInt(n, "axis", 0), r) != 0 {
		return nil, fmt.Errorf("%w: Gather gradient for axis %d (only axis 0)", ErrUnsupportedOp, attrInt(n, "axis", 0))
	}
	idx = c.castTo(idx, onnx.Int64)
	ind := c.e.Op("Unsqueeze", []string{idx, c.e.Ints(-1)})
	g := c.e.Op("ScatterND", []string{c.zerosLike(data), ind, gy[0]}, onnx.AttrS("reduction", "add"))
	return []string{g, ""}, nil
}

// ruleGatherElements scatters with ScatterElements reduction "add".
func ruleGatherElements(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	data, idx := n.Inputs[0], n.Inputs[1]
	if !want[0] {
		return make([]string, 2), nil
	}
	if c.opset < 16 {
		return nil, fmt.Errorf("%w: GatherElements gradient needs ScatterElements reduction (opset 16), have %d", ErrOpset, c.opset)
	}
	g := c.e.Op("ScatterElements", []string{c.zerosLike(data), idx, gy[0]},
		onnx.AttrI("axis", attrInt(n, "axis", 0)), onnx.AttrS("reduction", "add"))
	return []string{g, ""}, nil
}
