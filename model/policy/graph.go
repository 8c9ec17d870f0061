package policy

import (
	"fmt"
	"math"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// Opset is the ONNX opset version of the policy graphs.
const Opset = 17

// Graph input and output names shared by the full and KV graphs.
const (
	InputIDs       = "input_ids"
	InputMask      = "attention_mask"
	InputPositions = "position_ids"
	OutputLogits   = "logits"
	OutputHidden   = "hidden"
)

// maskValue is the additive attention bias of a masked key: large enough
// that softmax gives it zero weight, finite so a fully masked row stays NaN
// free.
const maskValue = -1e9

// lnEps is the layer-norm variance epsilon.
const lnEps = 1e-5

// PastKeyName returns the KV graph input holding layer l's cached keys.
func PastKeyName(l int) string { return fmt.Sprintf("past_key_values.%d.key", l) }

// PastValueName returns the KV graph input holding layer l's cached values.
func PastValueName(l int) string { return fmt.Sprintf("past_key_values.%d.value", l) }

// PresentKeyName returns the KV graph output holding layer l's keys.
func PresentKeyName(l int) string { return fmt.Sprintf("present.%d.key", l) }

// PresentValueName returns the KV graph output holding layer l's values.
func PresentValueName(l int) string { return fmt.Sprintf("present.%d.value", l) }

// graphBuilder writes the policy into an onnx.Builder in one float type.
type graphBuilder struct {
	b   *onnx.Builder
	cfg Config
	w   Weights
	dt  onnx.DataType
	// added records the weights already made initializers.
	added map[string]bool
}

// newGraphBuilder checks its arguments and returns a builder for a graph
// named name.
func newGraphBuilder(name string, cfg Config, w Weights, dt onnx.DataType) (*graphBuilder, error) {
	if err := w.Check(cfg); err != nil {
		return nil, err
	}
	if dt != onnx.Float && dt != onnx.Double {
		return nil, fmt.Errorf("%w: graph dtype %v, want float or double", ErrConfig, dt)
	}
	return &graphBuilder{b: onnx.NewBuilder(name), cfg: cfg, w: w, dt: dt, added: make(map[string]bool)}, nil
}

// model wraps the built graph as an opset-17 model.
func (g *graphBuilder) model() *onnx.Model { return onnx.NewModel(g.b.Graph(), Opset) }

// weight adds parameter name as an initializer in the graph's float type and
// returns its name.
func (g *graphBuilder) weight(name string) string {
	if g.added[name] {
		return name
	}
	g.added[name] = true
	p := g.w[name]
	t := &onnx.Tensor{Name: name, DataType: g.dt, Dims: append([]int64(nil), p.Shape...)}
	if g.dt == onnx.Double {
		t.Double = make([]float64, len(p.Data))
		for i, v := range p.Data {
			t.Double[i] = float64(v)
		}
	} else {
		t.Float = append([]float32(nil), p.Data...)
	}
	return g.b.Initializer(t)
}

// scalar adds a rank-0 constant of the graph's float type.
func (g *graphBuilder) scalar(v float64) string {
	if g.dt == onnx.Double {
		return g.b.Constant(onnx.ScalarF64(v))
	}
	return g.b.Constant(onnx.ScalarF32(float32(v)))
}

// ints adds a rank-1 int64 constant.
func (g *graphBuilder) ints(v ...int64) string { return g.b.Constant(onnx.Int64s(v...)) }

// linear returns x·W + b for parameters prefix+".weight" / prefix+".bias"
// (or the named weight and bias).
func (g *graphBuilder) linear(x, weight, bias string) string {
	y := g.b.Op("MatMul", []string{x, g.weight(weight)})
	return g.b.Op("Add", []string{y, g.weight(bias)})
}

// layerNorm normalises x over its last axis and applies scale and bias,
// written from primitives: (x-mean)/sqrt(var+eps)*scale+bias. The result is
// named out when out is not empty.
func (g *graphBuilder) layerNorm(x, scale, bias, out string) string {
	mean := g.b.Op("ReduceMean", []string{x}, onnx.AttrInts("axes", -1), onnx.AttrI("keepdims", 1))
	d := g.b.Op("Sub", []string{x, mean})
	sq := g.b.Op("Mul", []string{d, d})
	variance := g.b.Op("ReduceMean", []string{sq}, onnx.AttrInts("axes", -1), onnx.AttrI("keepdims", 1))
	std := g.b.Op("Sqrt", []string{g.b.Op("Add", []string{variance, g.scalar(lnEps)})})
	n := g.b.Op("Div", []string{d, std})
	in := []string{g.b.Op("Mul", []string{n, g.weight(scale)}), g.weight(bias)}
	if out == "" {
		return g.b.Op("Add", in)
	}
	g.b.Named("Add", in, []string{out})
	return out
}

// gelu is the tanh approximation 0.5·x·(1+tanh(sqrt(2/π)·(x+0.044715·x³))).
func (g *graphBuilder) gelu(x string) string {
	x3 := g.b.Op("Mul", []string{g.b.Op("Mul", []string{x, x}), x})
	inner := g.b.Op("Add", []string{x, g.b.Op("Mul", []string{x3, g.scalar(0.044715)})})
	t := g.b.Op("Tanh", []string{g.b.Op("Mul", []string{inner, g.scalar(math.Sqrt(2 / math.Pi))})})
	onePlus := g.b.Op("Add", []string{t, g.scalar(1)})
	return g.b.Op("Mul", []string{g.b.Op("Mul", []string{x, onePlus}), g.scalar(0.5)})
}

// embed returns token plus positional embeddings, [B,S,D].
func (g *graphBuilder) embed(ids, positions string) string {
	tok := g.b.Op("Gather", []string{g.weight(ParamTokEmbed), ids}, onnx.AttrI("axis", 0))
	pos := g.b.Op("Gather", []string{g.weight(ParamPosEmbed), positions}, onnx.AttrI("axis", 0))
	return g.b.Op("Add", []string{tok, pos})
}

// dimOf returns a rank-1 int64 tensor holding dimension axis of x.
func (g *graphBuilder) dimOf(x string, axis int64) string {
	return g.b.Op("Shape", []string{x}, onnx.AttrI("start", axis), onnx.AttrI("end", axis+1))
}

// attentionBias returns the additive attention bias [B,1,S,L] for queries at
// cache rows past..past+S-1 over keys 0..L-1: maskValue where the key is in
// the future of the query or attention_mask is 0, else 0. past, s and l are
// rank-1 int64 tensors of one element; mask is the [B,L] int64 input.
func (g *graphBuilder) attentionBias(mask, past, s, l string) string {
	n := int64(g.cfg.MaxSeq)
	table := make([]float64, n*n)
	for i := int64(0); i < n; i++ {
		for j := i + 1; j < n; j++ {
			table[i*n+j] = maskValue
		}
	}
	ct := &onnx.Tensor{DataType: g.dt, Dims: []int64{n, n}}
	if g.dt == onnx.Double {
		ct.Double = table
	} else {
		ct.Float = make([]float32, len(table))
		for i, v := range table {
			ct.Float[i] = float32(v)
		}
	}
	starts := g.b.Op("Concat", []string{past, g.ints(0)}, onnx.AttrI("axis", 0))
	ends := g.b.Op("Concat", []string{g.b.Op("Add", []string{past, s}), l}, onnx.AttrI("axis", 0))
	causal := g.b.Op("Slice", []string{g.b.Constant(ct), starts, ends, g.ints(0, 1)})

	keep := g.b.Op("Cast", []string{mask}, onnx.AttrI("to", int64(onnx.Bool)))
	keep = g.b.Op("Unsqueeze", []string{keep, g.ints(1, 2)})
	keyBias := g.b.Op("Where", []string{keep, g.scalar(0), g.scalar(maskValue)})
	return g.b.Op("Add", []string{keyBias, causal})
}

// heads reshapes [B,S,D] to [B,H,S,Dh].
func (g *graphBuilder) heads(x string) string {
	r := g.b.Op("Reshape", []string{x, g.ints(0, 0, int64(g.cfg.NHeads), int64(g.cfg.HeadDim()))})
	return g.b.Op("Transpose", []string{r}, onnx.AttrInts("perm", 0, 2, 1, 3))
}

// kvIO names the cache tensors of one layer; empty in the full graph.
type kvIO struct {
	pastKey, pastValue, presentKey, presentValue string
}

// block applies decoder layer l to the residual stream x: pre-norm causal
// self-attention then a pre-norm GELU MLP, each added back to x.
func (g *graphBuilder) block(l int, x, bias string, kv kvIO) string {
	p := func(name string) string { return LayerParam(l, name) }
	h := g.layerNorm(x, p(ParamLN1Scale), p(ParamLN1Bias), "")
	q := g.heads(g.linear(h, p(ParamQWeight), p(ParamQBias)))
	k := g.heads(g.linear(h, p(ParamKWeight), p(ParamKBias)))
	v := g.heads(g.linear(h, p(ParamVWeight), p(ParamVBias)))
	if kv.pastKey != "" {
		g.b.Named("Concat", []string{kv.pastKey, k}, []string{kv.presentKey}, onnx.AttrI("axis", 2))
		g.b.Named("Concat", []string{kv.pastValue, v}, []string{kv.presentValue}, onnx.AttrI("axis", 2))
		k, v = kv.presentKey, kv.presentValue
	}
	kt := g.b.Op("Transpose", []string{k}, onnx.AttrInts("perm", 0, 1, 3, 2))
	scores := g.b.Op("MatMul", []string{q, kt})
	scores = g.b.Op("Mul", []string{scores, g.scalar(1 / math.Sqrt(float64(g.cfg.HeadDim())))})
	scores = g.b.Op("Add", []string{scores, bias})
	att := g.b.Op("Softmax", []string{scores}, onnx.AttrI("axis", -1))
	ctx := g.b.Op("MatMul", []string{att, v})
	ctx = g.b.Op("Transpose", []string{ctx}, onnx.AttrInts("perm", 0, 2, 1, 3))
	ctx = g.b.Op("Reshape", []string{ctx, g.ints(0, 0, int64(g.cfg.DModel))})
	x = g.b.Op("Add", []string{x, g.linear(ctx, p(ParamOWeight), p(ParamOBias))})

	h = g.layerNorm(x, p(ParamLN2Scale), p(ParamLN2Bias), "")
	m := g.gelu(g.linear(h, p(ParamFC1), p(ParamFC1Bias)))
	return g.b.Op("Add", []string{x, g.linear(m, p(ParamFC2), p(ParamFC2Bias))})
}

// head applies the final layer norm, naming its result hiddenName when not
// empty, and writes the logits output.
func (g *graphBuilder) head(x, hiddenName string) {
	h := g.layerNorm(x, ParamLNFScale, ParamLNFBias, hiddenName)
	g.b.Named("MatMul", []string{h, g.weight(ParamLMHead)}, []string{OutputLogits})
}
