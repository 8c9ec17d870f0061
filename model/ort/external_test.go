package ort

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// denseOutputs runs s on the dense layer's test input and returns probs.
func denseOutputs(tb testing.TB, s *Session, d dense, dt onnx.DataType, batch int) []float64 {
	tb.Helper()
	x := input(batch, d.in)
	in := F64Tensor(x, int64(batch), int64(d.in))
	if dt == onnx.Float {
		in = F32Tensor(toF32(x), int64(batch), int64(d.in))
	}
	out, err := s.Run(map[string]*Tensor{"x": in})
	if err != nil {
		tb.Fatalf("Run: %v", err)
	}
	return asF64(out["probs"])
}

// bitsEqual reports whether a and b hold the same float64 bit patterns.
func bitsEqual(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
}

// TestSessionExternalMatchesInline checks that a model whose initializers
// reach ONNX Runtime as in-memory external data (NewSessionExternal), or
// from an external data file (SaveExternal, NewSessionFromFile), computes
// bit for bit what the same model encoded whole does.
func TestSessionExternalMatchesInline(t *testing.T) {
	r := testRuntime(t)
	d := newDense(48, 40)
	for _, tc := range []struct {
		name      string
		dt        onnx.DataType
		threshold int64
		external  int // initializers moved out
	}{
		{"float32/all", onnx.Float, 1, 2},
		{"float32/weights only", onnx.Float, 1024, 1},
		{"float64/all", onnx.Double, 0, 2},
		{"float64/none", onnx.Double, 1 << 30, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := d.graph(t, tc.dt)
			inline, err := r.NewSession(d.model(t, tc.dt), nil, []string{"probs"})
			if err != nil {
				t.Fatalf("NewSession: %v", err)
			}
			t.Cleanup(func() { _ = inline.Close() })
			want := denseOutputs(t, inline, d, tc.dt, 3)

			b, ext, err := m.MarshalExternal(ExternalLocation, tc.threshold)
			if err != nil {
				t.Fatalf("MarshalExternal: %v", err)
			}
			if len(ext) != tc.external {
				t.Fatalf("%d external initializers, want %d", len(ext), tc.external)
			}
			s, err := r.NewSessionExternal(b, ext, nil, []string{"probs"})
			if err != nil {
				t.Fatalf("NewSessionExternal: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if got := denseOutputs(t, s, d, tc.dt, 3); !bitsEqual(got, want) {
				t.Fatalf("in-memory external data: probs %v, want %v", got, want)
			}

			path := filepath.Join(t.TempDir(), "dense.onnx")
			if err := m.SaveExternal(path, tc.threshold); err != nil {
				t.Fatalf("SaveExternal: %v", err)
			}
			f, err := r.NewSessionFromFile(path, nil, []string{"probs"})
			if err != nil {
				t.Fatalf("NewSessionFromFile: %v", err)
			}
			t.Cleanup(func() { _ = f.Close() })
			if got := denseOutputs(t, f, d, tc.dt, 3); !bitsEqual(got, want) {
				t.Fatalf("external data file: probs %v, want %v", got, want)
			}
		})
	}
}

// TestNewModelSession checks the session NewModelSession makes for a small
// model (encoded whole) against NewSession's.
func TestNewModelSession(t *testing.T) {
	r := testRuntime(t)
	d := newDense(8, 5)
	want := denseOutputs(t, mustSession(t, r, d.model(t, onnx.Float)), d, onnx.Float, 2)
	s, err := r.NewModelSession(d.graph(t, onnx.Float), nil, []string{"probs"})
	if err != nil {
		t.Fatalf("NewModelSession: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if got := denseOutputs(t, s, d, onnx.Float, 2); !bitsEqual(got, want) {
		t.Fatalf("probs %v, want %v", got, want)
	}
	if _, err := r.NewModelSession(&onnx.Model{}, nil, nil); !errors.Is(err, ErrBadModel) {
		t.Fatalf("model without graph: %v, want ErrBadModel", err)
	}
}

func mustSession(tb testing.TB, r *Runtime, model []byte) *Session {
	tb.Helper()
	s, err := r.NewSession(model, nil, []string{"probs"})
	if err != nil {
		tb.Fatalf("NewSession: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// TestSessionExternalErrors checks that external data the model does not
// get, or gets in the wrong form, fails with ErrBadModel.
func TestSessionExternalErrors(t *testing.T) {
	r := testRuntime(t)
	d := newDense(8, 5)
	m := d.graph(t, onnx.Float)
	b, ext, err := m.MarshalExternal(ExternalLocation, 1)
	if err != nil {
		t.Fatal(err)
	}
	short := slices.Clone(ext)
	short[0].Place.Length--
	for _, tc := range []struct {
		name string
		ext  []onnx.ExternalTensor
	}{
		{"missing", ext[:1]},
		{"none", nil},
		{"wrong length", short},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := r.NewSessionExternal(b, tc.ext, nil, []string{"probs"})
			if err == nil {
				_ = s.Close()
				t.Fatal("NewSessionExternal succeeded")
			}
			if !errors.Is(err, ErrBadModel) {
				t.Fatalf("error %v, want ErrBadModel", err)
			}
		})
	}
}

// TestSessionExternalCopies checks what NewSessionExternal's contract
// rests on: ONNX Runtime copies in-memory external initializers when the
// session is created, so changing the Go tensors afterwards changes
// nothing (the bias feeds an Add, which reads its initializer as is).
func TestSessionExternalCopies(t *testing.T) {
	r := testRuntime(t)
	d := newDense(8, 5)
	m := d.graph(t, onnx.Float)
	b, ext, err := m.MarshalExternal(ExternalLocation, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.NewSessionExternal(b, ext, nil, []string{"probs"})
	if err != nil {
		t.Fatalf("NewSessionExternal: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	want := denseOutputs(t, s, d, onnx.Float, 2)
	for _, e := range ext {
		clear(e.Tensor.Float)
	}
	if got := denseOutputs(t, s, d, onnx.Float, 2); !bitsEqual(got, want) {
		t.Fatalf("after clearing the Go weights: probs %v, want %v", got, want)
	}
}

// TestNewSessionFromFileErrors checks that a missing model file, or
// external data that leads out of the model's directory, gives ErrBadModel.
func TestNewSessionFromFileErrors(t *testing.T) {
	r := testRuntime(t)
	dir := t.TempDir()
	d := newDense(8, 5)
	m := d.graph(t, onnx.Float)
	if err := m.SaveExternal(filepath.Join(dir, "dense.onnx"), 1); err != nil {
		t.Fatal(err)
	}
	escaping := d.graph(t, onnx.Float)
	b, _, err := escaping.MarshalExternal("../dense.onnx.data", 1)
	if err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "escaping.onnx"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{
		{"missing", filepath.Join(dir, "nope.onnx")},
		{"escaping external data", filepath.Join(sub, "escaping.onnx")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := r.NewSessionFromFile(tc.path, nil, nil)
			if err == nil {
				_ = s.Close()
				t.Fatal("NewSessionFromFile succeeded")
			}
			t.Log(err)
			if !errors.Is(err, ErrBadModel) {
				t.Fatalf("error %v, want ErrBadModel", err)
			}
		})
	}
}
