package autodiff

import (
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// FuzzBuild feeds decoded models (as a user's exported model would arrive)
// to Build, differentiating the first output with respect to every float
// initializer: Build must return a graph or an error, never panic.
func FuzzBuild(f *testing.F) {
	for _, op := range []string{"Tanh", "Softmax", "Transpose", "Relu"} {
		g, _ := smallGraph(f, op)
		b, err := onnx.NewModel(g, 17).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := onnx.Unmarshal(data)
		if err != nil || m.Graph == nil || len(m.Graph.Outputs) == 0 {
			return
		}
		var params []string
		for _, init := range m.Graph.Initializers {
			if isFloat(init.DataType) {
				params = append(params, init.Name)
			}
		}
		_, _ = Build(m.Graph, m.Graph.Outputs[0].Name, params)
	})
}

// fuzzOps are the operators FuzzBuildGraph draws from: every rule plus the
// shape and integer operators that feed them.
var fuzzOps = []string{
	"Add", "Sub", "Mul", "Div", "Pow", "Neg", "Exp", "Log", "Sqrt", "Tanh", "Sigmoid", "Relu",
	"Abs", "Identity", "Cast", "Clip", "Min", "Max", "Where", "Softmax", "LogSoftmax",
	"ReduceSum", "ReduceMean", "ReduceMax", "MatMul", "Gemm", "Gather", "GatherElements",
	"Reshape", "Squeeze", "Unsqueeze", "Expand", "Transpose", "Concat", "Split", "Slice",
	"CumSum", "LayerNormalization", "Shape", "Constant", "Sum", "Trilu", "Equal", "Size",
}

// FuzzBuildGraph builds random, often ill-formed graphs from the fuzz input
// (operators, wiring, attributes and constant values all come from the
// bytes) and checks that Build returns rather than panics.
func FuzzBuildGraph(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{24, 0, 1, 36, 2, 0, 33, 1, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		pos := 0
		next := func() int {
			if pos >= len(data) {
				return 0
			}
			pos++
			return int(data[pos-1])
		}
		signed := func() int64 { return int64(next()%7) - 3 }
		b := onnx.NewBuilder("fuzz")
		b.Initializer(&onnx.Tensor{Name: "w", DataType: onnx.Float, Dims: []int64{2, 3}, Float: make([]float32, 6)})
		b.Initializer(&onnx.Tensor{Name: "v", DataType: onnx.Float, Dims: []int64{3}, Float: make([]float32, 3)})
		b.Input("x", onnx.Float, onnx.Dim{Param: "B"}, onnx.Dim{Value: 3})
		values := []string{"w", "v", "x"}
		for range min(len(data)/3, 24) {
			opType := fuzzOps[next()%len(fuzzOps)]
			var ins []string
			for range next() % 4 {
				ins = append(ins, values[next()%len(values)])
			}
			var attrs []onnx.Attribute
			switch next() % 5 {
			case 1:
				attrs = append(attrs, onnx.AttrI("axis", signed()))
			case 2:
				attrs = append(attrs, onnx.AttrInts("perm", signed()+3, signed()+3, signed()+3))
			case 3:
				attrs = append(attrs, onnx.AttrI("keepdims", int64(next()%2)), onnx.AttrInts("axes", signed()))
			case 4:
				attrs = append(attrs, onnx.AttrI("transA", int64(next()%2)), onnx.AttrI("to", int64(next()%12)))
			}
			if opType == "Constant" {
				values = append(values, b.Constant(onnx.Int64s(signed(), signed())))
				continue
			}
			outs := b.OpN(opType, ins, 1+next()%2, attrs...)
			values = append(values, outs...)
		}
		loss := values[len(values)-1]
		b.Output(loss, onnx.Float)
		_, _ = Build(b.Graph(), loss, []string{"w", "v"})
	})
}
