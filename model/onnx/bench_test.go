package onnx

import (
	"math"
	"testing"
)

// benchModel is a ~2 MB model: a 512x1024 float32 weight behind MatMul.
func benchModel() *Model {
	b := NewBuilder("bench")
	x := b.Input("x", Float, Dim{Param: "n"}, Dim{Value: 512})
	w := &Tensor{Name: "w", DataType: Float, Dims: []int64{512, 1024}, Float: make([]float32, 512*1024)}
	for i := range w.Float {
		w.Float[i] = float32(math.Sin(float64(i)))
	}
	b.Named("MatMul", []string{x, b.Initializer(w)}, []string{"y"})
	b.Output("y", Float, Dim{Param: "n"}, Dim{Value: 1024})
	return NewModel(b.Graph(), 17)
}

func BenchmarkMarshal(b *testing.B) {
	m := benchModel()
	enc, err := m.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := m.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	enc, err := benchModel().Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := Unmarshal(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadSignature(b *testing.B) {
	enc, err := benchModel().Marshal()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ReadSignature(enc); err != nil {
			b.Fatal(err)
		}
	}
}
