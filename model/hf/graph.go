package hf

import (
	"fmt"
	"math"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// Opset is the ONNX opset version of the graphs.
const Opset = 17

// DefaultMaxSeq is the sequence limit of the graphs when GraphOptions.MaxSeq
// is 0 (or max_position_embeddings when that is smaller).
const DefaultMaxSeq = 4096

// maskValue is the additive attention bias of a masked key: large enough
// that softmax gives it zero weight, finite so a fully masked row (a
// padding query) stays NaN free.
const maskValue = -1e9

// GraphOptions tune the graphs.
type GraphOptions struct {
	// MaxSeq is the longest sequence, padding and cache included, the graph
	// accepts; it sizes the rotary cos/sin tables. 0 means DefaultMaxSeq;
	// it is capped at max_position_embeddings.
	MaxSeq int
	// DType is the float type of the weights and activations: onnx.Float
	// (the default) or onnx.Double (FullGraph only, for finite-difference
	// gradient checks).
	DType onnx.DataType
}

// maxSeq resolves o.MaxSeq against c.
func (o GraphOptions) maxSeq(c Config) int {
	n := o.MaxSeq
	if n <= 0 {
		n = DefaultMaxSeq
	}
	return min(n, c.MaxPositions)
}

// graphBuilder writes one description of the decoder into an onnx.Builder
// in one float type; FullGraph and KVGraph differ only in where keys and
// values come from.
type graphBuilder struct {
	b      *onnx.Builder
	cfg    Config
	w      policy.Weights
	dt     onnx.DataType
	maxSeq int
	// added records the weights already made initializers.
	added map[string]bool
}

// newGraphBuilder checks its arguments and returns a builder for a graph
// named name.
func newGraphBuilder(name string, cfg Config, w policy.Weights, o GraphOptions) (*graphBuilder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dt := o.DType
	if dt == onnx.Undefined {
		dt = onnx.Float
	}
	if dt != onnx.Float && dt != onnx.Double {
		return nil, fmt.Errorf("%w: graph dtype %v, want float or double", ErrConfig, dt)
	}
	g := &graphBuilder{b: onnx.NewBuilder(name), cfg: cfg, w: w, dt: dt, maxSeq: o.maxSeq(cfg), added: map[string]bool{}}
	if err := CheckWeights(cfg, w); err != nil {
		return nil, err
	}
	return g, nil
}

// model wraps the built graph as an opset-17 model.
func (g *graphBuilder) model() *onnx.Model { return onnx.NewModel(g.b.Graph(), Opset) }

// weight adds tensor name as an initializer in the graph's float type, once,
// and returns its name.
func (g *graphBuilder) weight(name string) string {
	if g.added[name] {
		return name
	}
	g.added[name] = true
	p := g.w[name]
	return g.b.Initializer(g.floats(name, p.Data, p.Shape...))
}

// floats returns a tensor of the graph's float type holding v. A float32
// tensor shares v's memory: a checkpoint's weights are not copied again
// (a real model's are gigabytes), so they must not change while the model
// is in use, until it is marshalled.
func (g *graphBuilder) floats(name string, v []float32, dims ...int64) *onnx.Tensor {
	t := &onnx.Tensor{Name: name, DataType: g.dt, Dims: append([]int64(nil), dims...)}
	if g.dt == onnx.Double {
		t.Double = make([]float64, len(v))
		for i, x := range v {
			t.Double[i] = float64(x)
		}
	} else {
		t.Float = v
	}
	return t
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

// op adds a node with one output.
func (g *graphBuilder) op(opType string, inputs ...string) string { return g.b.Op(opType, inputs) }

// linear returns x·Wᵀ (+ b) for a Hugging Face [out, in] weight; the
// transpose of an initializer is folded by ONNX Runtime.
func (g *graphBuilder) linear(x, weight, bias string) string {
	wt := g.b.Op("Transpose", []string{g.weight(weight)}, onnx.AttrInts("perm", 1, 0))
	y := g.op("MatMul", x, wt)
	if bias == "" {
		return y
	}
	return g.op("Add", y, g.weight(bias))
}

// rmsNorm returns x / sqrt(mean(x², last axis) + eps) · weight, from
// primitives. In float32 the square is Pow(x, 2), the form ONNX Runtime's
// SimplifiedLayerNormFusion recognises, so that a session runs one fused
// kernel; in float64 it is Mul(x, x), which that fusion leaves alone (it
// reads a float64 epsilon as its default 1e-5). The result is named out
// when out is not empty.
func (g *graphBuilder) rmsNorm(x, weight, out string) string {
	sq := g.op("Mul", x, x)
	if g.dt == onnx.Float {
		sq = g.op("Pow", x, g.scalar(2))
	}
	ms := g.b.Op("ReduceMean", []string{sq}, onnx.AttrInts("axes", -1), onnx.AttrI("keepdims", 1))
	n := g.op("Div", x, g.op("Sqrt", g.op("Add", ms, g.scalar(g.cfg.RMSNormEps))))
	in := []string{n, g.weight(weight)}
	if out == "" {
		return g.b.Op("Mul", in)
	}
	g.b.Named("Mul", in, []string{out})
	return out
}

// dimOf returns a rank-1 int64 tensor holding dimension axis of x.
func (g *graphBuilder) dimOf(x string, axis int64) string {
	return g.b.Op("Shape", []string{x}, onnx.AttrI("start", axis), onnx.AttrI("end", axis+1))
}

// rotary holds the cos and sin of every query's rotation angles,
// [B,1,S,Dh], broadcast over heads.
type rotary struct{ cos, sin string }

// rotaryTables gathers the rows of positions [B,S] from the cos/sin tables
// [maxSeq, Dh] (each pair's frequency repeated in both halves, Hugging
// Face's layout).
func (g *graphBuilder) rotaryTables(positions string) rotary {
	inv := g.cfg.InvFreq()
	half, dh := len(inv), g.cfg.HeadDim
	cos := make([]float64, g.maxSeq*dh)
	sin := make([]float64, g.maxSeq*dh)
	for p := 0; p < g.maxSeq; p++ {
		for i, f := range inv {
			a := float64(p) * f
			if g.dt == onnx.Float {
				a = float64(float32(p) * float32(f)) // as transformers computes them
			}
			c, s := math.Cos(a), math.Sin(a)
			cos[p*dh+i], cos[p*dh+half+i] = c, c
			sin[p*dh+i], sin[p*dh+half+i] = s, s
		}
	}
	gather := func(table []float64) string {
		t := &onnx.Tensor{DataType: g.dt, Dims: []int64{int64(g.maxSeq), int64(dh)}}
		if g.dt == onnx.Double {
			t.Double = table
		} else {
			t.Float = make([]float32, len(table))
			for i, v := range table {
				t.Float[i] = float32(v)
			}
		}
		rows := g.b.Op("Gather", []string{g.b.Constant(t), positions}, onnx.AttrI("axis", 0))
		return g.op("Unsqueeze", rows, g.ints(1))
	}
	return rotary{cos: gather(cos), sin: gather(sin)}
}

// rope rotates x [B,h,S,Dh]: x·cos + rotate_half(x)·sin, where
// rotate_half(x) = concat(-x[..., Dh/2:], x[..., :Dh/2]).
func (g *graphBuilder) rope(x string, r rotary) string {
	half, dh := int64(g.cfg.HeadDim/2), int64(g.cfg.HeadDim)
	x1 := g.op("Slice", x, g.ints(0), g.ints(half), g.ints(3))
	x2 := g.op("Slice", x, g.ints(half), g.ints(dh), g.ints(3))
	rot := g.b.Op("Concat", []string{g.op("Neg", x2), x1}, onnx.AttrI("axis", 3))
	return g.op("Add", g.op("Mul", x, r.cos), g.op("Mul", rot, r.sin))
}

// attentionBias returns the additive attention bias [B,1,S,L] for queries
// at cache rows past..past+S-1 over keys 0..L-1: maskValue where the key is
// in the future of the query or attention_mask is 0, else 0. past, s and l
// are rank-1 int64 tensors of one element; mask is the [B,L] int64 input.
func (g *graphBuilder) attentionBias(mask, past, s, l string) string {
	scalar := func(v string) string { return g.op("Squeeze", v, g.ints(0)) }
	one := g.b.Constant(&onnx.Tensor{DataType: onnx.Int64, Int64: []int64{1}})
	zero := g.b.Constant(&onnx.Tensor{DataType: onnx.Int64, Int64: []int64{0}})
	qi := g.op("Range", scalar(past), scalar(g.op("Add", past, s)), one)
	kj := g.op("Range", zero, scalar(l), one)
	causal := g.op("LessOrEqual", kj, g.op("Unsqueeze", qi, g.ints(1))) // [S,L]
	keep := g.b.Op("Cast", []string{mask}, onnx.AttrI("to", int64(onnx.Bool)))
	keep = g.op("And", g.op("Unsqueeze", keep, g.ints(1, 2)), causal) // [B,1,S,L]
	return g.op("Where", keep, g.scalar(0), g.scalar(maskValue))
}

// positions returns (CumSum(mask, axis 1) - 1) · mask: each real token's
// index among the real tokens of its row, 0 at padding.
func (g *graphBuilder) positions(mask string) string {
	axis := g.b.Constant(&onnx.Tensor{DataType: onnx.Int64, Int64: []int64{1}})
	count := g.op("CumSum", mask, axis)
	return g.op("Mul", g.op("Sub", count, g.ints(1)), mask)
}

// heads reshapes [B,S,n·Dh] to [B,n,S,Dh], applying the per-head RMSNorm
// norm (Qwen3's q_norm / k_norm) when it is not empty.
func (g *graphBuilder) heads(x string, n int, norm string) string {
	x = g.op("Reshape", x, g.ints(0, 0, int64(n), int64(g.cfg.HeadDim)))
	if norm != "" {
		x = g.rmsNorm(x, norm, "")
	}
	return g.b.Op("Transpose", []string{x}, onnx.AttrInts("perm", 0, 2, 1, 3))
}

// repeatKV repeats each of the NumKVHeads heads of x [B,KVH,L,Dh]
// NumHeads/NumKVHeads times, giving [B,H,L,Dh] (grouped-query attention).
func (g *graphBuilder) repeatKV(x string) string {
	rep := int64(g.cfg.NumHeads / g.cfg.NumKVHeads)
	if rep == 1 {
		return x
	}
	x = g.op("Unsqueeze", x, g.ints(2))
	x = g.op("Expand", x, g.ints(1, 1, rep, 1, 1))
	return g.op("Reshape", x, g.ints(0, int64(g.cfg.NumHeads), -1, int64(g.cfg.HeadDim)))
}

// kvIO names the cache tensors of one layer; empty in the full graph.
type kvIO struct {
	pastKey, pastValue, presentKey, presentValue string
}

// block applies decoder layer l to the residual stream x [B,S,D]:
// pre-RMSNorm grouped-query self-attention with rotary embeddings, then a
// pre-RMSNorm SwiGLU MLP, each added back to x.
func (g *graphBuilder) block(l int, x, bias string, r rotary, kv kvIO) string {
	c := g.cfg
	p := func(name string) string { return LayerParam(l, name) }
	opt := func(ok bool, name string) string {
		if ok {
			return p(name)
		}
		return ""
	}
	h := g.rmsNorm(x, p(ParamInputNorm), "")
	q := g.heads(g.linear(h, p(ParamQ), opt(c.QKVBias, ParamQBias)), c.NumHeads, opt(c.QKNorm, ParamQNorm))
	k := g.heads(g.linear(h, p(ParamK), opt(c.QKVBias, ParamKBias)), c.NumKVHeads, opt(c.QKNorm, ParamKNorm))
	v := g.heads(g.linear(h, p(ParamV), opt(c.QKVBias, ParamVBias)), c.NumKVHeads, "")
	q, k = g.rope(q, r), g.rope(k, r)
	if kv.pastKey != "" {
		g.b.Named("Concat", []string{kv.pastKey, k}, []string{kv.presentKey}, onnx.AttrI("axis", 2))
		g.b.Named("Concat", []string{kv.pastValue, v}, []string{kv.presentValue}, onnx.AttrI("axis", 2))
		k, v = kv.presentKey, kv.presentValue
	}
	k, v = g.repeatKV(k), g.repeatKV(v)
	scale := g.scalar(1 / math.Sqrt(float64(c.HeadDim)))
	kt := g.b.Op("Transpose", []string{k}, onnx.AttrInts("perm", 0, 1, 3, 2))
	var scores string
	if g.dt == onnx.Double {
		// ONNX Runtime folds a scalar Mul next to a MatMul into FusedMatMul's
		// float32 alpha; an Add in between keeps the scale in float64.
		scores = g.op("Mul", g.op("Add", g.op("MatMul", q, kt), bias), scale)
	} else {
		scores = g.op("Add", g.op("MatMul", g.op("Mul", q, scale), kt), bias)
	}
	att := g.b.Op("Softmax", []string{scores}, onnx.AttrI("axis", -1))
	ctx := g.b.Op("Transpose", []string{g.op("MatMul", att, v)}, onnx.AttrInts("perm", 0, 2, 1, 3))
	ctx = g.op("Reshape", ctx, g.ints(0, 0, int64(c.QDim())))
	x = g.op("Add", x, g.linear(ctx, p(ParamO), opt(c.OBias, ParamOBias)))

	h = g.rmsNorm(x, p(ParamPostNorm), "")
	gate := g.linear(h, p(ParamGate), "")
	m := g.op("Mul", g.silu(gate), g.linear(h, p(ParamUp), ""))
	return g.op("Add", x, g.linear(m, p(ParamDown), ""))
}

// silu returns x·sigmoid(x). In float64 it is written x / (1 + exp(-x)):
// ONNX Runtime fuses x·Sigmoid(x) into com.microsoft QuickGelu, which has
// only a float32 kernel.
func (g *graphBuilder) silu(x string) string {
	if g.dt == onnx.Double {
		return g.op("Div", x, g.op("Add", g.scalar(1), g.op("Exp", g.op("Neg", x))))
	}
	return g.op("Mul", x, g.op("Sigmoid", x))
}

// head applies the final RMSNorm, naming its result hiddenName when not
// empty, and writes the logits output through lm_head (or the embedding
// when tied).
func (g *graphBuilder) head(x, hiddenName string) {
	h := g.rmsNorm(x, ParamNorm, hiddenName)
	out := ParamLMHead
	if g.cfg.TieWordEmbeddings {
		out = ParamEmbed
	}
	wt := g.b.Op("Transpose", []string{g.weight(out)}, onnx.AttrInts("perm", 1, 0))
	g.b.Named("MatMul", []string{h, wt}, []string{policy.OutputLogits})
}

// embed returns the token embeddings of ids, [B,S,D].
func (g *graphBuilder) embed(ids string) string {
	return g.b.Op("Gather", []string{g.weight(ParamEmbed), ids}, onnx.AttrI("axis", 0))
}
