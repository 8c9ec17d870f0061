package ort

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

func TestRunMatchesReference(t *testing.T) {
	r := testRuntime(t)
	d := newDense(4, 3)
	for _, tc := range []struct {
		name  string
		dt    onnx.DataType
		batch int
		tol   float64
	}{
		{"float32/batch0", onnx.Float, 0, 1e-5},
		{"float32/batch1", onnx.Float, 1, 1e-5},
		{"float32/batch5", onnx.Float, 5, 1e-5},
		{"float64/batch1", onnx.Double, 1, 1e-12},
		{"float64/batch5", onnx.Double, 5, 1e-12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := r.NewSession(d.model(t, tc.dt), []string{"x"}, []string{"probs", "total"})
			if err != nil {
				t.Fatalf("NewSession: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			x := input(tc.batch, d.in)
			in := F64Tensor(x, int64(tc.batch), int64(d.in))
			if tc.dt == onnx.Float {
				in = F32Tensor(toF32(x), int64(tc.batch), int64(d.in))
			}
			out, err := s.Run(map[string]*Tensor{"x": in})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			wantProbs, wantTotal := d.reference(x, tc.batch)
			probs, total := out["probs"], out["total"]
			if probs == nil || total == nil {
				t.Fatalf("outputs %v missing probs or total", out)
			}
			if got, want := fmt.Sprint(probs.Shape), fmt.Sprint([]int64{int64(tc.batch), int64(d.out)}); got != want {
				t.Fatalf("probs shape %s, want %s", got, want)
			}
			if len(total.Shape) != 0 || total.Type != tc.dt {
				t.Fatalf("total: shape %v type %s, want scalar %s", total.Shape, total.Type, tc.dt)
			}
			got := asF64(probs)
			for i := range wantProbs {
				if math.Abs(got[i]-wantProbs[i]) > tc.tol {
					t.Fatalf("probs[%d] = %v, want %v", i, got[i], wantProbs[i])
				}
			}
			if g := asF64(total)[0]; math.Abs(g-wantTotal) > tc.tol*float64(tc.batch*d.out) {
				t.Fatalf("total = %v, want %v", g, wantTotal)
			}
		})
	}
}

func toF32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func asF64(t *Tensor) []float64 {
	if t.Type == onnx.Double {
		return t.F64
	}
	out := make([]float64, len(t.F32))
	for i, v := range t.F32 {
		out[i] = float64(v)
	}
	return out
}

func TestRunBadInput(t *testing.T) {
	r := testRuntime(t)
	d := newDense(4, 3)
	s, err := r.NewSession(d.model(t, onnx.Float), nil, nil)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	good := F32Tensor(make([]float32, 8), 2, 4)
	for _, tc := range []struct {
		name   string
		inputs map[string]*Tensor
	}{
		{"missing", map[string]*Tensor{}},
		{"extra", map[string]*Tensor{"x": good, "y": good}},
		{"nil", map[string]*Tensor{"x": nil}},
		{"wrong type", map[string]*Tensor{"x": F64Tensor(make([]float64, 8), 2, 4)}},
		{"too few elements", map[string]*Tensor{"x": F32Tensor(make([]float32, 7), 2, 4)}},
		{"wrong rank", map[string]*Tensor{"x": F32Tensor(make([]float32, 8), 8)}},
		{"wrong fixed dim", map[string]*Tensor{"x": F32Tensor(make([]float32, 10), 2, 5)}},
		{"negative dim", map[string]*Tensor{"x": F32Tensor(nil, -2, 4)}},
		{"two slices", map[string]*Tensor{"x": {Type: onnx.Float, Shape: []int64{2, 4}, F32: make([]float32, 8), I64: []int64{1}}}},
		{"unsupported type", map[string]*Tensor{"x": {Type: onnx.Float16, Shape: []int64{2, 4}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Run(tc.inputs)
			t.Logf("error: %v", err)
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("Run error = %v, want ErrBadInput", err)
			}
		})
	}
	if _, err := s.Run(map[string]*Tensor{"x": good}); err != nil {
		t.Fatalf("good input after bad ones: %v", err)
	}
}

func TestNewSessionErrors(t *testing.T) {
	r := testRuntime(t)
	d := newDense(4, 3)
	valid := d.model(t, onnx.Float)
	unknownOp := onnx.NewBuilder("bad")
	x := unknownOp.Input("x", onnx.Float, onnx.Dims(2)...)
	unknownOp.Named("NoSuchOperator", []string{x}, []string{"y"})
	unknownOp.Output("y", onnx.Float, onnx.Dims(2)...)
	badOp, err := onnx.NewModel(unknownOp.Graph(), 17).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		model   []byte
		in, out []string
		want    error
	}{
		{"garbage", []byte("this is not an onnx model at all"), nil, nil, ErrBadModel},
		{"empty", nil, nil, nil, ErrBadModel},
		{"truncated", valid[:len(valid)/2], nil, nil, ErrBadModel},
		{"unknown operator", badOp, nil, nil, ErrBadModel},
		{"unknown input name", valid, []string{"nope"}, nil, ErrBadInput},
		{"unknown output name", valid, nil, []string{"nope"}, ErrBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := r.NewSession(tc.model, tc.in, tc.out)
			if err == nil {
				_ = s.Close()
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("NewSession error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSessionClose(t *testing.T) {
	r := testRuntime(t)
	s, err := r.NewSession(newDense(4, 3).model(t, onnx.Float), nil, nil)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	in := map[string]*Tensor{"x": F32Tensor(make([]float32, 4), 1, 4)}
	out, err := s.Run(in)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Run(in); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
	if len(out["probs"].F32) != 3 {
		t.Fatalf("output after Close has %d values, want 3", len(out["probs"].F32))
	}
}

func TestConcurrentRun(t *testing.T) {
	r := testRuntime(t)
	d := newDense(4, 3)
	s, err := r.NewSession(d.model(t, onnx.Double), nil, nil)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := g + 1
			x := input(batch, d.in)
			out, err := s.Run(map[string]*Tensor{"x": F64Tensor(x, int64(batch), int64(d.in))})
			if err != nil {
				errs <- err
				return
			}
			want, _ := d.reference(x, batch)
			for i, v := range out["probs"].F64 {
				if math.Abs(v-want[i]) > 1e-12 {
					errs <- fmt.Errorf("batch %d: probs[%d] = %v, want %v", batch, i, v, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestScalarOutputs covers rank-0 outputs: declared scalars come back as
// scalars; a scalar output whose rank was left undeclared fails with ErrRun
// and a hint, rather than crashing.
func TestScalarOutputs(t *testing.T) {
	r := testRuntime(t)
	for _, tc := range []struct {
		name    string
		dt      onnx.DataType
		declare func(b *onnx.Builder, dt onnx.DataType)
		wantErr error
	}{
		{"float32 declared", onnx.Float, func(b *onnx.Builder, dt onnx.DataType) { b.Output("s", dt) }, nil},
		{"int64 declared", onnx.Int64, func(b *onnx.Builder, dt onnx.DataType) { b.Output("s", dt) }, nil},
		{"int32 declared", onnx.Int32, func(b *onnx.Builder, dt onnx.DataType) { b.Output("s", dt) }, nil},
		{"undeclared rank", onnx.Float, func(b *onnx.Builder, dt onnx.DataType) { b.OutputAnyShape("s", dt) }, ErrRun},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := onnx.NewBuilder("scalar")
			x := b.Input("x", tc.dt, onnx.Dims(3)...)
			b.Named("ReduceSum", []string{x}, []string{"s"}, onnx.AttrI("keepdims", 0))
			tc.declare(b, tc.dt)
			m, err := onnx.NewModel(b.Graph(), 17).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			s, err := r.NewSession(m, nil, nil)
			if err != nil {
				t.Fatalf("NewSession: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			in := map[string]*Tensor{"x": F32Tensor([]float32{1, 2, 3.5}, 3)}
			switch tc.dt {
			case onnx.Int64:
				in["x"] = I64Tensor([]int64{1, 2, 4}, 3)
			case onnx.Int32:
				in["x"] = I32Tensor([]int32{1, 2, 4}, 3)
			}
			out, err := s.Run(in)
			if tc.wantErr != nil {
				t.Logf("error: %v", err)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Run error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := out["s"]
			if len(got.Shape) != 0 || got.Len() != 1 {
				t.Fatalf("s = %+v, want a scalar", got)
			}
			var v float64
			switch tc.dt {
			case onnx.Float:
				v = float64(got.F32[0])
			case onnx.Int64:
				v = float64(got.I64[0])
			case onnx.Int32:
				v = float64(got.I32[0])
			}
			if want := map[onnx.DataType]float64{onnx.Float: 6.5, onnx.Int64: 7, onnx.Int32: 7}[tc.dt]; v != want {
				t.Fatalf("s = %v, want %v", v, want)
			}
		})
	}
}

func TestBoolTensors(t *testing.T) {
	r := testRuntime(t)
	b := onnx.NewBuilder("bool")
	x := b.Input("x", onnx.Int64, onnx.Dim{Param: "n"})
	mask := b.Input("mask", onnx.Bool, onnx.Dim{Param: "n"})
	gt := b.Op("Greater", []string{x, b.Constant(onnx.Int64s(1))})
	b.Named("And", []string{gt, mask}, []string{"both"})
	b.Output("both", onnx.Bool, onnx.Dim{Param: "n"})
	m, err := onnx.NewModel(b.Graph(), 17).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.NewSession(m, nil, nil)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	out, err := s.Run(map[string]*Tensor{
		"x":    I64Tensor([]int64{0, 2, 3, 5}, 4),
		"mask": BoolTensor([]bool{true, true, false, true}, 4),
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := fmt.Sprint(out["both"].Bool), fmt.Sprint([]bool{false, true, false, true}); got != want {
		t.Fatalf("both = %s, want %s", got, want)
	}
}
