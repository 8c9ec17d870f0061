package hf

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// profileShapes are the decode steps the profile compares: rows of the
// batch, cached positions before the step.
var profileShapes = []struct{ rows, past int }{{8, 64}, {8, 192}, {64, 64}, {64, 192}}

// decodeGraph is one sampling graph under comparison, with the cache
// layout its inputs need.
type decodeGraph struct {
	name        string
	m           *onnx.Model
	heads, hdim int64
	layers      int
}

// decodeGraphs returns the graphs the decode benchmark and profile
// compare: the built-in policy's in-place KV graph first, then FusedKVGraph
// of the Hugging Face model of the same size (benchConfig), then that
// model's fused graph written each way of benchVariants.
func decodeGraphs(t testing.TB) []decodeGraph {
	t.Helper()
	c := benchConfig()
	pc := policy.DefaultConfig(c.VocabSize)
	pw, err := policy.Init(pc, 1)
	if err != nil {
		t.Fatal(err)
	}
	builtin, err := policy.InPlaceKVGraph(pc, pw)
	if err != nil {
		t.Fatal(err)
	}
	fused, err := FusedKVGraph(c, randomWeights(c, 1), GraphOptions{MaxSeq: 256})
	if err != nil {
		t.Fatal(err)
	}
	gs := []decodeGraph{
		{"builtin-inplace", builtin, int64(pc.NHeads), int64(pc.HeadDim()), pc.NLayers},
		{"hf-fused", fused, int64(c.NumKVHeads), int64(c.HeadDim), c.NumLayers},
	}
	names, env := benchVariants, os.Getenv("WSGRPO_VARIANTS")
	if env != "" {
		names = strings.Split(env, ",")
	}
	for _, v := range fusedVariants {
		if env != "all" && !slices.Contains(names, v.name) {
			continue
		}
		m, err := fusedKVGraph(c, randomWeights(c, 1), GraphOptions{MaxSeq: 256}, v.opts)
		if err != nil {
			t.Fatal(err)
		}
		gs = append(gs, decodeGraph{"hf-" + v.name, m, int64(c.NumKVHeads), int64(c.HeadDim), c.NumLayers})
	}
	return gs
}

// TestDecodeProfile profiles one decode step of every graph of
// decodeGraphs at each of profileShapes with ONNX Runtime's per-node
// profiler, the graphs' runs interleaved, and logs per operator type the
// sum over nodes of each node's fastest call (a contention-free estimate
// of one step), and the fastest and median step. It is slow and its
// figures are for reading, so it runs only with WSGRPO_PROFILE=1 (and
// -count=1, or go test replays a cached log); WSGRPO_VARIANTS picks the
// variants (see benchVariants).
func TestDecodeProfile(t *testing.T) {
	if os.Getenv("WSGRPO_PROFILE") == "" {
		t.Skip("set WSGRPO_PROFILE=1 to profile the decode graphs")
	}
	base := orttest.Runtime(t)
	steps := 100
	gs := decodeGraphs(t)
	for _, sh := range profileShapes {
		var report strings.Builder
		fmt.Fprintf(&report, "\n== %d rows, %d cached positions, %d steps\n", sh.rows, sh.past, steps)
		sessions := make([]*ort.Session, len(gs))
		prefixes := make([]string, len(gs))
		ins := make([][2]map[string]*ort.Tensor, len(gs))
		for i, g := range gs {
			c := base.Config()
			prefixes[i] = filepath.Join(t.TempDir(), "prof")
			c.ProfilePrefix = prefixes[i]
			rt, err := ort.Init(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			outs := []string{policy.OutputLogits}
			for l := 0; l < g.layers; l++ {
				outs = append(outs, policy.PresentKeyName(l), policy.PresentValueName(l))
			}
			data, err := g.m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if sessions[i], err = rt.NewSession(data, nil, outs); err != nil {
				t.Fatal(err)
			}
			in, bound := decodeRowsInputs(sh.rows, g.layers, g.heads, g.hdim, sh.past, sh.past+16)
			ins[i] = [2]map[string]*ort.Tensor{in, bound}
		}
		for range steps {
			for i, s := range sessions {
				if _, err := s.RunInto(ins[i][0], ins[i][1]); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i, s := range sessions {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			p := readProfile(t, prefixes[i])
			report.WriteString(profileSummary(gs[i].name, p, sh.rows))
		}
		t.Log(report.String())
	}
}

// readProfile reads the one profile written under prefix.
func readProfile(t *testing.T, prefix string) *ort.Profile {
	t.Helper()
	files, err := filepath.Glob(prefix + "*.json")
	if err != nil || len(files) != 1 {
		t.Fatalf("profile files %v (%v), want one", files, err)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	p, err := ort.ReadProfile(f)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// profileSummary formats a profile: the fastest and median step with the
// tokens/s of the fastest, the summed fastest node calls, and that sum per
// operator type, largest first.
func profileSummary(name string, p *ort.Profile, rows int) string {
	runs := slices.Clone(p.Runs)
	slices.Sort(runs)
	_, fastest := p.KernelTime(nil)
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s step min %7.1fµs median %7.1fµs (%6.0f tokens/s at min); kernels (sum of node min) %7.1fµs, %d nodes\n",
		name, us(runs[0]), us(runs[len(runs)/2]), float64(rows)/runs[0].Seconds(), us(fastest), len(p.Nodes))
	type opTime struct {
		op string
		n  int
		t  time.Duration
	}
	byOp := map[string]*opTime{}
	for _, n := range p.Nodes {
		o := byOp[n.Op]
		if o == nil {
			o = &opTime{op: n.Op}
			byOp[n.Op] = o
		}
		o.n++
		o.t += n.Min
	}
	ops := make([]*opTime, 0, len(byOp))
	for _, o := range byOp {
		ops = append(ops, o)
	}
	slices.SortFunc(ops, func(a, b *opTime) int { return cmp.Compare(b.t, a.t) })
	for _, o := range ops {
		fmt.Fprintf(&b, "    %-34s %3d nodes %7.1fµs\n", o.op, o.n, us(o.t))
	}
	return b.String()
}

// us is d in microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// fusedVariants are the ways of writing FusedKVGraph that the tests
// check: "v0" is the graph before issue 12's measurements (RotaryEmbedding
// nodes, three MLP Gemms, a causal and padding bias), "default" is
// FusedKVGraph's (defaultFused).
var fusedVariants = []struct {
	name string
	opts fusedOptions
}{
	{"v0", fusedOptions{}},
	{"default", defaultFused},
	{"gqa-rotary", fusedOptions{gqaRotary: true}},
	{"gate-up", fusedOptions{gateUp: true}},
	{"key-bias", fusedOptions{keyBias: true}},
	{"add-norm", fusedOptions{addNorm: true}},
	{"rotary+gateup", fusedOptions{gqaRotary: true, gateUp: true}},
	{"rotary+gateup+keybias", fusedOptions{gqaRotary: true, gateUp: true, keyBias: true}},
	{"rotary+keybias", fusedOptions{gqaRotary: true, keyBias: true}},
	{"gateup+keybias", fusedOptions{gateUp: true, keyBias: true}},
	{"rotary+gateup+keybias+addnorm", fusedOptions{gqaRotary: true, gateUp: true, keyBias: true, addNorm: true}},
}

// benchVariants name the fusedVariants that BenchmarkFusedDecode and
// TestDecodeProfile compare with the built-in graph; WSGRPO_VARIANTS (a
// comma-separated list of names, "all" for every one) overrides them.
var benchVariants = []string{"v0"}
