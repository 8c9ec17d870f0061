package generate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// This file measures whether the sampler could keep one ONNX Runtime
// session per model shape and swap the weights per policy version, instead
// of building a session per version (docs/BENCHMARKS.md, "Pipeline
// efficiency (issue 11)"):
//
//	go test -run '^$' -bench 'WeightsAsInputs|VersionSwitch' -benchtime 10x -v ./model/generate/
//
// Both benchmarks use the shipped base policy (testdata/base) and its
// in-place KV graph (policy.InPlaceKVGraph), the sampler's graph, with one
// ONNX Runtime thread.

// swapNewTokens is the completion length decoded: max_new_tokens of the
// demo config.
const swapNewTokens = 192

// swapTurnSteps is how many decoding steps BenchmarkWeightsAsInputs runs
// with one variant before the next one takes over: short enough that load
// from other processes falls on all variants alike, long enough that each
// turn runs mostly with its own weights in the CPU caches (one step at a
// time, the variants evicting each other's weights slowed them all, by a
// third at 16 rows).
const swapTurnSteps = 24

// BenchmarkWeightsAsInputs compares the decoding speed of the sampler's
// graph with its weights baked in as initializers (what the sampler runs
// today) and with the weights as graph inputs fed from Go memory. Every
// iteration decodes a batch of prompts, 192 new tokens each (EOS disabled,
// temperature 1, one seed), for rows=64 (one sampler's batch, train.prompt_batch 8 x G 8)
// and rows=16 (a sampler's share of it when 4 samplers split it), with
// each of:
//
//   - initializers: the graph through the loop below (rawRun), which calls
//     onnxruntime_go directly, as Generate's ort.Session does;
//   - inputs: the graph with every initializer turned into a graph input,
//     through the same loop, the weight tensors created once as ONNX
//     Runtime values over the Go slices and passed to every step (not
//     re-created per step);
//   - noprepack: "initializers" with ONNX Runtime's weight prepacking off
//     (session.disable_prepacking), to tell how much of a difference
//     between the two is prepacking;
//
// the three taking turns of swapTurnSteps decoding steps each (the order
// rotating every round), so that other load on the machine falls on all
// three alike;
// then, as a reference, the whole batch with Model.Generate (today's code
// path, initializers).
//
// ONNX Runtime cannot prepack or constant-fold weights that are inputs, so
// the question is whether "inputs" decodes as fast as "initializers". The
// metrics are tokens/s per variant, over wall-clock time and (on Linux)
// over the decoding thread's CPU time (with one thread ONNX Runtime runs
// every node on the calling thread), and the ratios to "initializers".
// -v logs each iteration's figures.
func BenchmarkWeightsAsInputs(b *testing.B) {
	rt := orttest.Runtime(b)
	c := loadBase(b)
	g, err := policy.InPlaceKVGraph(c.Config, c.Weights)
	if err != nil {
		b.Fatal(err)
	}
	data, err := g.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	m, err := Load(rt, data, nil)
	if err != nil {
		b.Fatal(err)
	}
	m.MaxSeq = c.Config.MaxSeq
	b.Cleanup(func() { _ = m.Close() })

	gi, weights := weightsAsInputs(g)
	giData, err := gi.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	sessions := []*rawSession{
		newRawSession(b, m, data, nil, nil),
		newRawSession(b, m, giData, weights, nil),
		newRawSession(b, m, data, nil, map[string]string{"session.disable_prepacking": "1"}),
	}
	for _, rows := range []int{64, 16} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			benchWeightsAsInputs(b, m, sessions, c.Tokenizer, rows)
		})
	}
}

// benchWeightsAsInputs is BenchmarkWeightsAsInputs for one batch size:
// sessions are initializers, inputs and noprepack, m is the Model of
// "generate".
func benchWeightsAsInputs(b *testing.B, m *Model, sessions []*rawSession, tok tokenizer.Tokenizer, rows int) {
	names := []string{"initializers", "inputs", "noprepack", "generate"}
	rng := rand.New(rand.NewPCG(7, 7))
	prompts := make([][]int32, rows)
	for i := range prompts {
		// The arith task's shape: "a op b op c=" and the template's newline.
		s := fmt.Sprintf("%d+%d-%d=\n", rng.IntN(1000), rng.IntN(1000), rng.IntN(100))
		prompts[i] = append([]int32{tok.BOS()}, tok.Encode(s)...)
	}
	o := Options{Temperature: 1, MaxNewTokens: swapNewTokens, EOS: -1, PAD: tok.PAD(), Seed: 1}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	wall := make([]time.Duration, len(names))
	cpu := make([]float64, len(names))
	tokens := make([]int, len(names))
	// one decodes the batch with every variant, adding to the totals when
	// count is set, and checks that they sample the same tokens.
	one := func(count bool) string {
		runs := make([]*rawRun, len(sessions))
		for j, s := range sessions {
			runs[j] = s.start(prompts, o)
		}
		w, t := make([]time.Duration, len(names)), make([]float64, len(names))
		for turn, active := 0, true; active; turn++ {
			for k := range runs {
				j := (k + turn) % len(runs)
				start, c0 := time.Now(), threadCPUOrZero()
				more := true
				for step := 0; step < swapTurnSteps && more; step++ {
					var err error
					if more, err = runs[j].next(); err != nil {
						b.Fatalf("%s: %v", names[j], err)
					}
				}
				t[j] += threadCPUOrZero() - c0
				w[j] += time.Since(start)
				active = more
			}
		}
		start, c0 := time.Now(), threadCPUOrZero()
		ref, err := m.Generate(context.Background(), prompts, o)
		j := len(names) - 1
		t[j] += threadCPUOrZero() - c0
		w[j] += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		line := ""
		for j, r := range runs {
			for i, c := range r.completions() {
				if !slices.Equal(c.Tokens, ref[i].Tokens) {
					b.Errorf("%s: row %d samples %v, Generate %v", names[j], i, c.Tokens, ref[i].Tokens)
					break
				}
			}
		}
		n := len(prompts) * o.MaxNewTokens
		for j, name := range names {
			line += fmt.Sprintf(" %s %.0f tok/s", name, float64(n)/w[j].Seconds())
			if t[j] > 0 {
				line += fmt.Sprintf(" (cpu %.0f)", float64(n)/t[j])
			}
			if count {
				wall[j] += w[j]
				cpu[j] += t[j]
				tokens[j] += n
			}
		}
		return line
	}
	one(false) // warm-up: first-run allocations of every session
	it := 0
	for b.Loop() {
		b.Logf("iteration %d:%s", it, one(true))
		it++
	}
	for j, name := range names {
		b.ReportMetric(float64(tokens[j])/wall[j].Seconds(), name+"_tok/s")
		if cpu[j] > 0 {
			b.ReportMetric(float64(tokens[j])/cpu[j], name+"_cpu_tok/s")
		}
	}
	for _, j := range []int{1, 2} {
		b.ReportMetric(wall[0].Seconds()/wall[j].Seconds(), names[j]+"/initializers")
		if cpu[j] > 0 {
			b.ReportMetric(cpu[0]/cpu[j], names[j]+"/initializers_cpu")
		}
	}
	b.ReportMetric(0, "ns/op")
}

// threadCPUOrZero is threadCPU, 0 where it is not measured.
func threadCPUOrZero() float64 {
	t, _ := threadCPU()
	return t
}

// BenchmarkVersionSwitch compares what a new policy version costs the
// sampler today with what it would cost if only the weights were swapped,
// alternating the two in every iteration, for the shipped base policy.
// Both build the version's graph with policy.InPlaceKVGraph (which packs
// the weight tensors the graph takes; a dedicated packer could skip the
// rest of the graph), then:
//
//   - rebuild: encode the graph and open an ONNX Runtime session
//     (ort.Runtime.NewSession, what generate.Model.Prepare does), then
//     close the session it replaces;
//   - swap: create one ONNX Runtime value per weight tensor over its Go
//     slice, then destroy the values it replaces.
//
// Both start from a decoded checkpoint: decoding the blob costs both the
// same. The metrics are milliseconds per version: graph_ms (the graph
// build), rebuild_ms and swap_ms (graph build included), session_ms and
// values_ms (what follows the graph build), and rebuild/swap.
func BenchmarkVersionSwitch(b *testing.B) {
	rt := orttest.Runtime(b)
	c := loadBase(b)
	outs := []string{outputLogits}
	for l := 0; l < c.Config.NLayers; l++ {
		outs = append(outs, presentName(l, "key"), presentName(l, "value"))
	}
	var sess *ort.Session
	var vals []ortgo.Value
	defer func() {
		if sess != nil {
			_ = sess.Close()
		}
		destroyValues(vals)
	}()
	var tGraph, tSession, tValues time.Duration
	// version switches to c's weights again, by a new session (rebuild) or
	// new weight values (swap).
	version := func(rebuild bool) {
		start := time.Now()
		g, err := policy.InPlaceKVGraph(c.Config, c.Weights)
		if err != nil {
			b.Fatal(err)
		}
		built := time.Now()
		tGraph += built.Sub(start)
		if rebuild {
			data, err := g.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			s, err := rt.NewSession(data, nil, outs)
			if err != nil {
				b.Fatal(err)
			}
			if sess != nil {
				_ = sess.Close()
			}
			sess = s
			tSession += time.Since(built)
			return
		}
		v, err := weightValues(g.Graph.Initializers)
		if err != nil {
			b.Fatal(err)
		}
		destroyValues(vals)
		vals = v
		tValues += time.Since(built)
	}
	version(true) // warm-up
	version(false)
	tGraph, tSession, tValues = 0, 0, 0
	it := 0
	for b.Loop() {
		version(it%2 == 0)
		version(it%2 != 0)
		it++
	}
	ms := func(d time.Duration) float64 { return d.Seconds() * 1e3 / float64(b.N) }
	b.ReportMetric(ms(tGraph)/2, "graph_ms")
	b.ReportMetric(ms(tSession), "session_ms")
	b.ReportMetric(ms(tValues), "values_ms")
	b.ReportMetric(ms(tGraph)/2+ms(tSession), "rebuild_ms")
	b.ReportMetric(ms(tGraph)/2+ms(tValues), "swap_ms")
	b.ReportMetric((ms(tGraph)/2+ms(tSession))/(ms(tGraph)/2+ms(tValues)), "rebuild/swap")
	b.ReportMetric(0, "ns/op")
}

// loadBase loads the shipped base policy.
func loadBase(b *testing.B) *checkpoint.Checkpoint {
	b.Helper()
	c, err := checkpoint.Load(filepath.Join("..", "..", "testdata", "base"))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// weightsAsInputs returns a copy of g whose initializers are graph inputs
// (after g's own inputs), and those initializers.
func weightsAsInputs(g *onnx.Model) (*onnx.Model, []*onnx.Tensor) {
	gc := *g
	graph := *g.Graph
	graph.Inputs = slices.Clone(g.Graph.Inputs)
	for _, t := range g.Graph.Initializers {
		vi := onnx.ValueInfo{Name: t.Name, DataType: t.DataType}
		for _, d := range t.Dims {
			vi.Shape = append(vi.Shape, onnx.Dim{Value: d})
		}
		graph.Inputs = append(graph.Inputs, vi)
	}
	graph.Initializers = nil
	gc.Graph = &graph
	return &gc, g.Graph.Initializers
}

// weightValues wraps float tensors' Go slices (not copied) as ONNX Runtime
// values.
func weightValues(ts []*onnx.Tensor) ([]ortgo.Value, error) {
	vals := make([]ortgo.Value, 0, len(ts))
	for _, t := range ts {
		if t.DataType != onnx.Float || len(t.Float) == 0 {
			destroyValues(vals)
			return nil, fmt.Errorf("weight %q: want float data", t.Name)
		}
		v, err := ortgo.NewTensor(ortgo.NewShape(t.Dims...), t.Float)
		if err != nil {
			destroyValues(vals)
			return nil, fmt.Errorf("weight %q: %w", t.Name, err)
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// destroyValues releases ONNX Runtime values.
func destroyValues(vals []ortgo.Value) {
	for _, v := range vals {
		_ = v.Destroy()
	}
}

// rawSession decodes with an in-place KV graph through onnxruntime_go
// directly, so that weight tensors can be passed to every step as values
// created once.
type rawSession struct {
	m       *Model // the graph's signature (Generate is not used)
	s       *ortgo.DynamicAdvancedSession
	weights []ortgo.Value // after the decoding inputs, in session order
	keep    []*onnx.Tensor
}

// newRawSession opens data with one ONNX Runtime thread and the session
// config entries conf. weights, if any, are graph inputs fed from their Go
// slices.
func newRawSession(b *testing.B, m *Model, data []byte, weights []*onnx.Tensor, conf map[string]string) *rawSession {
	b.Helper()
	if !m.InPlace() {
		b.Fatal("want an in-place KV graph")
	}
	ins := []string{inputIDs, inputMask, inputPositions}
	outs := []string{outputLogits}
	for i := range 2 * m.sig.layers {
		ins = append(ins, cacheTensorName(i, false))
		outs = append(outs, cacheTensorName(i, true))
	}
	for _, t := range weights {
		ins = append(ins, t.Name)
	}
	opts, err := ortgo.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = opts.Destroy() }()
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		b.Fatal(err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		b.Fatal(err)
	}
	for k, v := range conf {
		if err := opts.AddSessionConfigEntry(k, v); err != nil {
			b.Fatal(err)
		}
	}
	s, err := ortgo.NewDynamicAdvancedSessionWithONNXData(data, ins, outs, opts)
	if err != nil {
		b.Fatal(err)
	}
	vals, err := weightValues(weights)
	if err != nil {
		b.Fatal(err)
	}
	r := &rawSession{m: m, s: s, weights: vals, keep: weights}
	b.Cleanup(func() {
		destroyValues(r.weights)
		_ = r.s.Destroy()
	})
	return r
}

// rawRun is one batch decoding on a rawSession: Model.Generate's cached
// decoding, one step per next call, without its checks and finish
// conditions other than the length.
type rawRun struct {
	r  *rawSession
	d  *decoder
	lo int
}

// start lays out the prompts for decoding.
func (r *rawSession) start(prompts [][]int32, o Options) *rawRun {
	p := 0
	for _, pr := range prompts {
		p = max(p, len(pr))
	}
	return &rawRun{r: r, d: newDecoder(r.m, nil, prompts, p, o, true)}
}

// next runs one step and samples every row's next token; it returns false
// once every row has finished.
func (x *rawRun) next() (bool, error) {
	d := x.d
	logits, v, err := x.r.step(d, x.lo)
	if err != nil {
		return false, err
	}
	active := false
	for i, row := range d.rows {
		next := int64(d.o.PAD)
		if !row.done {
			d.sample(row, logits[i*v:(i+1)*v])
			next = int64(row.out.Tokens[len(row.out.Tokens)-1])
		}
		col := i*d.stride + d.n
		if col < (i+1)*d.stride {
			d.ids[col] = next
			if !row.done {
				d.mask[col] = 1
				d.pos[col] = int64(row.prompt + len(row.out.Tokens) - 1)
			}
		}
		active = active || !row.done
	}
	if active {
		x.lo = d.n
		d.n++
	}
	return active, nil
}

// completions returns the rows' completions.
func (x *rawRun) completions() []Completion {
	out := make([]Completion, len(x.d.rows))
	for i, row := range x.d.rows {
		out[i] = row.out
	}
	return out
}

// step runs r's session on columns [lo, n), as decoder.step does, and
// returns the last column's logits [B][V] and V.
func (r *rawSession) step(d *decoder, lo int) ([]float32, int, error) {
	bsz, s, v := int64(len(d.rows)), int64(d.n-lo), int64(r.m.sig.vocabSize)
	var vals []ortgo.Value
	defer func() { destroyValues(vals) }()
	add := func(shape ortgo.Shape, i64 []int64, f32 []float32) error {
		var val ortgo.Value
		var err error
		if i64 != nil {
			val, err = ortgo.NewTensor(shape, i64)
		} else {
			val, err = ortgo.NewTensor(shape, f32)
		}
		if err != nil {
			return err
		}
		vals = append(vals, val)
		return nil
	}
	win := func(src []int64, lo, hi int) []int64 {
		w := hi - lo
		out := make([]int64, len(d.rows)*w)
		for i := range d.rows {
			copy(out[i*w:], src[i*d.stride+lo:i*d.stride+hi])
		}
		return out
	}
	if err := add(ortgo.NewShape(bsz, s), win(d.ids, lo, d.n), nil); err != nil {
		return nil, 0, err
	}
	if err := add(ortgo.NewShape(bsz, int64(d.n)), win(d.mask, 0, d.n), nil); err != nil {
		return nil, 0, err
	}
	if err := add(ortgo.NewShape(bsz, s), win(d.pos, lo, d.n), nil); err != nil {
		return nil, 0, err
	}
	kvShape := ortgo.NewShape(bsz, r.m.sig.heads, d.kv.capacity, r.m.sig.headDim)
	for _, buf := range d.kv.cur {
		if err := add(kvShape, nil, buf); err != nil {
			return nil, 0, err
		}
	}
	nIn := len(vals)
	ins := append(slices.Clone(vals), r.weights...)
	logits := make([]float32, bsz*s*v)
	if err := add(ortgo.NewShape(bsz, s, v), nil, logits); err != nil {
		return nil, 0, err
	}
	for _, buf := range d.kv.next {
		if err := add(kvShape, nil, buf); err != nil {
			return nil, 0, err
		}
	}
	if err := r.s.Run(ins, vals[nIn:]); err != nil {
		return nil, 0, err
	}
	d.kv.advance(int(s))
	last := make([]float32, bsz*v)
	for i := int64(0); i < bsz; i++ {
		copy(last[i*v:], logits[(i*s+s-1)*v:(i*s+s)*v])
	}
	return last, int(v), nil
}
