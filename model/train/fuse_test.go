package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/autodiff"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort/orttest"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

func TestFuseGELUMatches(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers int
		dt     onnx.DataType
		want   int
	}{
		{"float32 1 layer", 1, onnx.Float, 1},
		{"float32 3 layers", 3, onnx.Float, 3},
		{"float64 is left alone", 2, onnx.Double, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := policy.Config{VocabSize: 11, DModel: 8, NLayers: tc.layers, NHeads: 2, DFF: 16, MaxSeq: 8}
			w, err := policy.Init(cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			m, err := policy.FullGraph(cfg, w, tc.dt)
			if err != nil {
				t.Fatal(err)
			}
			before := len(m.Graph.Nodes)
			g, n := FuseGELU(m.Graph)
			if n != tc.want {
				t.Fatalf("fused %d GELUs, want %d", n, tc.want)
			}
			if len(m.Graph.Nodes) != before {
				t.Fatal("FuseGELU modified its input graph")
			}
			fast := 0
			for _, nd := range g.Nodes {
				if nd.OpType == "FastGelu" && nd.Domain == autodiff.DomainMicrosoft {
					fast++
				}
			}
			if fast != tc.want || (n > 0 && len(g.Nodes) != before-8*n) {
				t.Fatalf("%d FastGelu nodes, %d nodes from %d", fast, len(g.Nodes), before)
			}
			if err := autodiff.NewModel(g, 17).Validate(); err != nil {
				t.Fatalf("fused graph invalid: %v", err)
			}
		})
	}
}

func TestFuseLayerNormMatches(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers int
		dt     onnx.DataType
		want   int
	}{
		{"float32 1 layer", 1, onnx.Float, 3},
		{"float32 3 layers", 3, onnx.Float, 7},
		{"float64 is left alone", 2, onnx.Double, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := policy.Config{VocabSize: 11, DModel: 8, NLayers: tc.layers, NHeads: 2, DFF: 16, MaxSeq: 8}
			w, err := policy.Init(cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			m, err := policy.FullGraph(cfg, w, tc.dt)
			if err != nil {
				t.Fatal(err)
			}
			before := len(m.Graph.Nodes)
			g, n := FuseLayerNorm(m.Graph)
			if n != tc.want {
				t.Fatalf("fused %d layer norms, want %d", n, tc.want)
			}
			if len(m.Graph.Nodes) != before {
				t.Fatal("FuseLayerNorm modified its input graph")
			}
			if n > 0 && len(g.Nodes) != before-8*n {
				t.Fatalf("%d nodes from %d", len(g.Nodes), before)
			}
			if err := autodiff.NewModel(g, 17).Validate(); err != nil {
				t.Fatalf("fused graph invalid: %v", err)
			}
		})
	}
}

// TestFuseGELUSharedValue leaves a GELU alone when one of its intermediate
// values is used elsewhere.
func TestFuseGELUSharedValue(t *testing.T) {
	cfg := policy.Config{VocabSize: 11, DModel: 8, NLayers: 1, NHeads: 2, DFF: 16, MaxSeq: 8}
	w, err := policy.Init(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := policy.FullGraph(cfg, w, onnx.Float)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Tanh" {
			m.Graph.Outputs = append(m.Graph.Outputs, onnx.ValueInfo{Name: n.Outputs[0], DataType: onnx.Float})
		}
	}
	if _, n := FuseGELU(m.Graph); n != 0 {
		t.Fatalf("fused %d GELUs whose tanh is a graph output", n)
	}
}

// TestFusedTrainerMatchesUnfused trains the same policy with and without
// GELU and layer-norm fusion and expects the same losses and weights (to float32
// rounding) after a few AdamW steps.
func TestFusedTrainerMatchesUnfused(t *testing.T) {
	rt := orttest.Runtime(t)
	cfg := policy.Config{VocabSize: 11, DModel: 16, NLayers: 2, NHeads: 2, DFF: 32, MaxSeq: revLen}
	w, err := policy.Init(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	var trainers [2]*Trainer
	var graph *onnx.Graph
	for i, noFuse := range []bool{false, true} {
		m, err := policy.FullGraph(cfg, w, onnx.Float)
		if err != nil {
			t.Fatal(err)
		}
		out, err := AppendGRPO(m.Graph, onnx.Float, policy.OutputLogits, GRPOConfig{EpsLow: 0.2, EpsHigh: 0.2, Beta: 0.04})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := New(rt, m.Graph, out.Loss, Config{Optim: optim.DefaultConfig(), Metrics: out.Metrics(), NoFuse: noFuse}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		trainers[i], graph = tr, m.Graph
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for step := range 3 {
		feeds := GraphInputs(graph, randomGRPOBatch(rng, cfg.VocabSize, 4, revLen))
		var losses [2]float64
		for i, tr := range trainers {
			r, err := tr.Step(feeds)
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			losses[i] = r.Loss
		}
		if math.Abs(losses[0]-losses[1]) > 1e-5*math.Max(1, math.Abs(losses[1])) {
			t.Fatalf("step %d: fused loss %v, unfused %v", step, losses[0], losses[1])
		}
	}
	for i, p := range trainers[0].Params() {
		q := trainers[1].Params()[i]
		for j := range p.Data {
			if d := math.Abs(float64(p.Data[j] - q.Data[j])); d > 1e-5 {
				t.Fatalf("%s[%d]: fused %v, unfused %v", p.Name, j, p.Data[j], q.Data[j])
			}
		}
	}
}
