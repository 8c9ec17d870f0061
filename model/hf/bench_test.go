package hf

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// benchConfig is a Qwen2-style model of the built-in policy's default size
// (policy.DefaultConfig: width 128, 4 layers, 4 heads, MLP width 512). Its
// SwiGLU MLP has three matrices where the built-in GELU MLP has two, so its
// width is 344, about 2/3 of 512 (Llama's rule), for the same parameter
// count and FLOPs per token.
func benchConfig() Config {
	return Config{Arch: ArchQwen2, VocabSize: 128, HiddenSize: 128, IntermediateSize: 344, NumLayers: 4,
		NumHeads: 4, NumKVHeads: 4, HeadDim: 32, RopeTheta: 1e6, RMSNormEps: 1e-6, TieWordEmbeddings: true,
		QKVBias: true, MaxPositions: 256, BOS: -1}
}

// randomWeights returns random weights for c: matrices ~ N(0, 0.05²), norm
// weights 1.
func randomWeights(c Config, seed uint64) policy.Weights {
	rng := rand.New(rand.NewPCG(seed, 1))
	w := policy.Weights{}
	for _, s := range c.ParamSpecs() {
		v := make([]float32, s.NumElements())
		for i := range v {
			if strings.HasSuffix(s.Name, "norm.weight") {
				v[i] = 1
			} else {
				v[i] = float32(rng.NormFloat64() * 0.05)
			}
		}
		w[s.Name] = policy.Param{Shape: s.Shape, Data: v}
	}
	return w
}

// benchBatch is the benchmarks' batch: rows × cols tokens.
const (
	benchRows = 8
	benchCols = 64
)

// BenchmarkFullForward times one full-sequence forward of an 8×64 batch:
// the Hugging Face graph against the built-in policy's of the same width.
func BenchmarkFullForward(b *testing.B) {
	rt := orttest.Runtime(b)
	c := benchConfig()
	hfModel, err := FullGraph(c, randomWeights(c, 1), GraphOptions{MaxSeq: 256})
	if err != nil {
		b.Fatal(err)
	}
	pc := policy.DefaultConfig(c.VocabSize)
	pw, err := policy.Init(pc, 1)
	if err != nil {
		b.Fatal(err)
	}
	builtin, err := policy.FullGraph(pc, pw, onnx.Float)
	if err != nil {
		b.Fatal(err)
	}
	ids, mask := make([]int64, benchRows*benchCols), make([]int64, benchRows*benchCols)
	for i := range ids {
		ids[i], mask[i] = int64(i%c.VocabSize), 1
	}
	in := map[string]*ort.Tensor{
		policy.InputIDs:  ort.I64Tensor(ids, benchRows, benchCols),
		policy.InputMask: ort.I64Tensor(mask, benchRows, benchCols),
	}
	for _, bc := range []struct {
		name string
		m    *onnx.Model
	}{{"hf", hfModel}, {"builtin", builtin}} {
		b.Run(bc.name, func(b *testing.B) {
			s := newSession(b, rt, bc.m, policy.OutputLogits)
			for b.Loop() {
				if _, err := s.Run(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchRows*benchCols)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkDecodeStep times one decode step of 8 rows over a 64-position
// cache through the sampling graphs: the Hugging Face KVGraph and
// FusedKVGraph against the built-in policy's KVGraph and InPlaceKVGraph of
// the same width.
func BenchmarkDecodeStep(b *testing.B) {
	rt := orttest.Runtime(b)
	c := benchConfig()
	hfModel, err := KVGraph(c, randomWeights(c, 1), GraphOptions{MaxSeq: 256})
	if err != nil {
		b.Fatal(err)
	}
	fused, err := FusedKVGraph(c, randomWeights(c, 1), GraphOptions{MaxSeq: 256})
	if err != nil {
		b.Fatal(err)
	}
	pc := policy.DefaultConfig(c.VocabSize)
	pw, err := policy.Init(pc, 1)
	if err != nil {
		b.Fatal(err)
	}
	builtin, err := policy.KVGraph(pc, pw)
	if err != nil {
		b.Fatal(err)
	}
	builtinInPlace, err := policy.InPlaceKVGraph(pc, pw)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name        string
		m           *onnx.Model
		heads, hdim int64
		layers      int
		capacity    int // of an in-place cache; 0 for a growing one
	}{
		{"hf", hfModel, int64(c.NumKVHeads), int64(c.HeadDim), c.NumLayers, 0},
		{"hf-fused", fused, int64(c.NumKVHeads), int64(c.HeadDim), c.NumLayers, 2 * benchCols},
		{"builtin", builtin, int64(pc.NHeads), int64(pc.HeadDim()), pc.NLayers, 0},
		{"builtin-inplace", builtinInPlace, int64(pc.NHeads), int64(pc.HeadDim()), pc.NLayers, 2 * benchCols},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in, bound := decodeInputs(bc.layers, bc.heads, bc.hdim, benchCols, bc.capacity)
			outs := []string{policy.OutputLogits}
			for l := 0; l < bc.layers; l++ {
				outs = append(outs, policy.PresentKeyName(l), policy.PresentValueName(l))
			}
			s := newSession(b, rt, bc.m, outs...)
			for b.Loop() {
				if _, err := s.RunInto(in, bound); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// decodeInputs returns the inputs of one decode step of benchRows rows: one
// new token per row after past cached positions. With a capacity, the cache is a
// fixed-size buffer of that many positions, and bound binds each present
// output to its past input's buffer.
func decodeInputs(layers int, heads, hdim int64, past, capacity int) (in, bound map[string]*ort.Tensor) {
	return decodeRowsInputs(benchRows, layers, heads, hdim, past, capacity)
}

// decodeRowsInputs is decodeInputs for a batch of the given rows.
func decodeRowsInputs(rows, layers int, heads, hdim int64, past, capacity int) (in, bound map[string]*ort.Tensor) {
	ids, pos := make([]int64, rows), make([]int64, rows)
	mask := make([]int64, rows*(past+1))
	for i := range ids {
		ids[i], pos[i] = int64(i+3), int64(past)
	}
	for i := range mask {
		mask[i] = 1
	}
	in = map[string]*ort.Tensor{
		policy.InputIDs:       ort.I64Tensor(ids, int64(rows), 1),
		policy.InputPositions: ort.I64Tensor(pos, int64(rows), 1),
		policy.InputMask:      ort.I64Tensor(mask, int64(rows), int64(past+1)),
	}
	size := int64(past)
	if capacity > 0 {
		size = int64(capacity)
		bound = map[string]*ort.Tensor{}
	}
	for l := 0; l < layers; l++ {
		for _, name := range []string{policy.PastKeyName(l), policy.PastValueName(l)} {
			cache := make([]float32, int64(rows)*heads*size*hdim)
			for i := range cache {
				cache[i] = float32(i%7) * 0.01
			}
			in[name] = ort.F32Tensor(cache, int64(rows), heads, size, hdim)
		}
		if bound != nil {
			bound[policy.PresentKeyName(l)] = in[policy.PastKeyName(l)]
			bound[policy.PresentValueName(l)] = in[policy.PastValueName(l)]
		}
	}
	return in, bound
}

// BenchmarkOpenSession times opening the benchmark model's FullGraph
// session in the three ways a model's weights can reach ONNX Runtime:
// encoded in the protobuf (NewSession, what ort.Runtime.NewModelSession
// does below ort.InMemoryAbove), handed over from memory as external data
// (NewSessionExternal, above it), and from an external data file written
// by onnx.Model.SaveExternal (NewSessionFromFile; the save is timed too).
func BenchmarkOpenSession(b *testing.B) {
	rt := orttest.Runtime(b)
	c := benchConfig()
	m, err := FullGraph(c, randomWeights(c, 1), GraphOptions{MaxSeq: 256})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for _, bc := range []struct {
		name string
		open func() (*ort.Session, error)
	}{
		{"protobuf", func() (*ort.Session, error) {
			data, err := m.Marshal()
			if err != nil {
				return nil, err
			}
			return rt.NewSession(data, nil, nil)
		}},
		{"external-memory", func() (*ort.Session, error) {
			data, ext, err := m.MarshalExternal(ort.ExternalLocation, onnx.DefaultExternalThreshold/64)
			if err != nil {
				return nil, err
			}
			return rt.NewSessionExternal(data, ext, nil, nil)
		}},
		{"external-file", func() (*ort.Session, error) {
			path := filepath.Join(dir, "model.onnx")
			if err := m.SaveExternal(path, onnx.DefaultExternalThreshold/64); err != nil {
				return nil, err
			}
			return rt.NewSessionFromFile(path, nil, nil)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				s, err := bc.open()
				if err != nil {
					b.Fatal(err)
				}
				_ = s.Close()
			}
		})
	}
}

// BenchmarkFusedDecode compares one decode step of the Hugging Face fused
// sampling graph (FusedKVGraph, and each of benchVariants) with the
// built-in policy's in-place KV graph of the same size (benchConfig), at
// each of profileShapes, in the same run: every iteration runs one step of
// every graph, in an order that rotates, so that the load of a shared
// machine falls on all alike. Per graph it reports the tokens/s of the
// fastest step (best of b.N) and of the median step, by wall clock
// ("wall") and by the CPU time of the thread that ran the step ("cpu", on
// Linux: ONNX Runtime runs the kernels on the calling thread with one
// intra-op thread, so this leaves out the time spent waiting for a core);
// per Hugging Face graph, the ratio of its best tokens/s to the built-in
// graph's (1 is parity; the goal is 0.9 or more). Run it with a
// fixed count, e.g. -benchtime 300x.
func BenchmarkFusedDecode(b *testing.B) {
	rt := orttest.Runtime(b)
	gs := decodeGraphs(b)
	for _, sh := range profileShapes {
		b.Run(fmt.Sprintf("rows=%d/past=%d", sh.rows, sh.past), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			sessions := make([]*ort.Session, len(gs))
			ins := make([][2]map[string]*ort.Tensor, len(gs))
			// Sessions open in a random order: where ONNX Runtime's memory
			// lands differs from session to session, and the first one
			// opened should not always be the same graph's.
			for _, i := range rand.Perm(len(gs)) {
				g := gs[i]
				outs := []string{policy.OutputLogits}
				for l := 0; l < g.layers; l++ {
					outs = append(outs, policy.PresentKeyName(l), policy.PresentValueName(l))
				}
				sessions[i] = newSession(b, rt, g.m, outs...)
				in, bound := decodeRowsInputs(sh.rows, g.layers, g.heads, g.hdim, sh.past, sh.past+16)
				ins[i] = [2]map[string]*ort.Tensor{in, bound}
			}
			wall := make([][]time.Duration, len(gs))
			cpu := make([][]time.Duration, len(gs))
			k := 0
			for b.Loop() {
				for j := range gs {
					i := (j + k) % len(gs)
					start := time.Now()
					c0, ok0 := threadCPUTime()
					if _, err := sessions[i].RunInto(ins[i][0], ins[i][1]); err != nil {
						b.Fatal(err)
					}
					c1, ok1 := threadCPUTime()
					wall[i] = append(wall[i], time.Since(start))
					if ok0 && ok1 {
						cpu[i] = append(cpu[i], c1-c0)
					}
				}
				k++
			}
			for _, m := range []struct {
				name  string
				steps [][]time.Duration
			}{{"wall", wall}, {"cpu", cpu}} {
				if len(m.steps[0]) == 0 {
					continue
				}
				best := make([]float64, len(gs))
				for i, g := range gs {
					slices.Sort(m.steps[i])
					best[i] = float64(sh.rows) / m.steps[i][0].Seconds()
					b.ReportMetric(best[i], g.name+"-"+m.name+"-best-tok/s")
					b.ReportMetric(float64(sh.rows)/m.steps[i][len(m.steps[i])/2].Seconds(), g.name+"-"+m.name+"-median-tok/s")
				}
				for i := 1; i < len(gs); i++ {
					b.ReportMetric(best[i]/best[0], gs[i].name+"-"+m.name+"/builtin")
				}
			}
		})
	}
}
