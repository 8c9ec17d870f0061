package ort

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// TestRunInto checks that caller-provided output buffers receive the same
// values Run returns, are returned as given, and can be reused.
func TestRunInto(t *testing.T) {
	r := testRuntime(t)
	d := newDense(4, 3)
	s, err := r.NewSession(d.model(t, onnx.Float), nil, nil)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	const batch = 5
	x := input(batch, d.in)
	in := map[string]*Tensor{"x": F32Tensor(toF32(x), batch, int64(d.in))}
	want, err := s.Run(in)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, tc := range []struct {
		name string
		outs func() map[string]*Tensor
	}{
		{"probs only", func() map[string]*Tensor {
			return map[string]*Tensor{"probs": F32Tensor(make([]float32, batch*d.out), batch, int64(d.out))}
		}},
		{"probs and scalar", func() map[string]*Tensor {
			return map[string]*Tensor{
				"probs": F32Tensor(make([]float32, batch*d.out), batch, int64(d.out)),
				"total": F32Tensor(make([]float32, 1)),
			}
		}},
		{"nil buffer means allocate", func() map[string]*Tensor { return map[string]*Tensor{"probs": nil} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outs := tc.outs()
			for rep := range 2 {
				got, err := s.RunInto(in, outs)
				if err != nil {
					t.Fatalf("RunInto (rep %d): %v", rep, err)
				}
				for name, buf := range outs {
					if buf != nil && got[name] != buf {
						t.Fatalf("output %q is not the buffer given", name)
					}
				}
				for _, name := range []string{"probs", "total"} {
					g, w := got[name], want[name]
					if g == nil || len(g.F32) != len(w.F32) {
						t.Fatalf("output %q = %+v, want %+v", name, g, w)
					}
					for i := range w.F32 {
						if math.Abs(float64(g.F32[i]-w.F32[i])) > 1e-6 {
							t.Fatalf("%s[%d] = %v, want %v", name, i, g.F32[i], w.F32[i])
						}
					}
				}
			}
		})
	}
}

func TestRunIntoBadBuffers(t *testing.T) {
	r := testRuntime(t)
	d := newDense(4, 3)
	s, err := r.NewSession(d.model(t, onnx.Float), nil, []string{"probs"})
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	in := map[string]*Tensor{"x": F32Tensor(make([]float32, 8), 2, 4)}
	for _, tc := range []struct {
		name string
		outs map[string]*Tensor
		want error
	}{
		{"not a session output", map[string]*Tensor{"total": F32Tensor(make([]float32, 1))}, ErrBadInput},
		{"unknown output", map[string]*Tensor{"nope": F32Tensor(make([]float32, 6), 2, 3)}, ErrBadInput},
		{"wrong type", map[string]*Tensor{"probs": F64Tensor(make([]float64, 6), 2, 3)}, ErrBadInput},
		{"inconsistent", map[string]*Tensor{"probs": F32Tensor(make([]float32, 5), 2, 3)}, ErrBadInput},
		{"wrong fixed dim", map[string]*Tensor{"probs": F32Tensor(make([]float32, 8), 2, 4)}, ErrBadInput},
		{"wrong batch", map[string]*Tensor{"probs": F32Tensor(make([]float32, 9), 3, 3)}, ErrRun},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.RunInto(in, tc.outs)
			t.Logf("error: %v", err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("RunInto error = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestThreadingOptions runs the test model under each threading option
// and checks the results against the reference.
func TestThreadingOptions(t *testing.T) {
	base := testRuntime(t)
	d := newDense(4, 3)
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no spinning, 2 intra-op threads", func(c *Config) { c.NoSpinning, c.IntraOpThreads = true, 2 }},
		{"parallel execution, 2 inter-op threads", func(c *Config) { c.ParallelExecution, c.InterOpThreads = true, 2 }},
		{"parallel execution without spinning", func(c *Config) { c.ParallelExecution, c.InterOpThreads, c.NoSpinning = true, 2, true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base.Config()
			tc.edit(&c)
			r, err := Init(c, nil)
			if err != nil {
				t.Fatalf("Init: %v", err)
			}
			s, err := r.NewSession(d.model(t, onnx.Double), nil, nil)
			if err != nil {
				t.Fatalf("NewSession: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			x := input(3, d.in)
			out, err := s.Run(map[string]*Tensor{"x": F64Tensor(x, 3, int64(d.in))})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			want, _ := d.reference(x, 3)
			for i, v := range out["probs"].F64 {
				if math.Abs(v-want[i]) > 1e-12 {
					t.Fatalf("probs[%d] = %v, want %v", i, v, want[i])
				}
			}
		})
	}
}

// TestProfileFile checks that a session with the profiler on writes its
// profile when closed.
func TestProfileFile(t *testing.T) {
	base := testRuntime(t)
	c := base.Config()
	c.ProfilePrefix = filepath.Join(t.TempDir(), "prof")
	r, err := Init(c, nil)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	s, err := r.NewSession(newDense(4, 3).model(t, onnx.Float), nil, nil)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	if _, err := s.Run(map[string]*Tensor{"x": F32Tensor(make([]float32, 4), 1, 4)}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	files, err := filepath.Glob(c.ProfilePrefix + "*.json")
	if err != nil || len(files) != 1 {
		t.Fatalf("profile files %v (%v), want one", files, err)
	}
	st, err := os.Stat(files[0])
	if err != nil || st.Size() == 0 {
		t.Fatalf("profile %s: %v, size %v", files[0], err, st)
	}
}
