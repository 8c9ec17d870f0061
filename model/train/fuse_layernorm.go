package train

import (
	"slices"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// FuseLayerNorm returns a copy of g in which every float32 layer norm over
// the last axis written from primitives,
//
//	d = x - ReduceMean(x); y = d / Sqrt(ReduceMean(d·d) + eps) · scale + bias
//
// (the form model/policy writes; both ReduceMeans over axes [-1] with
// keepdims 1) is replaced by one LayerNormalization node (opset 17), and the
// number of replacements. Every intermediate value must feed only the next
// step of the pattern. The forward pass then runs one kernel instead of
// seven element-wise passes, and autodiff's LayerNormalization rule
// replaces the longer gradient of the primitives. g itself is not modified.
func FuseLayerNorm(g *onnx.Graph) (*onnx.Graph, int) {
	f := newFuser(g)
	replace := map[*onnx.Node]*onnx.Node{}
	drop := map[*onnx.Node]bool{}
	for _, n := range g.Nodes {
		if n.OpType != "Div" || n.Domain != "" || len(n.Inputs) != 2 || len(n.Outputs) != 1 {
			continue
		}
		ln, chain, ok := f.matchLayerNorm(n)
		if !ok || slices.ContainsFunc(chain, func(c *onnx.Node) bool { return drop[c] }) {
			continue
		}
		for _, c := range chain {
			drop[c] = true
		}
		replace[chain[len(chain)-1]] = ln
	}
	return rewrite(g, replace, drop), len(replace)
}

// lastAxisMean reports whether n is ReduceMean over axes [-1] with
// keepdims 1 (opset 17 form, axes as an attribute).
func lastAxisMean(n *onnx.Node) bool {
	if n == nil || n.OpType != "ReduceMean" || n.Domain != "" || len(n.Inputs) != 1 || len(n.Outputs) != 1 {
		return false
	}
	axesOK, keep := false, false
	for _, a := range n.Attrs {
		switch a.Name {
		case "axes":
			axesOK = len(a.Ints) == 1 && a.Ints[0] == -1
		case "keepdims":
			keep = a.I == 1
		}
	}
	return axesOK && keep
}

// matchLayerNorm matches the layer-norm pattern around the normalising
// Div node. It returns the LayerNormalization node and the matched nodes
// in graph order, the one producing the result last.
func (f *fuser) matchLayerNorm(div *onnx.Node) (*onnx.Node, []*onnx.Node, bool) {
	d, std := div.Inputs[0], div.Inputs[1]
	sub := f.binary(d, "Sub")
	sqrt := f.producer[std]
	if sub == nil || sqrt == nil || sqrt.OpType != "Sqrt" || sqrt.Domain != "" || len(sqrt.Inputs) != 1 || !f.private(std) {
		return nil, nil, false
	}
	x, meanV := sub.Inputs[0], sub.Inputs[1]
	mean := f.producer[meanV]
	if !lastAxisMean(mean) || mean.Inputs[0] != x || !f.private(meanV) {
		return nil, nil, false
	}
	// d feeds d·d (twice) and the Div, nothing else.
	if u := f.users[d]; len(u) != 3 || f.outputs[d] {
		return nil, nil, false
	}
	add := f.binary(sqrt.Inputs[0], "Add")
	if add == nil || !f.private(sqrt.Inputs[0]) {
		return nil, nil, false
	}
	var variance string
	var eps float64
	for i := range 2 {
		if v, ok := f.scalarF32(add.Inputs[1-i]); ok {
			variance, eps = add.Inputs[i], v
			break
		}
	}
	vn := f.producer[variance]
	if variance == "" || !lastAxisMean(vn) || !f.private(variance) {
		return nil, nil, false
	}
	sq := f.binary(vn.Inputs[0], "Mul")
	if sq == nil || sq.Inputs[0] != d || sq.Inputs[1] != d || !f.private(vn.Inputs[0]) {
		return nil, nil, false
	}
	if !f.private(div.Outputs[0]) {
		return nil, nil, false
	}
	mul := f.users[div.Outputs[0]][0]
	if mul.OpType != "Mul" || mul.Domain != "" || len(mul.Inputs) != 2 || len(mul.Outputs) != 1 || !f.private(mul.Outputs[0]) {
		return nil, nil, false
	}
	scale, _ := otherOf(mul, div.Outputs[0])
	bias := f.users[mul.Outputs[0]][0]
	if bias.OpType != "Add" || bias.Domain != "" || len(bias.Inputs) != 2 || len(bias.Outputs) != 1 {
		return nil, nil, false
	}
	b, _ := otherOf(bias, mul.Outputs[0])
	ln := &onnx.Node{Name: bias.Name + "/LayerNormalization", OpType: "LayerNormalization",
		Inputs: []string{x, scale, b}, Outputs: []string{bias.Outputs[0]},
		Attrs: []onnx.Attribute{onnx.AttrI("axis", -1), onnx.AttrF("epsilon", float32(eps))}}
	return ln, []*onnx.Node{mean, sub, sq, vn, add, sqrt, div, mul, bias}, true
}
