package ort

import (
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// benchModel returns a model of about 2 MB: a 512x1024 float32 weight
// (2 MiB) behind MatMul+Add+Softmax.
func benchModel(tb testing.TB) []byte {
	tb.Helper()
	d := newDense(512, 1024)
	return d.model(tb, onnx.Float)
}

func BenchmarkNewSession(b *testing.B) {
	r := testRuntime(b)
	model := benchModel(b)
	b.SetBytes(int64(len(model)))
	b.ResetTimer()
	for b.Loop() {
		s, err := r.NewSession(model, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRun(b *testing.B) {
	r := testRuntime(b)
	d := newDense(512, 1024)
	s, err := r.NewSession(d.model(b, onnx.Float), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	in := map[string]*Tensor{"x": F32Tensor(toF32(input(8, d.in)), 8, int64(d.in))}
	for b.Loop() {
		if _, err := s.Run(in); err != nil {
			b.Fatal(err)
		}
	}
}
