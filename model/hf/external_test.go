package hf

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// externalSession opens m with every initializer handed to ONNX Runtime
// as in-memory external data (the path a model of 2 GiB or more takes,
// forced here by a threshold of one byte).
func externalSession(tb testing.TB, rt *ort.Runtime, m *onnx.Model) *ort.Session {
	tb.Helper()
	b, ext, err := m.MarshalExternal(ort.ExternalLocation, 1)
	if err != nil {
		tb.Fatalf("MarshalExternal: %v", err)
	}
	if len(ext) < len(m.Graph.Initializers)/2 {
		tb.Fatalf("only %d of %d initializers external", len(ext), len(m.Graph.Initializers))
	}
	s, err := rt.NewSessionExternal(b, ext, nil, nil)
	if err != nil {
		tb.Fatalf("NewSessionExternal: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// fileSession saves m with external data in a temporary directory and
// opens the file.
func fileSession(tb testing.TB, rt *ort.Runtime, m *onnx.Model) *ort.Session {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "model.onnx")
	if err := m.SaveExternal(path, 1); err != nil {
		tb.Fatalf("SaveExternal: %v", err)
	}
	s, err := rt.NewSessionFromFile(path, nil, nil)
	if err != nil {
		tb.Fatalf("NewSessionFromFile: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// sameOutputs fails unless got and want hold the same outputs, bit for bit.
func sameOutputs(tb testing.TB, what string, got, want map[string]*ort.Tensor) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d outputs, want %d", what, len(got), len(want))
	}
	for name, w := range want {
		g := got[name]
		if g == nil || g.Type != w.Type || g.Len() != w.Len() {
			tb.Fatalf("%s: output %q is %+v, want type %s with %d elements", what, name, g, w.Type, w.Len())
		}
		for i := range w.F32 {
			if math.Float32bits(g.F32[i]) != math.Float32bits(w.F32[i]) {
				tb.Fatalf("%s: %s[%d] = %v, want %v", what, name, i, g.F32[i], w.F32[i])
			}
		}
		for i := range w.F64 {
			if math.Float64bits(g.F64[i]) != math.Float64bits(w.F64[i]) {
				tb.Fatalf("%s: %s[%d] = %v, want %v", what, name, i, g.F64[i], w.F64[i])
			}
		}
	}
}

// TestGraphsExternalMatchInline checks that every graph of every tiny
// architecture computes the same outputs, bit for bit, whether its weights
// are encoded in the protobuf or reach ONNX Runtime as external data, from
// memory or from a file.
func TestGraphsExternalMatchInline(t *testing.T) {
	rt := orttest.Runtime(t)
	for _, arch := range []string{ArchQwen2, ArchQwen3, ArchLlama} {
		ck := loadTiny(t, arch, 7)
		c := ck.Config
		ids, mask := []int64{5, 17, 3, 44, 9, 0, 30, 2, 51, 19}, []int64{1, 1, 1, 1, 1, 0, 1, 1, 1, 1}
		full := func() (map[string]*ort.Tensor, map[string]*ort.Tensor) {
			return map[string]*ort.Tensor{
				policy.InputIDs:  ort.I64Tensor(ids, 2, 5),
				policy.InputMask: ort.I64Tensor(mask, 2, 5),
			}, nil
		}
		kv := func(capacity int) func() (map[string]*ort.Tensor, map[string]*ort.Tensor) {
			return func() (map[string]*ort.Tensor, map[string]*ort.Tensor) {
				return decodeInputs(c.NumLayers, int64(c.NumKVHeads), int64(c.HeadDim), 4, capacity)
			}
		}
		for _, tc := range []struct {
			name   string
			build  graphFunc
			dt     onnx.DataType
			inputs func() (in, bound map[string]*ort.Tensor)
		}{
			{"full float32", FullGraph, onnx.Float, full},
			{"full float64", FullGraph, onnx.Double, full},
			{"kv", KVGraph, onnx.Float, kv(0)},
			{"fused kv", FusedKVGraph, onnx.Float, kv(8)},
		} {
			t.Run(arch+"/"+tc.name, func(t *testing.T) {
				m, err := tc.build(c, ck.Weights, GraphOptions{MaxSeq: 32, DType: tc.dt})
				if err != nil {
					t.Fatal(err)
				}
				run := func(s *ort.Session) map[string]*ort.Tensor {
					in, bound := tc.inputs() // fresh buffers: a bound cache is written in place
					out, err := s.RunInto(in, bound)
					if err != nil {
						t.Fatalf("Run: %v", err)
					}
					return out
				}
				want := run(newSession(t, rt, m))
				sameOutputs(t, "in-memory external data", run(externalSession(t, rt, m)), want)
				sameOutputs(t, "external data file", run(fileSession(t, rt, m)), want)
			})
		}
	}
}

// bigTestsEnv enables tests that need several GiB of memory.
const bigTestsEnv = "WSGRPO_BIG_TESTS"

// peakRSS returns the process's peak resident set (VmHWM) in MiB, or -1.
func peakRSS() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			if kb, err := strconv.Atoi(f[1]); err == nil {
				return kb >> 10
			}
		}
	}
	return -1
}

// TestGraphOver2GiB builds a Qwen2-style model whose tied embedding alone
// is 2.3 GiB (vocabulary 600,000 × width 1024, float32; one small layer),
// which one protobuf cannot hold, opens its full-sequence graph and its
// fused sampling graph through ort.Runtime.NewModelSession, and checks the
// logits of a short prompt against the float64 reference forward; then the
// full graph once more, saved with SaveExternal and opened from the file.
// It needs about 7.5 GiB of memory (the Go weights, ONNX Runtime's copy,
// and its transposed copy of the embedding for the tied output
// projection) and 2.3 GiB of temporary disk, so it runs only when
// WSGRPO_BIG_TESTS=1.
func TestGraphOver2GiB(t *testing.T) {
	if os.Getenv(bigTestsEnv) != "1" {
		t.Skipf("skipping: needs ~7.5 GiB of memory; set %s=1 to run", bigTestsEnv)
	}
	rt := orttest.Runtime(t)
	c := Config{Arch: ArchQwen2, VocabSize: 600_000, HiddenSize: 1024, IntermediateSize: 256, NumLayers: 1,
		NumHeads: 8, NumKVHeads: 4, HeadDim: 128, RopeTheta: 1e6, RMSNormEps: 1e-6, TieWordEmbeddings: true,
		QKVBias: true, MaxPositions: 64, BOS: -1}
	start := time.Now()
	w := bigWeights(c, 3)
	t.Logf("weights: %.2f GiB in %v, peak RSS %d MiB", float64(4*c.NumParams())/(1<<30), time.Since(start).Round(time.Millisecond), peakRSS())
	ids := []int{7, 599_999, 123_456, 42}
	ref := refModel{a: refArch{arch: ArchQwen2, vocab: c.VocabSize, hidden: c.HiddenSize, inter: c.IntermediateSize,
		layers: c.NumLayers, heads: c.NumHeads, kvHeads: c.NumKVHeads, headDim: c.HeadDim, maxPos: c.MaxPositions,
		theta: c.RopeTheta, eps: c.RMSNormEps, tied: true, qkvBias: true}, w: map[string]refTensor{}}
	for name, p := range w {
		ref.w[name] = refTensor{shape: p.Shape, data: p.Data}
	}
	refLogits, _ := ref.forward(ids)

	T := int64(len(ids))
	ids64, mask, pos := make([]int64, T), make([]int64, T), make([]int64, T)
	for i, id := range ids {
		ids64[i], mask[i], pos[i] = int64(id), 1, int64(i)
	}
	fused := map[string]*ort.Tensor{
		policy.InputIDs:       ort.I64Tensor(ids64, 1, T),
		policy.InputMask:      ort.I64Tensor(mask, 1, T),
		policy.InputPositions: ort.I64Tensor(pos, 1, T),
	}
	bound := map[string]*ort.Tensor{}
	for l := 0; l < c.NumLayers; l++ {
		for _, name := range []string{policy.PastKeyName(l), policy.PastValueName(l)} {
			fused[name] = ort.F32Tensor(make([]float32, c.NumKVHeads*8*c.HeadDim), 1, int64(c.NumKVHeads), 8, int64(c.HeadDim))
		}
		bound[policy.PresentKeyName(l)] = fused[policy.PastKeyName(l)]
		bound[policy.PresentValueName(l)] = fused[policy.PastValueName(l)]
	}
	full := map[string]*ort.Tensor{
		policy.InputIDs:  ort.I64Tensor(ids64, 1, T),
		policy.InputMask: ort.I64Tensor(mask, 1, T),
	}
	for _, tc := range []struct {
		name  string
		build graphFunc
		file  bool // through SaveExternal and NewSessionFromFile
		in    map[string]*ort.Tensor
		bound map[string]*ort.Tensor
	}{
		{"full", FullGraph, false, full, nil},
		{"fused kv", FusedKVGraph, false, fused, bound},
		{"full from file", FullGraph, true, full, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			m, err := tc.build(c, w, GraphOptions{MaxSeq: 64})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Marshal(); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Marshal = %v, want ErrTooLarge", err)
			}
			built := time.Since(start)
			var s *ort.Session
			if tc.file {
				path := filepath.Join(t.TempDir(), "model.onnx")
				if err = m.SaveExternal(path, onnx.DefaultExternalThreshold); err == nil {
					t.Logf("%s: saved in %v", tc.name, (time.Since(start) - built).Round(time.Millisecond))
					start = time.Now().Add(-built) // the session's time below is the opening alone
					s, err = rt.NewSessionFromFile(path, nil, nil)
				}
			} else {
				s, err = rt.NewModelSession(m, nil, nil)
			}
			if err != nil {
				t.Fatalf("opening the session: %v", err)
			}
			defer func() { _ = s.Close() }()
			opened := time.Since(start) - built
			out, err := s.RunInto(tc.in, tc.bound)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			ran := time.Since(start) - built - opened
			logits := out[policy.OutputLogits].F32
			e := &errTracker{t: t, tol: tolF32}
			for j := range ids {
				for k := 0; k < c.VocabSize; k += 997 {
					e.check("logits", float64(logits[j*c.VocabSize+k]), refLogits[j][k])
				}
				e.check("logits", float64(logits[(j+1)*c.VocabSize-1]), refLogits[j][c.VocabSize-1])
			}
			t.Logf("%s: graph built in %v, session opened in %v, first run %v; peak RSS %d MiB; max |graph - reference| %.3g",
				tc.name, built.Round(time.Millisecond), opened.Round(time.Millisecond), ran.Round(time.Millisecond), peakRSS(), e.worst)
		})
	}
}

// bigWeights returns weights for c like randomWeights, with a cheaper
// generator (uniform on ±0.0866, the standard deviation 0.05 of
// randomWeights' normal) for the hundreds of millions of values of a large
// embedding.
func bigWeights(c Config, seed uint64) policy.Weights {
	rng := rand.New(rand.NewPCG(seed, 2))
	w := policy.Weights{}
	for _, s := range c.ParamSpecs() {
		v := make([]float32, s.NumElements())
		for i := range v {
			if strings.HasSuffix(s.Name, "norm.weight") {
				v[i] = 1
			} else {
				v[i] = float32((rng.Float64()*2 - 1) * 0.0866)
			}
		}
		w[s.Name] = policy.Param{Shape: s.Shape, Data: v}
	}
	return w
}
