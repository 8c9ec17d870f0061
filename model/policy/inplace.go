package policy

import (
	"fmt"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// DomainMicrosoft is the ONNX Runtime contrib-operator domain of the
// in-place KV graph's attention nodes.
const DomainMicrosoft = "com.microsoft"

// DimCacheSeq is the symbolic cache length shared by the past inputs and the
// present outputs of the in-place KV graph: the caller's fixed-size cache
// buffer, not the number of positions in use.
const DimCacheSeq = "cache_seq"

// gqaHeadMultiple is the head size granularity ONNX Runtime's CPU
// GroupQueryAttention kernel requires.
const gqaHeadMultiple = 16

// InPlaceSupported reports whether InPlaceKVGraph can build cfg's policy:
// ONNX Runtime's GroupQueryAttention needs a head size that is a multiple
// of 16.
func InPlaceSupported(cfg Config) bool {
	return cfg.Validate() == nil && cfg.HeadDim()%gqaHeadMultiple == 0
}

// InPlaceKVGraph returns the float32 KV-cache policy graph with a
// fixed-size cache that ONNX Runtime updates in place: the same model and
// the same logits as KVGraph, but each step writes only the new positions'
// keys and values instead of copying the whole cache.
//
// Inputs are KVGraph's, except that past_key_values.N.key and
// past_key_values.N.value are [B,H,C,Dh] buffers of a fixed capacity C (the
// symbolic dimension DimCacheSeq) whose first P positions hold the cache;
// attention_mask [B,P+S] tells P. Outputs: logits [B,S,V], and
// present.N.key and present.N.value [B,H,C,Dh], the same buffers with
// positions P..P+S-1 written. The caller binds each present output to the
// memory of its past input, so nothing is copied; the graph writes no other
// position. P+S must not exceed C or cfg.MaxSeq.
//
// Attention is one com.microsoft GroupQueryAttention node per layer (no
// rotary embedding; positions stay learned embeddings fed through
// position_ids), with the padding and causal mask as its attention_bias.
// Every row shares one cache length, so left padding keeps the layout of
// KVGraph. The rest of each block runs fused kernels (see fusedBlock) on a
// [B·S, D] residual stream; the query, key and value weights of layer N are
// packed into initializers layers.N.attn.qkv.weight and .bias, so this
// graph is for sampling only, never for autodiff. It needs
// InPlaceSupported(cfg).
func InPlaceKVGraph(cfg Config, w Weights) (*onnx.Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !InPlaceSupported(cfg) {
		return nil, fmt.Errorf("%w: head size %d is not a multiple of %d (GroupQueryAttention)", ErrConfig, cfg.HeadDim(), gqaHeadMultiple)
	}
	g, err := newGraphBuilder("wsgrpo_policy_kv_inplace", cfg, w, onnx.Float)
	if err != nil {
		return nil, err
	}
	bd, s, tot, c := onnx.Dim{Param: DimBatch}, onnx.Dim{Param: DimSeq}, onnx.Dim{Param: DimTotalSeq}, onnx.Dim{Param: DimCacheSeq}
	hd, dh := onnx.Dim{Value: int64(cfg.NHeads)}, onnx.Dim{Value: int64(cfg.HeadDim())}
	ids := g.b.Input(InputIDs, onnx.Int64, bd, s)
	mask := g.b.Input(InputMask, onnx.Int64, bd, tot)
	pos := g.b.Input(InputPositions, onnx.Int64, bd, s)
	io := make([]kvIO, cfg.NLayers)
	for l := range io {
		io[l] = kvIO{
			pastKey:      g.b.Input(PastKeyName(l), onnx.Float, bd, hd, c, dh),
			pastValue:    g.b.Input(PastValueName(l), onnx.Float, bd, hd, c, dh),
			presentKey:   PresentKeyName(l),
			presentValue: PresentValueName(l),
		}
	}

	total := g.dimOf(mask, 1)
	newLen := g.dimOf(ids, 1)
	past := g.b.Op("Sub", []string{total, newLen})
	att := gqaInputs{
		bias: g.attentionBias(mask, past, newLen, total),
		// Every row has the same cache length: seqlens_k is total-1 for
		// each row (the padding is masked by the bias, as in KVGraph).
		seqlens: g.b.Op("Cast", []string{g.b.Op("Expand", []string{
			g.b.Op("Sub", []string{total, g.ints(1)}), g.dimOf(mask, 0)})}, onnx.AttrI("to", int64(onnx.Int32))),
		total: g.b.Op("Cast", []string{g.b.Op("Squeeze", []string{total, g.ints(0)})}, onnx.AttrI("to", int64(onnx.Int32))),
		// [B,S,3D] for the packed query/key/value GroupQueryAttention takes.
		qkvShape: g.b.Op("Concat", []string{g.b.Op("Shape", []string{ids}), g.ints(int64(3 * cfg.DModel))}, onnx.AttrI("axis", 0)),
	}
	// The residual stream is [B·S, D] so that every linear layer is one
	// Gemm or MatMul of a matrix.
	flat := g.ints(-1)
	tok := g.b.Op("Gather", []string{g.weight(ParamTokEmbed), g.b.Op("Reshape", []string{ids, flat})}, onnx.AttrI("axis", 0))
	posEmb := g.b.Op("Gather", []string{g.weight(ParamPosEmbed), g.b.Op("Reshape", []string{pos, flat})}, onnx.AttrI("axis", 0))
	x := g.b.Op("Add", []string{tok, posEmb})
	h := g.layerNorm2D(x, LayerParam(0, ParamLN1Scale), LayerParam(0, ParamLN1Bias))
	for l := 0; l < cfg.NLayers; l++ {
		scale, bias := ParamLNFScale, ParamLNFBias
		if l+1 < cfg.NLayers {
			scale, bias = LayerParam(l+1, ParamLN1Scale), LayerParam(l+1, ParamLN1Bias)
		}
		x, h = g.fusedBlock(l, x, h, att, io[l], scale, bias)
	}
	logits := g.b.Op("MatMul", []string{h, g.weight(ParamLMHead)})
	shape := g.b.Op("Concat", []string{g.b.Op("Shape", []string{ids}), g.ints(int64(cfg.VocabSize))}, onnx.AttrI("axis", 0))
	g.b.Named("Reshape", []string{logits, shape}, []string{OutputLogits})
	g.b.Output(OutputLogits, onnx.Float, bd, s, onnx.Dim{Value: int64(cfg.VocabSize)})
	for l := range io {
		g.b.Output(io[l].presentKey, onnx.Float, bd, hd, c, dh)
		g.b.Output(io[l].presentValue, onnx.Float, bd, hd, c, dh)
	}
	m := g.model()
	m.Opsets = append(m.Opsets, onnx.OpsetImport{Domain: DomainMicrosoft, Version: 1})
	return m, nil
}

// gqaInputs are the per-step tensors every layer's GroupQueryAttention
// shares: the additive attention bias [B,1,S,P+S], seqlens_k [B] int32 and
// total_sequence_length (a scalar int32).
type gqaInputs struct {
	bias, seqlens, total string
	// qkvShape is the shape [B,S,3D] as an int64 tensor.
	qkvShape string
}

// fusedBlock applies decoder layer l to the residual stream x [B·S, D],
// given h, x normalised by the layer's first layer norm. It returns the new
// residual stream and that stream normalised by the layer norm (lnScale,
// lnBias) that comes next: the next layer's first one, or the final one.
//
// The block is KVGraph's, with fused kernels in place of the primitives:
// one Gemm for the packed query/key/value projection, GroupQueryAttention
// over the cache, Gemm for the other projections with their biases,
// LayerNormalization, and com.microsoft FastGelu with the MLP's first bias.
// (com.microsoft SkipLayerNormalization for the residual Add and the layer
// norm after it measured 5-10% slower overall than Add plus
// LayerNormalization.)
func (g *graphBuilder) fusedBlock(l int, x, h string, att gqaInputs, kv kvIO, lnScale, lnBias string) (string, string) {
	p := func(name string) string { return LayerParam(l, name) }
	qkv := g.b.Op("Gemm", []string{h, g.packedQKV(l, ".weight"), g.packedQKV(l, ".bias")})
	qkv = g.b.Op("Reshape", []string{qkv, att.qkvShape})
	ctx := g.b.Op("GroupQueryAttention", nil)
	node := g.b.Graph().Nodes[len(g.b.Graph().Nodes)-1]
	node.Domain = DomainMicrosoft
	// query (packed with key and value), key, value, past_key, past_value,
	// seqlens_k, total_sequence_length, cos_cache, sin_cache,
	// position_ids, attention_bias.
	node.Inputs = []string{qkv, "", "", kv.pastKey, kv.pastValue, att.seqlens, att.total, "", "", "", att.bias}
	node.Outputs = []string{ctx, kv.presentKey, kv.presentValue}
	node.Attrs = []onnx.Attribute{
		onnx.AttrI("num_heads", int64(g.cfg.NHeads)),
		onnx.AttrI("kv_num_heads", int64(g.cfg.NHeads)),
		onnx.AttrI("do_rotary", 0),
	}
	ctx = g.b.Op("Reshape", []string{ctx, g.ints(-1, int64(g.cfg.DModel))})
	x = g.b.Op("Add", []string{x, g.gemm(ctx, p(ParamOWeight), p(ParamOBias))})
	h = g.layerNorm2D(x, p(ParamLN2Scale), p(ParamLN2Bias))

	m := g.b.Op("MatMul", []string{h, g.weight(p(ParamFC1))})
	m = g.b.Op("FastGelu", []string{m, g.weight(p(ParamFC1Bias))})
	g.b.Graph().Nodes[len(g.b.Graph().Nodes)-1].Domain = DomainMicrosoft
	x = g.b.Op("Add", []string{x, g.gemm(m, p(ParamFC2), p(ParamFC2Bias))})
	return x, g.layerNorm2D(x, lnScale, lnBias)
}

// gemm returns x·W + b for a matrix x as one Gemm node.
func (g *graphBuilder) gemm(x, weight, bias string) string {
	return g.b.Op("Gemm", []string{x, g.weight(weight), g.weight(bias)})
}

// layerNorm2D normalises x over its last axis with one LayerNormalization
// node.
func (g *graphBuilder) layerNorm2D(x, scale, bias string) string {
	return g.b.Op("LayerNormalization", []string{x, g.weight(scale), g.weight(bias)},
		onnx.AttrI("axis", -1), onnx.AttrF("epsilon", lnEps))
}

// packedQKV adds (once) and returns the initializer that packs layer l's
// query, key and value weights (suffix ".weight", [D,3D]) or biases
// (".bias", [3D]) side by side, in the order GroupQueryAttention's packed
// input expects.
func (g *graphBuilder) packedQKV(l int, suffix string) string {
	name := LayerParam(l, "attn.qkv"+suffix)
	if g.added[name] {
		return name
	}
	g.added[name] = true
	parts := []string{ParamQWeight, ParamKWeight, ParamVWeight}
	if suffix == ".bias" {
		parts = []string{ParamQBias, ParamKBias, ParamVBias}
	}
	d := g.cfg.DModel
	t := &onnx.Tensor{Name: name, DataType: onnx.Float}
	if suffix == ".bias" {
		t.Dims = []int64{int64(3 * d)}
		for _, part := range parts {
			t.Float = append(t.Float, g.w[LayerParam(l, part)].Data...)
		}
		return g.b.Initializer(t)
	}
	t.Dims = []int64{int64(d), int64(3 * d)}
	t.Float = make([]float32, 3*d*d)
	for i, part := range parts {
		w := g.w[LayerParam(l, part)].Data
		for r := 0; r < d; r++ {
			copy(t.Float[r*3*d+i*d:r*3*d+(i+1)*d], w[r*d:(r+1)*d])
		}
	}
	return g.b.Initializer(t)
}
