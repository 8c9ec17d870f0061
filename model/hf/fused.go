package hf

import (
	"fmt"
	"math"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// DomainMicrosoft is the ONNX Runtime contrib-operator domain of
// FusedKVGraph's rotary-embedding and attention nodes.
const DomainMicrosoft = "com.microsoft"

// gqaHeadMultiple is the head size granularity ONNX Runtime's CPU
// GroupQueryAttention kernel requires.
const gqaHeadMultiple = 16

// FusedSupported reports whether FusedKVGraph can build c: ONNX Runtime's
// CPU GroupQueryAttention needs a head size that is a multiple of 16 (every
// Qwen2, Qwen3 and Llama 3 release has 64 or 128).
func FusedSupported(c Config) bool {
	return c.Validate() == nil && c.HeadDim%gqaHeadMultiple == 0
}

// FusedKVGraph returns the float32 sampling graph with a fixed-size cache
// that ONNX Runtime updates in place, built with its contrib operators
// (the op set of onnxruntime-genai's model builder): per layer one
// com.microsoft RotaryEmbedding each for the queries and keys, fed the
// position_ids input so that left padding keeps each row's positions, and
// one com.microsoft GroupQueryAttention over the cache. The rest is
// KVGraph's description; ONNX Runtime fuses its RMSNorms (with the residual
// Add before them) and SwiGLU on its own. It computes the same logits as
// FullGraph and KVGraph, and is for sampling only, never for autodiff.
//
// Inputs are KVGraph's, except that past_key_values.N.key and
// past_key_values.N.value are [B,KVH,C,Dh] buffers of a fixed capacity C
// (the symbolic dimension policy.DimCacheSeq) whose first P positions hold
// the cache; attention_mask [B,P+S] tells P. Outputs: logits [B,S,V], and
// present.N.key and present.N.value [B,KVH,C,Dh], the same buffers with
// positions P..P+S-1 written. The caller binds each present output to the
// memory of its past input (the generate package does so for any graph
// whose past and present share one symbolic length). P+S must not exceed C
// or the options' MaxSeq. It needs FusedSupported(cfg).
func FusedKVGraph(cfg Config, w policy.Weights, o GraphOptions) (*onnx.Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !FusedSupported(cfg) {
		return nil, fmt.Errorf("%w: head_dim %d is not a multiple of %d (GroupQueryAttention)", ErrConfig, cfg.HeadDim, gqaHeadMultiple)
	}
	o.DType = onnx.Float
	g, err := newGraphBuilder("wsgrpo_hf_kv_fused", cfg, w, o)
	if err != nil {
		return nil, err
	}
	b, s, tot := onnx.Dim{Param: policy.DimBatch}, onnx.Dim{Param: policy.DimSeq}, onnx.Dim{Param: policy.DimTotalSeq}
	c := onnx.Dim{Param: policy.DimCacheSeq}
	h, dh := onnx.Dim{Value: int64(cfg.NumKVHeads)}, onnx.Dim{Value: int64(cfg.HeadDim)}
	ids := g.b.Input(policy.InputIDs, onnx.Int64, b, s)
	mask := g.b.Input(policy.InputMask, onnx.Int64, b, tot)
	pos := g.b.Input(policy.InputPositions, onnx.Int64, b, s)
	io := make([]kvIO, cfg.NumLayers)
	for l := range io {
		io[l] = kvIO{
			pastKey:      g.b.Input(policy.PastKeyName(l), onnx.Float, b, h, c, dh),
			pastValue:    g.b.Input(policy.PastValueName(l), onnx.Float, b, h, c, dh),
			presentKey:   policy.PresentKeyName(l),
			presentValue: policy.PresentValueName(l),
		}
	}
	total := g.dimOf(mask, 1)
	newLen := g.dimOf(ids, 1)
	cos, sin := g.rotaryCaches()
	at := fusedInputs{
		bias: g.attentionBias(mask, g.op("Sub", total, newLen), newLen, total),
		// Every row has the same cache length, total-1 for seqlens_k; the
		// padding is masked by the bias, as in KVGraph.
		seqlens: g.b.Op("Cast", []string{g.op("Expand", g.op("Sub", total, g.ints(1)), g.dimOf(mask, 0))},
			onnx.AttrI("to", int64(onnx.Int32))),
		total:     g.b.Op("Cast", []string{g.op("Squeeze", total, g.ints(0))}, onnx.AttrI("to", int64(onnx.Int32))),
		positions: pos,
		cos:       cos,
		sin:       sin,
	}
	x := g.embed(ids)
	for l := 0; l < cfg.NumLayers; l++ {
		x = g.fusedBlock(l, x, at, io[l])
	}
	g.head(x, "")
	g.b.Output(policy.OutputLogits, onnx.Float, b, s, onnx.Dim{Value: int64(cfg.VocabSize)})
	for l := range io {
		g.b.Output(io[l].presentKey, onnx.Float, b, h, c, dh)
		g.b.Output(io[l].presentValue, onnx.Float, b, h, c, dh)
	}
	m := g.model()
	m.Opsets = append(m.Opsets, onnx.OpsetImport{Domain: DomainMicrosoft, Version: 1})
	return m, nil
}

// fusedInputs are the per-step tensors every layer's attention shares: the
// additive attention bias [B,1,S,P+S], seqlens_k [B] int32,
// total_sequence_length (a scalar int32), position_ids [B,S] and the
// rotary caches [MaxSeq, Dh/2].
type fusedInputs struct {
	bias, seqlens, total, positions, cos, sin string
}

// rotaryCaches returns the cos and sin caches [maxSeq, Dh/2] of
// RotaryEmbedding: one column per rotated pair.
func (g *graphBuilder) rotaryCaches() (string, string) {
	inv := g.cfg.InvFreq()
	half := len(inv)
	cos := make([]float32, g.maxSeq*half)
	sin := make([]float32, g.maxSeq*half)
	for p := 0; p < g.maxSeq; p++ {
		for i, f := range inv {
			a := float64(float32(p) * float32(f))
			cos[p*half+i], sin[p*half+i] = float32(math.Cos(a)), float32(math.Sin(a))
		}
	}
	dims := []int64{int64(g.maxSeq), int64(half)}
	return g.b.Constant(&onnx.Tensor{DataType: onnx.Float, Dims: dims, Float: cos}),
		g.b.Constant(&onnx.Tensor{DataType: onnx.Float, Dims: dims, Float: sin})
}

// contrib adds a com.microsoft node and returns its outputs.
func (g *graphBuilder) contrib(opType string, inputs []string, n int, attrs ...onnx.Attribute) []string {
	outs := g.b.OpN(opType, inputs, n, attrs...)
	g.b.Graph().Nodes[len(g.b.Graph().Nodes)-1].Domain = DomainMicrosoft
	return outs
}

// fusedProjection returns the query or key projection [B,S,n·Dh] of h
// with its optional bias and per-head RMSNorm (Qwen3), rotated by
// RotaryEmbedding at the given positions.
func (g *graphBuilder) fusedProjection(h, weight, bias, norm string, n int, at fusedInputs) string {
	x := g.linear(h, weight, bias)
	if norm != "" {
		x = g.op("Reshape", x, g.ints(0, 0, int64(n), int64(g.cfg.HeadDim)))
		x = g.op("Reshape", g.rmsNorm(x, norm, ""), g.ints(0, 0, int64(n*g.cfg.HeadDim)))
	}
	return g.contrib("RotaryEmbedding", []string{x, at.positions, at.cos, at.sin}, 1,
		onnx.AttrI("interleaved", 0), onnx.AttrI("num_heads", int64(n)))[0]
}

// fusedBlock is block with RotaryEmbedding and GroupQueryAttention over the
// in-place cache in place of the primitive rotation and attention.
func (g *graphBuilder) fusedBlock(l int, x string, at fusedInputs, kv kvIO) string {
	c := g.cfg
	p := func(name string) string { return LayerParam(l, name) }
	opt := func(ok bool, name string) string {
		if ok {
			return p(name)
		}
		return ""
	}
	h := g.rmsNorm(x, p(ParamInputNorm), "")
	q := g.fusedProjection(h, p(ParamQ), opt(c.QKVBias, ParamQBias), opt(c.QKNorm, ParamQNorm), c.NumHeads, at)
	k := g.fusedProjection(h, p(ParamK), opt(c.QKVBias, ParamKBias), opt(c.QKNorm, ParamKNorm), c.NumKVHeads, at)
	v := g.linear(h, p(ParamV), opt(c.QKVBias, ParamVBias))
	ctx := g.b.Op("GroupQueryAttention", nil)
	node := g.b.Graph().Nodes[len(g.b.Graph().Nodes)-1]
	node.Domain = DomainMicrosoft
	// query, key, value, past_key, past_value, seqlens_k,
	// total_sequence_length, cos_cache, sin_cache, position_ids,
	// attention_bias.
	node.Inputs = []string{q, k, v, kv.pastKey, kv.pastValue, at.seqlens, at.total, "", "", "", at.bias}
	node.Outputs = []string{ctx, kv.presentKey, kv.presentValue}
	node.Attrs = []onnx.Attribute{
		onnx.AttrI("num_heads", int64(c.NumHeads)),
		onnx.AttrI("kv_num_heads", int64(c.NumKVHeads)),
		onnx.AttrI("do_rotary", 0),
	}
	x = g.op("Add", x, g.linear(ctx, p(ParamO), opt(c.OBias, ParamOBias)))
	h = g.rmsNorm(x, p(ParamPostNorm), "")
	gate := g.linear(h, p(ParamGate), "")
	m := g.op("Mul", g.silu(gate), g.linear(h, p(ParamUp), ""))
	return g.op("Add", x, g.linear(m, p(ParamDown), ""))
}
