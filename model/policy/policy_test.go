package policy

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
)

// smallConfig is a policy small enough for fast tests.
func smallConfig() Config {
	return Config{VocabSize: 23, DModel: 16, NLayers: 2, NHeads: 4, DFF: 32, MaxSeq: 24}
}

// newSession builds m, marshals it and opens a session with all inputs and
// the given outputs.
func newSession(t testing.TB, rt *ort.Runtime, m *onnx.Model, outputs ...string) *ort.Session {
	t.Helper()
	data, err := m.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	s, err := rt.NewSession(data, nil, outputs)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testWeights returns Init weights with non-trivial layer-norm parameters and
// biases, so a test catches a graph that ignores them.
func testWeights(t testing.TB, cfg Config, seed uint64) Weights {
	t.Helper()
	w, err := Init(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range w.Names() {
		p := w[name]
		for i := range p.Data {
			switch {
			case len(p.Shape) == 1:
				p.Data[i] += float32(0.1 * math.Sin(float64(i+len(name))))
			default:
				p.Data[i] *= 10 // 0.2 std: sharper attention than the 0.02 init
			}
		}
	}
	return w
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"zero vocab", func(c *Config) { c.VocabSize = 0 }, false},
		{"heads do not divide", func(c *Config) { c.NHeads = 5 }, false},
		{"negative layers", func(c *Config) { c.NLayers = -1 }, false},
		{"huge", func(c *Config) { c.DModel, c.NHeads, c.VocabSize = 1<<14, 1, 1<<20 }, false},
		{"huge seq", func(c *Config) { c.MaxSeq = 1 << 20 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig(64)
			tt.mod(&c)
			err := c.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}

func TestInitDeterministic(t *testing.T) {
	cfg := smallConfig()
	a, _ := Init(cfg, 7)
	b, _ := Init(cfg, 7)
	c, _ := Init(cfg, 8)
	if err := a.Check(cfg); err != nil {
		t.Fatal(err)
	}
	same, diff := true, false
	for name, p := range a {
		for i, v := range p.Data {
			same = same && v == b[name].Data[i]
			diff = diff || v != c[name].Data[i]
		}
	}
	if !same || !diff {
		t.Fatalf("same seed equal=%v, other seed differs=%v", same, diff)
	}
	if got, want := int64(0), cfg.NumParams(); func() int64 {
		for _, p := range a {
			got += int64(len(p.Data))
		}
		return got
	}() != want {
		t.Fatalf("NumParams %d, weights hold %d", want, got)
	}
}

func TestWeightsCheck(t *testing.T) {
	cfg := smallConfig()
	tests := []struct {
		name string
		mod  func(Weights)
	}{
		{"missing", func(w Weights) { delete(w, ParamLMHead) }},
		{"extra", func(w Weights) { w["bogus"] = Param{Shape: []int64{1}, Data: []float32{0}} }},
		{"shape", func(w Weights) { p := w[ParamLNFBias]; p.Shape = []int64{2, 8}; w[ParamLNFBias] = p }},
		{"data", func(w Weights) { p := w[ParamLNFBias]; p.Data = p.Data[:3]; w[ParamLNFBias] = p }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := Init(cfg, 1)
			tt.mod(w)
			if err := w.Check(cfg); !errors.Is(err, ErrWeights) {
				t.Fatalf("Check = %v, want ErrWeights", err)
			}
			if _, err := FullGraph(cfg, w, onnx.Float); !errors.Is(err, ErrWeights) {
				t.Fatalf("FullGraph = %v, want ErrWeights", err)
			}
		})
	}
}

func TestNewBatch(t *testing.T) {
	seqs := [][]int32{{5, 6, 7}, {8}}
	b, err := NewBatch(seqs, 0, true, 8)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs := []int64{5, 6, 7, 0, 0, 8}
	wantMask := []int64{1, 1, 1, 0, 0, 1}
	wantPos := []int64{0, 1, 2, 0, 0, 0}
	for i := range wantIDs {
		if b.IDs[i] != wantIDs[i] || b.Mask[i] != wantMask[i] || b.Positions[i] != wantPos[i] {
			t.Fatalf("left batch = %v %v %v", b.IDs, b.Mask, b.Positions)
		}
	}
	r, _ := NewBatch(seqs, 0, false, 8)
	if r.IDs[3] != 8 || r.Mask[4] != 0 || r.Offset[1] != 0 {
		t.Fatalf("right batch = %v %v", r.IDs, r.Mask)
	}
	for _, bad := range [][][]int32{nil, {{}}, {make([]int32, 9)}} {
		if _, err := NewBatch(bad, 0, true, 8); !errors.Is(err, ErrBatch) {
			t.Fatalf("NewBatch(%v) = %v, want ErrBatch", bad, err)
		}
	}
}

// runFull runs the full graph on b and returns logits and hidden.
func runFull(t testing.TB, s *ort.Session, b *Batch) (logits, hidden *ort.Tensor) {
	t.Helper()
	shape := []int64{int64(b.Rows), int64(b.Len)}
	out, err := s.Run(map[string]*ort.Tensor{
		InputIDs:  ort.I64Tensor(b.IDs, shape...),
		InputMask: ort.I64Tensor(b.Mask, shape...),
	})
	if err != nil {
		t.Fatalf("full Run: %v", err)
	}
	return out[OutputLogits], out[OutputHidden]
}

// TestFullGraphPaddingInvariant checks that padding does not change the
// logits of real tokens, and that the float32 and float64 graphs agree.
func TestFullGraphPaddingInvariant(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg := smallConfig()
	w := testWeights(t, cfg, 3)
	m32, err := FullGraph(cfg, w, onnx.Float)
	if err != nil {
		t.Fatal(err)
	}
	m64, err := FullGraph(cfg, w, onnx.Double)
	if err != nil {
		t.Fatal(err)
	}
	s32 := newSession(t, rt, m32, OutputLogits, OutputHidden)
	s64 := newSession(t, rt, m64, OutputLogits, OutputHidden)

	seq := []int32{4, 9, 13, 2, 17}
	single, _ := NewBatch([][]int32{seq}, 0, true, cfg.MaxSeq)
	one, hid := runFull(t, s32, single)
	if len(one.F32) != len(seq)*cfg.VocabSize || len(hid.F32) != len(seq)*cfg.DModel {
		t.Fatalf("shapes: logits %v hidden %v", one.Shape, hid.Shape)
	}
	for _, left := range []bool{true, false} {
		b, _ := NewBatch([][]int32{{1, 2, 3, 4, 5, 6, 7, 8}, seq}, 0, left, cfg.MaxSeq)
		got, _ := runFull(t, s32, b)
		v := cfg.VocabSize
		for j := range seq {
			row := (b.Len + b.Offset[1] + j) * v
			for k := 0; k < v; k++ {
				if d := math.Abs(float64(got.F32[row+k] - one.F32[j*v+k])); d > 1e-4 {
					t.Fatalf("left=%v token %d logit %d: padded %v alone %v", left, j, k, got.F32[row+k], one.F32[j*v+k])
				}
			}
		}
	}
	l64, _ := runFull(t, s64, single)
	for i, v := range l64.F64 {
		if math.Abs(v-float64(one.F32[i])) > 1e-4 {
			t.Fatalf("float64 logit %d = %v, float32 %v", i, v, one.F32[i])
		}
	}
}

// TestCheckSpecsSentinel checks CheckSpecs wraps the caller's sentinel and
// names the tensor at fault.
func TestCheckSpecsSentinel(t *testing.T) {
	errOwn := errors.New("own sentinel")
	specs := []ParamSpec{{"a", []int64{2}}, {"b", []int64{1, 3}}}
	good := Weights{"a": {Shape: []int64{2}, Data: make([]float32, 2)}, "b": {Shape: []int64{1, 3}, Data: make([]float32, 3)}}
	if err := good.CheckSpecs(specs, errOwn); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(Weights)
		msg  string
	}{
		{"missing", func(w Weights) { delete(w, "b") }, `missing tensor "b"`},
		{"extra", func(w Weights) { w["c"] = Param{Shape: []int64{1}, Data: []float32{0}} }, `unexpected tensor "c"`},
		{"shape", func(w Weights) { w["a"] = Param{Shape: []int64{1, 2}, Data: make([]float32, 2)} }, `tensor "a" has shape [1 2], want [2]`},
		{"data", func(w Weights) { w["b"] = Param{Shape: []int64{1, 3}, Data: make([]float32, 2)} }, `tensor "b" has 2 values, want 3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := good.Clone()
			tt.mod(w)
			err := w.CheckSpecs(specs, errOwn)
			if !errors.Is(err, errOwn) || errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("CheckSpecs = %v, want the own sentinel mentioning %q", err, tt.msg)
			}
		})
	}
	if err := (Weights{}).CheckSpecs(specs, nil); !errors.Is(err, ErrWeights) {
		t.Fatalf("CheckSpecs(nil sentinel) = %v, want ErrWeights", err)
	}
}
