package autodiff

import (
	"slices"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// inferGraph computes what can be known statically about every value of g:
// element types always where the operators are known, ranks and dimensions
// where the shapes allow, and the element values of small integer tensors
// built from shapes and constants (so that Reshape targets resolve).
func inferGraph(g *onnx.Graph) map[string]*vinfo {
	info := map[string]*vinfo{}
	for _, vi := range g.Inputs {
		info[vi.Name] = dimsInfo(vi.DataType, fromShape(vi.Shape))
	}
	for _, t := range g.Initializers {
		info[t.Name] = tensorInfo(t)
	}
	for _, vi := range g.ValueInfos {
		if _, ok := info[vi.Name]; !ok && len(vi.Shape) > 0 {
			info[vi.Name] = dimsInfo(vi.DataType, fromShape(vi.Shape))
		}
	}
	declared := map[string]onnx.DataType{}
	for _, vi := range append(slices.Clone(g.ValueInfos), g.Outputs...) {
		declared[vi.Name] = vi.DataType
	}
	for _, n := range g.Nodes {
		outs := inferNode(n, info)
		for i, o := range n.Outputs {
			if o == "" {
				continue
			}
			vi := (*vinfo)(nil)
			if i < len(outs) {
				vi = outs[i]
			}
			if vi == nil {
				// An operator inference does not know: assume it keeps its
				// first input's type unless the graph declares the output.
				vi = unknownInfo(onnx.Undefined)
				if in, ok := info[input(n, 0)]; ok {
					vi.dt = in.dt
				}
			}
			if dt, ok := declared[o]; ok && vi.dt == onnx.Undefined {
				vi.dt = dt
			}
			info[o] = vi
		}
	}
	return info
}

func tensorInfo(t *onnx.Tensor) *vinfo {
	vi := dimsInfo(t.DataType, intDims(t.Dims))
	if t.DataType == onnx.Int64 && len(t.Dims) <= 1 && len(t.Int64) <= 16 {
		vi.vals = intDims(t.Int64)
		for i := range vi.vals {
			if t.Int64[i] < 0 {
				vi.vals[i] = dim{v: t.Int64[i]}
			}
		}
	}
	return vi
}

var boolOps = map[string]bool{
	"Equal": true, "Less": true, "Greater": true, "LessOrEqual": true,
	"GreaterOrEqual": true, "And": true, "Or": true, "Xor": true,
}

var unaryOps = map[string]bool{
	"Neg": true, "Exp": true, "Log": true, "Sqrt": true, "Tanh": true, "Sigmoid": true,
	"Erf": true, "Relu": true, "Abs": true, "Identity": true, "Softmax": true,
	"LogSoftmax": true, "Sign": true, "Reciprocal": true, "Softplus": true, "Not": true,
	"Floor": true, "Ceil": true, "Round": true, "Clip": true, "Trilu": true,
	"ScatterND": true, "ScatterElements": true, "IsNaN": true, "IsInf": true,
	"Sin": true, "Cos": true, "CumSum": true, "LeakyRelu": true, "Elu": true, "Selu": true, "HardSigmoid": true,
	"FastGelu": true,
}

// inferNode returns infos for n's outputs (nil entries when unknown).
func inferNode(n *onnx.Node, info map[string]*vinfo) []*vinfo {
	in := func(i int) *vinfo {
		if v, ok := info[input(n, i)]; ok && input(n, i) != "" {
			return v
		}
		return unknownInfo(onnx.Undefined)
	}
	x := in(0)
	switch {
	case unaryOps[n.OpType]:
		c := *x
		if n.OpType == "Not" || n.OpType == "IsNaN" || n.OpType == "IsInf" {
			c.dt = onnx.Bool
		}
		c.vals = nil
		if n.OpType == "Identity" {
			c.vals = x.vals
		}
		return []*vinfo{&c}
	case boolOps[n.OpType]:
		return []*vinfo{broadcastDims(onnx.Bool, x, in(1))}
	}
	switch n.OpType {
	case "Add", "Sub", "Mul", "Div", "Pow", "Min", "Max", "Sum", "Mean":
		ins := make([]*vinfo, len(n.Inputs))
		for i := range ins {
			ins[i] = in(i)
		}
		out := broadcastDims(x.dt, ins...)
		if x.dt == onnx.Int64 && len(ins) == 2 {
			out.vals = intArith(n.OpType, x, in(1))
		}
		return []*vinfo{out}
	case "Where":
		return []*vinfo{broadcastDims(in(1).dt, x, in(1), in(2))}
	case "Expand":
		return []*vinfo{inferExpand(x, in(1))}
	case "Constant":
		if a := attr(n, "value"); a != nil && a.T != nil {
			return []*vinfo{tensorInfo(a.T)}
		}
		return nil
	case "ConstantOfShape":
		dt := onnx.Float
		if a := attr(n, "value"); a != nil && a.T != nil {
			dt = a.T.DataType
		}
		if x.vals != nil {
			return []*vinfo{dimsInfo(dt, nonNeg(x.vals))}
		}
		if x.rank == 1 && x.dims[0].v >= 0 {
			return []*vinfo{rankInfo(dt, int(x.dims[0].v))}
		}
		return []*vinfo{unknownInfo(dt)}
	case "Shape":
		return []*vinfo{inferShapeOp(n, x)}
	case "Size":
		return []*vinfo{dimsInfo(onnx.Int64, nil)}
	case "Cast":
		c := *x
		c.dt = onnx.DataType(attrInt(n, "to", 0))
		if c.dt != onnx.Int64 {
			c.vals = nil
		}
		return []*vinfo{&c}
	case "CastLike":
		c := *x
		c.dt = in(1).dt
		c.vals = nil
		return []*vinfo{&c}
	case "MatMul":
		return []*vinfo{inferMatMul(x, in(1))}
	case "Gemm":
		return []*vinfo{inferGemm(n, x, in(1))}
	case "Gather":
		return []*vinfo{inferGather(n, x, in(1))}
	case "GatherElements":
		c := *in(1)
		c.dt = x.dt
		c.vals = nil
		return []*vinfo{&c}
	case "Reshape":
		return []*vinfo{inferReshape(x, in(1))}
	case "Transpose":
		return []*vinfo{inferTranspose(n, x)}
	case "Unsqueeze":
		return []*vinfo{inferUnsqueeze(x, in(1))}
	case "Squeeze":
		return []*vinfo{inferSqueeze(x, in(1))}
	case "Concat":
		ins := make([]*vinfo, len(n.Inputs))
		for i := range ins {
			ins[i] = in(i)
		}
		return []*vinfo{inferConcat(attrInt(n, "axis", 0), ins)}
	case "Slice":
		return []*vinfo{inferSlice(x, in(1), in(2), in(3), in(4))}
	case "Split":
		outs := make([]*vinfo, len(n.Outputs))
		for i := range outs {
			if x.rank >= 0 {
				outs[i] = rankInfo(x.dt, x.rank)
				ax := normAxis(attrInt(n, "axis", 0), x.rank)
				copy(outs[i].dims, x.dims)
				if ax >= 0 && ax < x.rank {
					outs[i].dims[ax] = unknownDim
				}
			} else {
				outs[i] = unknownInfo(x.dt)
			}
		}
		return outs
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare":
		axes, ok := reduceAxes(n, info)
		if ok && len(axes) == 0 && attrInt(n, "noop_with_empty_axes", 0) != 0 {
			c := *x
			c.vals = nil
			return []*vinfo{&c}
		}
		return []*vinfo{inferReduce(x, axes, ok, attrInt(n, "keepdims", 1) != 0)}
	case "LayerNormalization":
		c := *x
		c.vals = nil
		return []*vinfo{&c}
	case "Range":
		return []*vinfo{rankInfo(x.dt, 1)}
	case "NonZero":
		return []*vinfo{rankInfo(onnx.Int64, 2)}
	case "ArgMax", "ArgMin":
		c := inferReduce(x, []int64{attrInt(n, "axis", 0)}, true, attrInt(n, "keepdims", 1) != 0)
		c.dt = onnx.Int64
		return []*vinfo{c}
	}
	return nil
}

func nonNeg(vals []dim) []dim {
	out := make([]dim, len(vals))
	for i, d := range vals {
		if d.p == "" && d.v < 0 {
			out[i] = unknownDim
		} else {
			out[i] = d
		}
	}
	return out
}

// intArith folds + - * on known integer shape values.
func intArith(op string, a, b *vinfo) []dim {
	if a.vals == nil || b.vals == nil || len(a.vals) != len(b.vals) && len(b.vals) != 1 && len(a.vals) != 1 {
		return nil
	}
	n := max(len(a.vals), len(b.vals))
	out := make([]dim, n)
	for i := range out {
		x, y := a.vals[min(i, len(a.vals)-1)], b.vals[min(i, len(b.vals)-1)]
		if x.p != "" || y.p != "" || x.v < 0 || y.v < 0 {
			out[i] = unknownDim
			continue
		}
		switch op {
		case "Add":
			out[i] = dim{v: x.v + y.v}
		case "Mul":
			out[i] = dim{v: x.v * y.v}
		case "Sub":
			out[i] = dim{v: x.v - y.v}
		default:
			out[i] = unknownDim
		}
	}
	return out
}

// reduceAxes returns a Reduce node's axes (attribute before opset 18, second
// input after) and whether they are statically known; nil axes with ok means
// all axes.
func reduceAxes(n *onnx.Node, info map[string]*vinfo) ([]int64, bool) {
	if a := attr(n, "axes"); a != nil {
		return a.Ints, true
	}
	if name := input(n, 1); name != "" {
		if vi, ok := info[name]; ok {
			if v, ok := constInts(vi.vals); ok {
				return v, true
			}
		}
		return nil, false
	}
	return nil, true
}

func inferReduce(x *vinfo, axes []int64, ok, keep bool) *vinfo {
	if ok && len(axes) == 0 && !keep {
		return dimsInfo(x.dt, nil)
	}
	if x.rank < 0 || !ok {
		return unknownInfo(x.dt)
	}
	red := make([]bool, x.rank)
	if len(axes) == 0 {
		for i := range red {
			red[i] = true
		}
	}
	for _, a := range axes {
		if ax := normAxis(a, x.rank); ax >= 0 && ax < x.rank {
			red[ax] = true
		}
	}
	var dims []dim
	for i, d := range x.dims {
		switch {
		case !red[i]:
			dims = append(dims, d)
		case keep:
			dims = append(dims, dim{v: 1})
		}
	}
	return dimsInfo(x.dt, dims)
}

func inferShapeOp(n *onnx.Node, x *vinfo) *vinfo {
	if x.rank < 0 {
		return rankInfo(onnx.Int64, 1)
	}
	start := normAxis(attrInt(n, "start", 0), x.rank)
	end := x.rank
	if a := attr(n, "end"); a != nil {
		end = normAxis(a.I, x.rank)
	}
	start, end = max(0, min(start, x.rank)), max(0, min(end, x.rank))
	vals := append([]dim(nil), x.dims[start:max(start, end)]...)
	vi := dimsInfo(onnx.Int64, []dim{{v: int64(len(vals))}})
	vi.vals = vals
	return vi
}

func inferExpand(x, shape *vinfo) *vinfo {
	if shape.vals == nil {
		if shape.rank == 1 && shape.dims[0].v >= 0 && x.rank >= 0 {
			return rankInfo(x.dt, max(x.rank, int(shape.dims[0].v)))
		}
		return unknownInfo(x.dt)
	}
	return broadcastDims(x.dt, x, dimsInfo(x.dt, nonNeg(shape.vals)))
}

func inferMatMul(a, b *vinfo) *vinfo {
	if a.rank < 1 || b.rank < 1 {
		return unknownInfo(a.dt)
	}
	ad, bd := a.dims, b.dims
	if a.rank == 1 {
		ad = append([]dim{{v: 1}}, ad...)
	}
	if b.rank == 1 {
		bd = append(append([]dim(nil), bd...), dim{v: 1})
	}
	batch := broadcastDims(a.dt, dimsInfo(a.dt, ad[:len(ad)-2]), dimsInfo(a.dt, bd[:len(bd)-2]))
	dims := append(batch.dims, ad[len(ad)-2], bd[len(bd)-1])
	if a.rank == 1 {
		dims = append(dims[:len(dims)-2], dims[len(dims)-1])
	}
	if b.rank == 1 {
		dims = dims[:len(dims)-1]
	}
	return dimsInfo(a.dt, dims)
}

func inferGemm(n *onnx.Node, a, b *vinfo) *vinfo {
	if a.rank != 2 || b.rank != 2 {
		return rankInfo(a.dt, 2)
	}
	m, k := a.dims[0], b.dims[1]
	if attrInt(n, "transA", 0) != 0 {
		m = a.dims[1]
	}
	if attrInt(n, "transB", 0) != 0 {
		k = b.dims[0]
	}
	return dimsInfo(a.dt, []dim{m, k})
}

func inferGather(n *onnx.Node, data, idx *vinfo) *vinfo {
	if data.rank < 0 || idx.rank < 0 {
		return unknownInfo(data.dt)
	}
	ax := normAxis(attrInt(n, "axis", 0), data.rank)
	if ax < 0 || ax >= data.rank {
		return unknownInfo(data.dt)
	}
	dims := append(append(append([]dim(nil), data.dims[:ax]...), idx.dims...), data.dims[ax+1:]...)
	out := dimsInfo(data.dt, dims)
	if iv, ok := constInts(idx.vals); ok && data.vals != nil && data.rank == 1 {
		vals := make([]dim, len(iv))
		for i, j := range iv {
			j = int64(normAxis(j, len(data.vals)))
			if j < 0 || int(j) >= len(data.vals) {
				return out
			}
			vals[i] = data.vals[j]
		}
		out.vals = vals
	}
	return out
}

func inferReshape(x, shape *vinfo) *vinfo {
	if shape.vals == nil {
		if shape.rank == 1 && shape.dims[0].v >= 0 {
			return rankInfo(x.dt, int(shape.dims[0].v))
		}
		return unknownInfo(x.dt)
	}
	dims := make([]dim, len(shape.vals))
	for i, d := range shape.vals {
		switch {
		case d.p == "" && d.v == 0 && x.rank > i:
			dims[i] = x.dims[i]
		case d.p == "" && d.v < 0:
			dims[i] = unknownDim
		default:
			dims[i] = d
		}
	}
	out := dimsInfo(x.dt, dims)
	if x.vals != nil && len(dims) <= 1 {
		out.vals = x.vals
	}
	return out
}

func inferTranspose(n *onnx.Node, x *vinfo) *vinfo {
	if x.rank < 0 {
		return unknownInfo(x.dt)
	}
	perm := permOf(n, x.rank)
	if !validPerm(perm) {
		return rankInfo(x.dt, x.rank)
	}
	dims := make([]dim, x.rank)
	for i, p := range perm {
		dims[i] = x.dims[p]
	}
	return dimsInfo(x.dt, dims)
}

// validPerm reports whether perm is a permutation of 0..len-1.
func validPerm(perm []int64) bool {
	seen := make([]bool, len(perm))
	for _, p := range perm {
		if p < 0 || int(p) >= len(perm) || seen[p] {
			return false
		}
		seen[p] = true
	}
	return true
}

// permOf returns a Transpose node's permutation (reversed axes by default).
func permOf(n *onnx.Node, rank int) []int64 {
	if a := attr(n, "perm"); a != nil && len(a.Ints) == rank {
		return a.Ints
	}
	perm := make([]int64, rank)
	for i := range perm {
		perm[i] = int64(rank - 1 - i)
	}
	return perm
}

func inferUnsqueeze(x, axesInfo *vinfo) *vinfo {
	axes, ok := constInts(axesInfo.vals)
	if !ok || x.rank < 0 {
		return unknownInfo(x.dt)
	}
	r := x.rank + len(axes)
	isNew := make([]bool, r)
	for _, a := range axes {
		if ax := normAxis(a, r); ax >= 0 && ax < r {
			isNew[ax] = true
		}
	}
	dims := make([]dim, 0, r)
	j := 0
	for i := range r {
		if isNew[i] {
			dims = append(dims, dim{v: 1})
		} else if j < len(x.dims) {
			dims = append(dims, x.dims[j])
			j++
		}
	}
	out := dimsInfo(x.dt, dims)
	if x.rank == 0 && x.vals != nil {
		out.vals = x.vals
	}
	return out
}

func inferSqueeze(x, axesInfo *vinfo) *vinfo {
	if x.rank < 0 {
		return unknownInfo(x.dt)
	}
	axes, ok := constInts(axesInfo.vals)
	if !ok {
		return unknownInfo(x.dt)
	}
	drop := make([]bool, x.rank)
	for _, a := range axes {
		if ax := normAxis(a, x.rank); ax >= 0 && ax < x.rank {
			drop[ax] = true
		}
	}
	var dims []dim
	for i, d := range x.dims {
		if !drop[i] {
			dims = append(dims, d)
		}
	}
	out := dimsInfo(x.dt, dims)
	if len(dims) == 0 && x.vals != nil {
		out.vals = x.vals
	}
	return out
}

func inferConcat(axis int64, ins []*vinfo) *vinfo {
	if len(ins) == 0 || ins[0].rank < 0 {
		return unknownInfo(onnx.Undefined)
	}
	first := ins[0]
	ax := normAxis(axis, first.rank)
	if ax < 0 || ax >= first.rank {
		return unknownInfo(first.dt)
	}
	out := rankInfo(first.dt, first.rank)
	copy(out.dims, first.dims)
	total := int64(0)
	var vals []dim
	valsOK := first.rank == 1
	for _, in := range ins {
		if in.rank != first.rank {
			return rankInfo(first.dt, first.rank)
		}
		d := in.dims[ax]
		if d.v >= 0 && d.p == "" && total >= 0 {
			total += d.v
		} else {
			total = -1
		}
		if in.vals == nil {
			valsOK = false
		}
		vals = append(vals, in.vals...)
	}
	out.dims[ax] = dim{v: total}
	if valsOK {
		out.vals = vals
	}
	return out
}

func inferSlice(x, starts, ends, axes, steps *vinfo) *vinfo {
	if x.rank < 0 {
		return unknownInfo(x.dt)
	}
	out := rankInfo(x.dt, x.rank)
	copy(out.dims, x.dims)
	st, ok1 := constInts(starts.vals)
	en, ok2 := constInts(ends.vals)
	ax := []int64{}
	ok3 := true
	if axes.dt != onnx.Undefined {
		ax, ok3 = constInts(axes.vals)
	} else {
		for i := range st {
			ax = append(ax, int64(i))
		}
	}
	sp, ok4 := []int64(nil), true
	if steps.dt != onnx.Undefined {
		sp, ok4 = constInts(steps.vals)
	}
	if !ok1 || !ok2 || !ok3 || !ok4 || len(st) != len(en) || len(ax) != len(st) {
		for i := range out.dims {
			out.dims[i] = unknownDim
		}
		return out
	}
	for i, a := range ax {
		a := normAxis(a, x.rank)
		if a < 0 || a >= x.rank {
			continue
		}
		step := int64(1)
		if sp != nil && i < len(sp) {
			step = sp[i]
		}
		d := x.dims[a]
		if d.p != "" || d.v < 0 || step != 1 {
			out.dims[a] = unknownDim
			continue
		}
		s, e := clampIdx(st[i], d.v), clampIdx(en[i], d.v)
		out.dims[a] = dim{v: max(0, e-s)}
		if x.vals != nil && x.rank == 1 && a == 0 && e > s {
			out.vals = append([]dim(nil), x.vals[s:e]...)
		}
	}
	return out
}

func clampIdx(i, n int64) int64 {
	if i < 0 {
		i += n
	}
	return max(0, min(i, n))
}
