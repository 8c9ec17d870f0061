package autodiff

import (
	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// dim is one inferred dimension: a known size (v >= 0), a symbolic size
// (p != ""), or unknown (v < 0 and p == "").
type dim struct {
	v int64
	p string
}

var unknownDim = dim{v: -1}

func (d dim) known() bool { return d.v >= 0 || d.p != "" }

// same reports whether two dimensions are certainly equal.
func (d dim) same(o dim) bool {
	if d.p != "" || o.p != "" {
		return d.p != "" && d.p == o.p
	}
	return d.v >= 0 && d.v == o.v
}

func (d dim) isOne() bool { return d.p == "" && d.v == 1 }

// vinfo is what inference knows about a value: its element type, its rank
// (-1 when unknown) and dims, and, for small int64 tensors of rank 0 or 1
// computed from shapes and constants, their element values.
type vinfo struct {
	dt   onnx.DataType
	rank int
	dims []dim
	vals []dim // element values of an int64 rank-0/1 tensor; nil when unknown
}

func unknownInfo(dt onnx.DataType) *vinfo { return &vinfo{dt: dt, rank: -1} }

func rankInfo(dt onnx.DataType, rank int) *vinfo {
	vi := &vinfo{dt: dt, rank: rank, dims: make([]dim, rank)}
	for i := range vi.dims {
		vi.dims[i] = unknownDim
	}
	return vi
}

func dimsInfo(dt onnx.DataType, dims []dim) *vinfo {
	return &vinfo{dt: dt, rank: len(dims), dims: dims}
}

// fullyKnown reports whether every dimension is a known number.
func (vi *vinfo) fullyKnown() bool {
	if vi.rank < 0 {
		return false
	}
	for _, d := range vi.dims {
		if d.v < 0 || d.p != "" {
			return false
		}
	}
	return true
}

// sameShape reports whether two values certainly have the same shape.
func sameShape(a, b *vinfo) bool {
	if a.rank < 0 || a.rank != b.rank {
		return false
	}
	for i := range a.dims {
		if !a.dims[i].same(b.dims[i]) {
			return false
		}
	}
	return true
}

func isFloat(dt onnx.DataType) bool {
	return dt == onnx.Float || dt == onnx.Double || dt == onnx.Float16
}

func fromShape(shape []onnx.Dim) []dim {
	out := make([]dim, len(shape))
	for i, d := range shape {
		switch {
		case d.Param != "":
			out[i] = dim{v: -1, p: d.Param}
		case d.Value > 0:
			out[i] = dim{v: d.Value}
		default:
			out[i] = unknownDim
		}
	}
	return out
}

func intDims(v []int64) []dim {
	out := make([]dim, len(v))
	for i, x := range v {
		out[i] = dim{v: x}
	}
	return out
}

// constInts returns the known integer values of vals, or false.
func constInts(vals []dim) ([]int64, bool) {
	if vals == nil {
		return nil, false
	}
	out := make([]int64, len(vals))
	for i, d := range vals {
		if d.p != "" {
			return nil, false
		}
		out[i] = d.v
	}
	return out, true
}

// normAxis maps a possibly negative axis onto [0, rank).
func normAxis(a int64, rank int) int {
	if a < 0 {
		a += int64(rank)
	}
	return int(a)
}

func attr(n *onnx.Node, name string) *onnx.Attribute {
	for i := range n.Attrs {
		if n.Attrs[i].Name == name {
			return &n.Attrs[i]
		}
	}
	return nil
}

func attrInt(n *onnx.Node, name string, def int64) int64 {
	if a := attr(n, name); a != nil {
		return a.I
	}
	return def
}

func attrFloat(n *onnx.Node, name string, def float32) float32 {
	if a := attr(n, name); a != nil {
		return a.F
	}
	return def
}

func input(n *onnx.Node, i int) string {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return ""
}

// broadcastDims applies numpy broadcasting to the given infos.
func broadcastDims(dt onnx.DataType, ins ...*vinfo) *vinfo {
	rank := 0
	for _, in := range ins {
		if in == nil || in.rank < 0 {
			return unknownInfo(dt)
		}
		rank = max(rank, in.rank)
	}
	out := rankInfo(dt, rank)
	for i := range rank {
		var d dim
		first := true
		for _, in := range ins {
			j := i - (rank - in.rank)
			if j < 0 {
				continue
			}
			x := in.dims[j]
			switch {
			case first:
				d, first = x, false
			case x.isOne():
			case d.isOne():
				d = x
			case !d.same(x):
				// One of them must be 1 at run time or they agree; keep a
				// known one when the other is unknown.
				if !d.known() {
					d = x
				} else if x.known() {
					d = unknownDim
				}
			}
		}
		out.dims[i] = d
	}
	return out
}

// dimAt returns dimension axis (possibly negative) of vi, if vi's rank is
// known and the axis lies within it.
func dimAt(vi *vinfo, axis int64) (dim, bool) {
	if vi == nil || vi.rank < 1 {
		return unknownDim, false
	}
	ax := normAxis(axis, vi.rank)
	if ax < 0 || ax >= vi.rank {
		return unknownDim, false
	}
	return vi.dims[ax], true
}
