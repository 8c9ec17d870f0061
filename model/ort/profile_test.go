package ort

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

func TestReadProfile(t *testing.T) {
	const trace = `[
{"cat":"Session","name":"model_run","dur":100,"args":{}},
{"cat":"Node","name":"mm_kernel_time","dur":40,"args":{"op_name":"MatMul"}},
{"cat":"Node","name":"mm_fence_before","dur":1,"args":{"op_name":"MatMul"}},
{"cat":"Node","name":"add_kernel_time","dur":10,"args":{"op_name":"Add"}},
{"cat":"Session","name":"model_run","dur":80,"args":{}},
{"cat":"Node","name":"mm_kernel_time","dur":30,"args":{"op_name":"MatMul"}},
{"cat":"Node","name":"add_kernel_time","dur":12,"args":{"op_name":"Add"}}
]`
	p, err := ReadProfile(strings.NewReader(trace))
	if err != nil {
		t.Fatalf("ReadProfile: %v", err)
	}
	us := time.Microsecond
	if len(p.Runs) != 2 || p.Runs[0] != 100*us || p.Runs[1] != 80*us {
		t.Fatalf("runs %v", p.Runs)
	}
	if n := p.Nodes["mm"]; n.Op != "MatMul" || n.Calls != 2 || n.Total != 70*us || n.Min != 30*us {
		t.Fatalf("mm %+v", n)
	}
	for _, tc := range []struct {
		name           string
		keep           func(string) bool
		total, fastest time.Duration
	}{
		{"all", nil, 92 * us, 40 * us},
		{"matmul", func(op string) bool { return op == "MatMul" }, 70 * us, 30 * us},
		{"none", func(string) bool { return false }, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total, fastest := p.KernelTime(tc.keep)
			if total != tc.total || fastest != tc.fastest {
				t.Fatalf("KernelTime = %v, %v; want %v, %v", total, fastest, tc.total, tc.fastest)
			}
		})
	}
}

func TestReadProfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"not json", "nope"},
		{"object", `{"cat":"Node"}`},
		{"negative", `[{"cat":"Node","name":"x_kernel_time","dur":-1}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadProfile(strings.NewReader(tc.in)); !errors.Is(err, ErrProfile) {
				t.Fatalf("ReadProfile error = %v, want ErrProfile", err)
			}
		})
	}
}

// TestReadSessionProfile reads the profile a real session writes.
func TestReadSessionProfile(t *testing.T) {
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
	for range 3 {
		if _, err := s.Run(map[string]*Tensor{"x": F32Tensor(make([]float32, 8), 2, 4)}); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	files, err := filepath.Glob(c.ProfilePrefix + "*.json")
	if err != nil || len(files) != 1 {
		t.Fatalf("profile files %v (%v), want one", files, err)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	p, err := ReadProfile(f)
	if err != nil {
		t.Fatalf("ReadProfile: %v", err)
	}
	if len(p.Runs) != 3 {
		t.Fatalf("%d runs, want 3", len(p.Runs))
	}
	ops := map[string]bool{}
	for _, n := range p.Nodes {
		ops[n.Op] = true
		if n.Calls != 3 {
			t.Fatalf("node %+v ran %d times, want 3", n, n.Calls)
		}
	}
	if !ops["Softmax"] || !ops["ReduceSum"] {
		t.Fatalf("ops %v lack Softmax or ReduceSum", ops)
	}
}

func FuzzReadProfile(f *testing.F) {
	f.Add(`[{"cat":"Session","name":"model_run","dur":5},{"cat":"Node","name":"a_kernel_time","dur":3,"args":{"op_name":"Add"}}]`)
	f.Add(`[]`)
	f.Add(`[{"dur":-3}]`)
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ReadProfile(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrProfile) {
				t.Fatalf("error %v does not wrap ErrProfile", err)
			}
			return
		}
		total, fastest := p.KernelTime(nil)
		if total < 0 || fastest < 0 || fastest > total {
			t.Fatalf("KernelTime = %v, %v", total, fastest)
		}
	})
}
