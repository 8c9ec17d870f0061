package ort

import (
	"math"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// dense is a small affine+softmax layer used as the test model:
// probs = Softmax(X·W + B, axis=-1), loss = ReduceSum(probs·W2) (a scalar).
type dense struct {
	in, out int
	w, b    []float64
}

func newDense(in, out int) dense {
	d := dense{in: in, out: out, w: make([]float64, in*out), b: make([]float64, out)}
	for i := range d.w {
		d.w[i] = math.Sin(float64(i)*0.37) * 0.5
	}
	for i := range d.b {
		d.b[i] = math.Cos(float64(i)) * 0.1
	}
	return d
}

// model encodes the layer for element type dt (onnx.Float or onnx.Double).
func (d dense) model(tb testing.TB, dt onnx.DataType) []byte {
	tb.Helper()
	enc, err := d.graph(tb, dt).Marshal()
	if err != nil {
		tb.Fatalf("Marshal: %v", err)
	}
	return enc
}

// graph builds the layer's model for element type dt.
func (d dense) graph(tb testing.TB, dt onnx.DataType) *onnx.Model {
	tb.Helper()
	b := onnx.NewBuilder("dense")
	x := b.Input("x", dt, onnx.Dim{Param: "batch"}, onnx.Dim{Value: int64(d.in)})
	w := b.Initializer(d.tensor("w", dt, d.w, int64(d.in), int64(d.out)))
	bias := b.Initializer(d.tensor("b", dt, d.b, int64(d.out)))
	logits := b.Op("Add", []string{b.Op("MatMul", []string{x, w}), bias})
	b.Named("Softmax", []string{logits}, []string{"probs"}, onnx.AttrI("axis", -1))
	b.Named("ReduceSum", []string{"probs"}, []string{"total"}, onnx.AttrI("keepdims", 0))
	b.Output("probs", dt, onnx.Dim{Param: "batch"}, onnx.Dim{Value: int64(d.out)})
	b.Output("total", dt)
	m := onnx.NewModel(b.Graph(), 17)
	if err := m.Validate(); err != nil {
		tb.Fatalf("Validate: %v", err)
	}
	return m
}

func (d dense) tensor(name string, dt onnx.DataType, v []float64, dims ...int64) *onnx.Tensor {
	t := &onnx.Tensor{Name: name, DataType: dt, Dims: dims}
	if dt == onnx.Double {
		t.Double = v
		return t
	}
	t.Float = make([]float32, len(v))
	for i, x := range v {
		t.Float[i] = float32(x)
	}
	return t
}

// reference computes probs and their total in float64.
func (d dense) reference(x []float64, batch int) (probs []float64, total float64) {
	probs = make([]float64, batch*d.out)
	for r := range batch {
		row := probs[r*d.out : (r+1)*d.out]
		maxv := math.Inf(-1)
		for j := range row {
			s := d.b[j]
			for k := range d.in {
				s += x[r*d.in+k] * d.w[k*d.out+j]
			}
			row[j] = s
			maxv = math.Max(maxv, s)
		}
		sum := 0.0
		for j := range row {
			row[j] = math.Exp(row[j] - maxv)
			sum += row[j]
		}
		for j := range row {
			row[j] /= sum
			total += row[j]
		}
	}
	return probs, total
}

func input(batch, in int) []float64 {
	x := make([]float64, batch*in)
	for i := range x {
		x[i] = float64(i%7)*0.3 - 0.9
	}
	return x
}
