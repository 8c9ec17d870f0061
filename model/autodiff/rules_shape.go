package autodiff

import (
	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// ruleReshape covers operators that only change the shape: the gradient is
// reshaped back to the input's shape.
func ruleReshape(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	out := make([]string, len(n.Inputs))
	if want[0] {
		out[0] = c.reshapeLike(gy[0], n.Inputs[0])
	}
	return out, nil
}

func ruleExpand(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	out := make([]string, len(n.Inputs))
	if want[0] {
		out[0] = c.reduceTo(gy[0], c.outInfo(n), n.Inputs[0])
	}
	return out, nil
}

// ruleTranspose applies the inverse permutation (a Transpose without perm
// reverses the axes and is its own inverse).
func ruleTranspose(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	a := attr(n, "perm")
	if a == nil {
		return []string{c.op("Transpose", gy[0])}, nil
	}
	inv := make([]int64, len(a.Ints))
	for i, p := range a.Ints {
		inv[p] = int64(i)
	}
	return []string{c.e.Op("Transpose", []string{gy[0]}, onnx.AttrInts("perm", inv...))}, nil
}

// ruleConcat splits the gradient along the concatenation axis by the
// inputs' sizes on that axis.
func ruleConcat(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	axis := attrInt(n, "axis", 0)
	sizes := make([]string, len(n.Inputs))
	static := make([]int64, len(n.Inputs))
	allStatic := true
	for i, x := range n.Inputs {
		if d, ok := dimAt(c.info[x], axis); ok && d.p == "" && d.v >= 0 {
			static[i] = d.v
			continue
		}
		allStatic = false
		sizes[i] = c.e.Op("Gather", []string{c.e.Op("Shape", []string{x}), c.e.Ints(axis)})
	}
	var split string
	if allStatic {
		split = c.e.Ints(static...)
	} else {
		for i := range sizes {
			if sizes[i] == "" {
				sizes[i] = c.e.Ints(static[i])
			}
		}
		split = c.e.Op("Concat", sizes, onnx.AttrI("axis", 0))
	}
	return c.e.OpN("Split", []string{gy[0], split}, len(n.Inputs), onnx.AttrI("axis", axis)), nil
}

// ruleSplit concatenates the outputs' gradients, with zeros for outputs
// that have none.
func ruleSplit(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	parts := make([]string, len(n.Outputs))
	for i, o := range n.Outputs {
		if gy[i] != "" {
			parts[i] = gy[i]
		} else {
			parts[i] = c.zerosLike(o)
		}
	}
	out := make([]string, len(n.Inputs))
	out[0] = c.e.Op("Concat", parts, onnx.AttrI("axis", attrInt(n, "axis", 0)))
	return out, nil
}

// ruleSlice writes the gradient back at the positions the slice read: the
// same Slice applied to a tensor of flat element indices says where each
// gradient element goes, and ScatterElements places it in a zero vector.
func ruleSlice(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	x := n.Inputs[0]
	e := c.e
	size := e.Op("Size", []string{x})
	idx := e.Op("Range", []string{e.IntScalar(0), size, e.IntScalar(1)})
	idx = e.Op("Reshape", []string{idx, e.Op("Shape", []string{x})})
	sliceIn := append([]string{idx}, n.Inputs[1:]...)
	sel := e.Op("Reshape", []string{e.Op("Slice", sliceIn), e.Ints(-1)})
	zeros := e.Op("ConstantOfShape", []string{e.Op("Reshape", []string{size, e.Ints(1)})},
		onnx.AttrT("value", zeroTensor(c.dt(x), 1)))
	flat := e.Op("ScatterElements", []string{zeros, sel, e.Op("Reshape", []string{gy[0], e.Ints(-1)})},
		onnx.AttrI("axis", 0))
	out := make([]string, len(n.Inputs))
	out[0] = c.reshapeLike(flat, x)
	return out, nil
}

// ruleCumSum: the gradient of a cumulative sum is the cumulative sum of the
// output gradient in the opposite direction (same exclusive flag).
func ruleCumSum(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	out := make([]string, len(n.Inputs))
	if want[0] {
		rev := 1 - attrInt(n, "reverse", 0)
		out[0] = c.e.Op("CumSum", []string{gy[0], n.Inputs[1]},
			onnx.AttrI("exclusive", attrInt(n, "exclusive", 0)), onnx.AttrI("reverse", rev))
	}
	return out, nil
}
