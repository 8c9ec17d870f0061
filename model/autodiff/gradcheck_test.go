package autodiff

import (
	"math/rand/v2"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

// param describes one float64 weight of a test graph: its shape and the
// uniform range its values are drawn from.
type param struct {
	name   string
	dims   []int64
	lo, hi float64
}

// gradCase is one finite-difference check: build appends nodes to b that
// compute a value from the weights and returns it; the loss is a fixed
// weighted sum of that value (weights sin(0.7 i + 0.3) over the flat index i,
// built from Shape/Range so that it needs no shape knowledge).
type gradCase struct {
	name   string
	params []param
	feeds  map[string]*ort.Tensor
	build  func(b *onnx.Builder) string
	cfg    CheckConfig
}

// weightedSumLoss appends loss = sum(y * sin(0.7*i + 0.3)) and returns it.
func weightedSumLoss(b *onnx.Builder, y string) string {
	size := b.Op("Size", []string{y})
	idx := b.Op("Range", []string{b.Constant(&onnx.Tensor{DataType: onnx.Int64, Int64: []int64{0}}), size,
		b.Constant(&onnx.Tensor{DataType: onnx.Int64, Int64: []int64{1}})})
	idx = b.Op("Reshape", []string{idx, b.Op("Shape", []string{y})})
	f := b.Op("Cast", []string{idx}, onnx.AttrI("to", int64(onnx.Double)))
	w := b.Op("Sin", []string{b.Op("Add", []string{b.Op("Mul", []string{f, b.Constant(onnx.ScalarF64(0.7))}), b.Constant(onnx.ScalarF64(0.3))})})
	return b.Op("ReduceSum", []string{b.Op("Mul", []string{y, w})}, onnx.AttrI("keepdims", 0))
}

func randomParam(rng *rand.Rand, p param) *onnx.Tensor {
	n := int64(1)
	for _, d := range p.dims {
		n *= d
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = p.lo + (p.hi-p.lo)*rng.Float64()
	}
	return &onnx.Tensor{Name: p.name, DataType: onnx.Double, Dims: p.dims, Double: v}
}

func runGradCase(t *testing.T, rt *ort.Runtime, tc gradCase) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
	b := onnx.NewBuilder(tc.name)
	var names []string
	for _, p := range tc.params {
		if p.lo == 0 && p.hi == 0 {
			p.lo, p.hi = -1, 1
		}
		names = append(names, b.Initializer(randomParam(rng, p)))
	}
	y := tc.build(b)
	loss := weightedSumLoss(b, y)
	b.Output(loss, onnx.Double)
	worst, err := CheckGradients(rt, b.Graph(), loss, names, tc.feeds, tc.cfg)
	if err != nil {
		t.Fatalf("%s: %v (worst abs error %.3g)", tc.name, err, worst)
	}
	t.Logf("worst abs error %.3g", worst)
}

// op is shorthand for a one-output node.
func op(b *onnx.Builder, typ string, in []string, attrs ...onnx.Attribute) string {
	return b.Op(typ, in, attrs...)
}

func ints(b *onnx.Builder, v ...int64) string { return b.Constant(onnx.Int64s(v...)) }

func f64(b *onnx.Builder, v float64) string { return b.Constant(onnx.ScalarF64(v)) }

func unaryCase(name, typ string, lo, hi float64) gradCase {
	return gradCase{name: name, params: []param{{name: "x", dims: []int64{2, 3}, lo: lo, hi: hi}},
		build: func(b *onnx.Builder) string { return op(b, typ, []string{"x"}) }}
}

// fastGeluCase checks com.microsoft FastGelu (float32 only) like
// float32Case, on x in [-3, 3], optionally with a bias weight.
func fastGeluCase(name string, bias bool) gradCase {
	params := []param{{name: "x", dims: []int64{2, 3}, lo: -3, hi: 3}}
	if bias {
		params = append(params, param{name: "b", dims: []int64{3}, lo: -1, hi: 1})
	}
	return gradCase{name: name, params: params,
		cfg: CheckConfig{Step: 1e-2, Atol: 1e-3, Rtol: 1e-3},
		build: func(b *onnx.Builder) string {
			in := []string{op(b, "Cast", []string{"x"}, onnx.AttrI("to", int64(onnx.Float)))}
			if bias {
				in = append(in, op(b, "Cast", []string{"b"}, onnx.AttrI("to", int64(onnx.Float))))
			}
			g := b.Op("FastGelu", in)
			b.Graph().Nodes[len(b.Graph().Nodes)-1].Domain = DomainMicrosoft
			return op(b, "Cast", []string{g}, onnx.AttrI("to", int64(onnx.Double)))
		}}
}

// float32Case checks a unary operator that ONNX Runtime's CPU provider runs
// only in float32 (Erf, Softplus): the float64 weight is cast to float32 and
// back, so the step is larger (1e-2) and the tolerance looser (1e-3 absolute
// and relative): float32 rounding of a loss near 1 over 2h is about 1e-5,
// and the O(h^2) truncation error below 1e-4.
func float32Case(name, typ string) gradCase {
	return gradCase{name: name, params: []param{{name: "x", dims: []int64{2, 3}, lo: -2, hi: 2}},
		cfg: CheckConfig{Step: 1e-2, Atol: 1e-3, Rtol: 1e-3},
		build: func(b *onnx.Builder) string {
			f := op(b, "Cast", []string{"x"}, onnx.AttrI("to", int64(onnx.Float)))
			return op(b, "Cast", []string{op(b, typ, []string{f})}, onnx.AttrI("to", int64(onnx.Double)))
		}}
}

func binaryCase(name, typ string, da, db []int64, lo, hi float64) gradCase {
	return gradCase{name: name,
		params: []param{{name: "a", dims: da, lo: -1, hi: 1}, {name: "b", dims: db, lo: lo, hi: hi}},
		build:  func(b *onnx.Builder) string { return op(b, typ, []string{"a", "b"}) }}
}

// TestOpGradients checks every gradient rule against central finite
// differences in float64 (h = 1e-6; pass when |analytic - numeric| <=
// 1e-6 + 1e-5 |numeric|, unless a case says otherwise).
func TestOpGradients(t *testing.T) {
	rt := orttest.Runtime(t)
	cases := []gradCase{
		binaryCase("Add", "Add", []int64{2, 3}, []int64{2, 3}, -1, 1),
		binaryCase("Add/broadcast-row", "Add", []int64{2, 3}, []int64{3}, -1, 1),
		binaryCase("Add/broadcast-both", "Add", []int64{2, 1, 3}, []int64{4, 1}, -1, 1),
		{name: "Add/symbolic-shapes", params: []param{{name: "w", dims: []int64{3}}},
			feeds: map[string]*ort.Tensor{"x": ort.F64Tensor([]float64{1, 2, 3, 4, 5, 6}, 2, 3)},
			build: func(b *onnx.Builder) string {
				x := b.Input("x", onnx.Double, onnx.Dim{Param: "B"}, onnx.Dim{Param: "N"})
				return op(b, "Mul", []string{op(b, "Add", []string{x, "w"}), op(b, "Add", []string{x, "w"})})
			}},
		binaryCase("Sub/broadcast", "Sub", []int64{2, 3}, []int64{2, 1}, -1, 1),
		binaryCase("Mul/broadcast", "Mul", []int64{3}, []int64{2, 3}, -1, 1),
		binaryCase("Div/broadcast", "Div", []int64{2, 3}, []int64{1, 3}, 0.5, 2),
		{name: "Pow/constant-exponent", params: []param{{name: "x", dims: []int64{2, 3}, lo: 0.5, hi: 2}},
			build: func(b *onnx.Builder) string { return op(b, "Pow", []string{"x", f64(b, 2.5)}) }},
		{name: "Pow/float-exponent-on-double", params: []param{{name: "x", dims: []int64{4}, lo: 0.5, hi: 2}},
			build: func(b *onnx.Builder) string { return op(b, "Pow", []string{"x", b.Constant(onnx.ScalarF32(3))}) }},
		{name: "Pow/int-exponent", params: []param{{name: "x", dims: []int64{4}, lo: -2, hi: 2}},
			build: func(b *onnx.Builder) string {
				return op(b, "Pow", []string{"x", b.Constant(&onnx.Tensor{DataType: onnx.Int64, Int64: []int64{3}})})
			}},
		{name: "Pow/weight-exponent", params: []param{{name: "a", dims: []int64{2, 3}, lo: 0.5, hi: 2}, {name: "b", dims: []int64{3}, lo: 0.5, hi: 2}},
			build: func(b *onnx.Builder) string { return op(b, "Pow", []string{"a", "b"}) }},
		unaryCase("Neg", "Neg", -1, 1),
		unaryCase("Exp", "Exp", -1, 1),
		unaryCase("Log", "Log", 0.5, 2),
		unaryCase("Sqrt", "Sqrt", 0.5, 2),
		unaryCase("Tanh", "Tanh", -2, 2),
		unaryCase("Sigmoid", "Sigmoid", -2, 2),
		float32Case("Erf/float32", "Erf"),
		unaryCase("Relu", "Relu", -1, 1),
		unaryCase("Abs", "Abs", -1, 1),
		float32Case("Softplus/float32", "Softplus"),
		fastGeluCase("FastGelu/float32", false),
		fastGeluCase("FastGelu/bias/float32", true),
		unaryCase("Reciprocal", "Reciprocal", 0.5, 2),
		unaryCase("Identity", "Identity", -1, 1),
		{name: "Cast/double-float-double", params: []param{{name: "x", dims: []int64{2, 3}}},
			cfg: CheckConfig{Step: 1e-2, Atol: 1e-4},
			build: func(b *onnx.Builder) string {
				f := op(b, "Cast", []string{"x"}, onnx.AttrI("to", int64(onnx.Float)))
				return op(b, "Cast", []string{op(b, "Mul", []string{f, b.Constant(onnx.ScalarF32(3))})}, onnx.AttrI("to", int64(onnx.Double)))
			}},
		binaryCase("MatMul/2d", "MatMul", []int64{3, 4}, []int64{4, 5}, -1, 1),
		binaryCase("MatMul/batched-weight", "MatMul", []int64{2, 3, 4}, []int64{4, 5}, -1, 1),
		binaryCase("MatMul/batched-both", "MatMul", []int64{2, 3, 4}, []int64{2, 4, 5}, -1, 1),
		binaryCase("MatMul/broadcast-batch", "MatMul", []int64{2, 1, 3, 4}, []int64{3, 4, 2}, -1, 1),
		binaryCase("MatMul/vector-left", "MatMul", []int64{4}, []int64{2, 4, 5}, -1, 1),
		binaryCase("MatMul/vector-right", "MatMul", []int64{2, 3, 4}, []int64{4}, -1, 1),
		{name: "Gemm/plain-bias", params: []param{{name: "a", dims: []int64{3, 4}}, {name: "b", dims: []int64{4, 2}}, {name: "c", dims: []int64{2}}},
			build: func(b *onnx.Builder) string { return op(b, "Gemm", []string{"a", "b", "c"}) }},
		{name: "Gemm/transposed-alpha-beta", params: []param{{name: "a", dims: []int64{4, 3}}, {name: "b", dims: []int64{2, 4}}, {name: "c", dims: []int64{3, 1}}},
			build: func(b *onnx.Builder) string {
				return op(b, "Gemm", []string{"a", "b", "c"}, onnx.AttrI("transA", 1), onnx.AttrI("transB", 1),
					onnx.AttrF("alpha", 0.5), onnx.AttrF("beta", 2))
			}},
		{name: "Gemm/transA", params: []param{{name: "a", dims: []int64{4, 3}}, {name: "b", dims: []int64{4, 2}}},
			build: func(b *onnx.Builder) string { return op(b, "Gemm", []string{"a", "b"}, onnx.AttrI("transA", 1)) }},
		{name: "Gemm/transB", params: []param{{name: "a", dims: []int64{3, 4}}, {name: "b", dims: []int64{2, 4}}},
			build: func(b *onnx.Builder) string { return op(b, "Gemm", []string{"a", "b"}, onnx.AttrI("transB", 1)) }},
		{name: "Gather/embedding-repeated-rows", params: []param{{name: "emb", dims: []int64{5, 3}}},
			build: func(b *onnx.Builder) string {
				idx := b.Constant(&onnx.Tensor{DataType: onnx.Int64, Dims: []int64{2, 3}, Int64: []int64{0, 2, 2, 4, 0, 1}})
				return op(b, "Gather", []string{"emb", idx})
			}},
		{name: "GatherElements", params: []param{{name: "x", dims: []int64{3, 4}}},
			build: func(b *onnx.Builder) string {
				idx := b.Constant(&onnx.Tensor{DataType: onnx.Int64, Dims: []int64{3, 2}, Int64: []int64{0, 3, 1, 1, 2, 0}})
				return op(b, "GatherElements", []string{"x", idx}, onnx.AttrI("axis", 1))
			}},
		{name: "Reshape", params: []param{{name: "x", dims: []int64{2, 6}}},
			build: func(b *onnx.Builder) string { return op(b, "Reshape", []string{"x", ints(b, 3, -1, 2)}) }},
		{name: "Transpose/perm", params: []param{{name: "x", dims: []int64{2, 3, 4}}},
			build: func(b *onnx.Builder) string { return op(b, "Transpose", []string{"x"}, onnx.AttrInts("perm", 1, 2, 0)) }},
		{name: "Transpose/default", params: []param{{name: "x", dims: []int64{2, 3, 4}}},
			build: func(b *onnx.Builder) string { return op(b, "Transpose", []string{"x"}) }},
		{name: "Softmax/last", params: []param{{name: "x", dims: []int64{2, 5}, lo: -2, hi: 2}},
			build: func(b *onnx.Builder) string { return op(b, "Softmax", []string{"x"}) }},
		{name: "Softmax/axis1", params: []param{{name: "x", dims: []int64{2, 3, 2}, lo: -2, hi: 2}},
			build: func(b *onnx.Builder) string { return op(b, "Softmax", []string{"x"}, onnx.AttrI("axis", 1)) }},
		{name: "LogSoftmax", params: []param{{name: "x", dims: []int64{3, 4}, lo: -2, hi: 2}},
			build: func(b *onnx.Builder) string { return op(b, "LogSoftmax", []string{"x"}, onnx.AttrI("axis", -1)) }},
		{name: "ReduceMean/axes-attr", params: []param{{name: "x", dims: []int64{2, 3, 4}}},
			build: func(b *onnx.Builder) string {
				return op(b, "ReduceMean", []string{"x"}, onnx.AttrInts("axes", 1), onnx.AttrI("keepdims", 0))
			}},
		{name: "ReduceMean/keepdims-negative-axis", params: []param{{name: "x", dims: []int64{2, 3, 4}}},
			build: func(b *onnx.Builder) string { return op(b, "ReduceMean", []string{"x"}, onnx.AttrInts("axes", -1)) }},
		{name: "ReduceMean/all", params: []param{{name: "x", dims: []int64{2, 3}}},
			build: func(b *onnx.Builder) string { return op(b, "ReduceMean", []string{"x"}, onnx.AttrI("keepdims", 0)) }},
		{name: "ReduceMean/symbolic", params: []param{{name: "w", dims: []int64{3}}},
			feeds: map[string]*ort.Tensor{"x": ort.F64Tensor([]float64{1, 2, 3, 4, 5, 6}, 2, 3)},
			build: func(b *onnx.Builder) string {
				x := b.Input("x", onnx.Double, onnx.Dim{Param: "B"}, onnx.Dim{Param: "N"})
				return op(b, "ReduceMean", []string{op(b, "Mul", []string{x, "w"})}, onnx.AttrInts("axes", 0), onnx.AttrI("keepdims", 0))
			}},
		{name: "ReduceSum/axes-input", params: []param{{name: "x", dims: []int64{2, 3, 4}}},
			build: func(b *onnx.Builder) string {
				return op(b, "ReduceSum", []string{"x", ints(b, 0, 2)}, onnx.AttrI("keepdims", 0))
			}},
		{name: "ReduceSum/keepdims", params: []param{{name: "x", dims: []int64{2, 3}}},
			build: func(b *onnx.Builder) string { return op(b, "ReduceSum", []string{"x", ints(b, 1)}) }},
		{name: "Concat", params: []param{{name: "a", dims: []int64{2, 1}}, {name: "b", dims: []int64{2, 3}}},
			build: func(b *onnx.Builder) string { return op(b, "Concat", []string{"a", "b"}, onnx.AttrI("axis", -1)) }},
		{name: "Split/one-output-used", params: []param{{name: "x", dims: []int64{2, 5}}},
			build: func(b *onnx.Builder) string {
				outs := b.OpN("Split", []string{"x", ints(b, 2, 3)}, 2, onnx.AttrI("axis", 1))
				return op(b, "Mul", []string{outs[1], outs[1]})
			}},
		{name: "Slice/step-and-negative", params: []param{{name: "x", dims: []int64{3, 6}}},
			build: func(b *onnx.Builder) string {
				return op(b, "Slice", []string{"x", ints(b, 1, -1), ints(b, 3, 0), ints(b, 0, 1), ints(b, 1, -2)})
			}},
		{name: "CumSum", params: []param{{name: "x", dims: []int64{3, 4}}},
			build: func(b *onnx.Builder) string { return op(b, "CumSum", []string{"x", ints(b, 1)}) }},
		{name: "CumSum/reverse-exclusive", params: []param{{name: "x", dims: []int64{3, 4}}},
			build: func(b *onnx.Builder) string {
				return op(b, "CumSum", []string{"x", b.Constant(&onnx.Tensor{DataType: onnx.Int64, Int64: []int64{0}})},
					onnx.AttrI("reverse", 1), onnx.AttrI("exclusive", 1))
			}},
		{name: "MatMul/unknown-rank-times-weight", params: []param{{name: "w", dims: []int64{3, 2}}},
			feeds: map[string]*ort.Tensor{"x": ort.F64Tensor([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 2, 2, 3)},
			build: func(b *onnx.Builder) string {
				b.Graph().Inputs = append(b.Graph().Inputs, onnx.ValueInfo{Name: "x", DataType: onnx.Double})
				return op(b, "MatMul", []string{op(b, "Tanh", []string{op(b, "MatMul", []string{"x", ints64AsDouble(b)})}), "w"})
			}},
		{name: "LayerNormalization", params: []param{{name: "x", dims: []int64{2, 3, 4}}, {name: "s", dims: []int64{4}}, {name: "b", dims: []int64{4}}},
			build: func(b *onnx.Builder) string {
				return op(b, "LayerNormalization", []string{"x", "s", "b"}, onnx.AttrF("epsilon", 1e-5))
			}},
		{name: "LayerNormalization/axis1", params: []param{{name: "x", dims: []int64{2, 3, 4}}, {name: "s", dims: []int64{3, 4}}},
			build: func(b *onnx.Builder) string {
				return op(b, "LayerNormalization", []string{"x", "s"}, onnx.AttrI("axis", 1))
			}},
		{name: "ReduceMax", params: []param{{name: "x", dims: []int64{3, 4}}},
			build: func(b *onnx.Builder) string {
				return op(b, "ReduceMax", []string{"x"}, onnx.AttrInts("axes", 1), onnx.AttrI("keepdims", 0))
			}},
		{name: "ReduceMin/all", params: []param{{name: "x", dims: []int64{3, 4}}},
			build: func(b *onnx.Builder) string { return op(b, "ReduceMin", []string{"x"}) }},
		unaryCase("Sin", "Sin", -2, 2),
		unaryCase("Cos", "Cos", -2, 2),
		{name: "LeakyRelu", params: []param{{name: "x", dims: []int64{2, 3}}},
			build: func(b *onnx.Builder) string { return op(b, "LeakyRelu", []string{"x"}, onnx.AttrF("alpha", 0.2)) }},
		{name: "Trilu", params: []param{{name: "x", dims: []int64{3, 3}}},
			build: func(b *onnx.Builder) string { return op(b, "Trilu", []string{"x"}, onnx.AttrI("upper", 0)) }},
		{name: "Where/broadcast", params: []param{{name: "a", dims: []int64{2, 3}}, {name: "b", dims: []int64{3}}},
			build: func(b *onnx.Builder) string {
				cond := b.Constant(&onnx.Tensor{DataType: onnx.Bool, Dims: []int64{2, 3}, Raw: []byte{1, 0, 1, 0, 0, 1}})
				return op(b, "Where", []string{cond, "a", "b"})
			}},
		{name: "Clip", params: []param{{name: "x", dims: []int64{4, 4}}},
			build: func(b *onnx.Builder) string { return op(b, "Clip", []string{"x", f64(b, -0.4), f64(b, 0.5)}) }},
		{name: "Clip/weight-bounds", params: []param{{name: "x", dims: []int64{4, 4}}, {name: "lo", dims: []int64{}, lo: -0.5, hi: -0.3}, {name: "hi", dims: []int64{}, lo: 0.3, hi: 0.5}},
			build: func(b *onnx.Builder) string { return op(b, "Clip", []string{"x", "lo", "hi"}) }},
		binaryCase("Min/broadcast", "Min", []int64{2, 3}, []int64{3}, -1, 1),
		binaryCase("Max/broadcast", "Max", []int64{2, 3}, []int64{2, 1}, -1, 1),
		{name: "Unsqueeze-Squeeze", params: []param{{name: "x", dims: []int64{2, 3}}},
			build: func(b *onnx.Builder) string {
				u := op(b, "Unsqueeze", []string{"x", ints(b, 1)})
				return op(b, "Squeeze", []string{op(b, "Mul", []string{u, u}), ints(b, 1)})
			}},
		{name: "Expand", params: []param{{name: "x", dims: []int64{3, 1}}},
			build: func(b *onnx.Builder) string { return op(b, "Expand", []string{"x", ints(b, 2, 3, 4)}) }},
		{name: "Sum/variadic", params: []param{{name: "a", dims: []int64{2, 3}}, {name: "b", dims: []int64{3}}},
			build: func(b *onnx.Builder) string { return op(b, "Sum", []string{"a", "b", "a"}) }},
		{name: "fan-out", params: []param{{name: "x", dims: []int64{3}}},
			build: func(b *onnx.Builder) string {
				sq := op(b, "Mul", []string{"x", "x"})
				return op(b, "Add", []string{op(b, "Mul", []string{sq, "x"}), op(b, "Exp", []string{"x"})})
			}},
		{name: "unused-and-shape-paths", params: []param{{name: "x", dims: []int64{2, 3}}, {name: "unused", dims: []int64{4}}},
			build: func(b *onnx.Builder) string {
				_ = op(b, "Exp", []string{"unused"})
				shape := op(b, "Shape", []string{"x"})
				return op(b, "Reshape", []string{op(b, "Tanh", []string{"x"}), op(b, "Concat", []string{ints(b, -1), op(b, "Slice", []string{shape, ints(b, 0), ints(b, 1)})}, onnx.AttrI("axis", 0))})
			}},
		{name: "layernorm-composite", params: []param{{name: "x", dims: []int64{2, 3, 4}}, {name: "g", dims: []int64{4}}, {name: "beta", dims: []int64{4}}},
			build: func(b *onnx.Builder) string {
				mu := op(b, "ReduceMean", []string{"x"}, onnx.AttrInts("axes", -1))
				d := op(b, "Sub", []string{"x", mu})
				v := op(b, "ReduceMean", []string{op(b, "Mul", []string{d, d})}, onnx.AttrInts("axes", -1))
				sd := op(b, "Sqrt", []string{op(b, "Add", []string{v, f64(b, 1e-5)})})
				return op(b, "Add", []string{op(b, "Mul", []string{op(b, "Div", []string{d, sd}), "g"}), "beta"})
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runGradCase(t, rt, tc) })
	}
}

// ints64AsDouble returns a constant 3x3 double matrix (a fixed mixing of x).
func ints64AsDouble(b *onnx.Builder) string {
	return b.Constant(&onnx.Tensor{DataType: onnx.Double, Dims: []int64{3, 3}, Double: []float64{0.5, -0.2, 0.1, 0.3, 0.2, -0.4, 0.1, 0.1, 0.3}})
}
