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
// that ONNX Runtime updates in place, built with its fused and contrib
// kernels (the op set of onnxruntime-genai's model builder): the residual
// stream is a [B·S, D] matrix; each layer runs one Gemm for the packed
// query/key/value projection, one com.microsoft GroupQueryAttention over
// the cache that also applies the rotary embedding (do_rotary, from cos/sin
// caches) and the causal mask, Gemm for the output, gate, up and down
// projections, SiLU as x·Sigmoid(x) (which ONNX Runtime fuses into
// QuickGelu), and SkipSimplifiedLayerNormalization for each residual Add
// with the RMSNorm after it; attention_mask becomes an additive padding
// bias. It computes the logits of FullGraph and
// KVGraph, and is for sampling only, never for autodiff: the query, key and
// value weights of layer N are packed into the initializers
// model.layers.N.self_attn.qkv_proj.weight (and .bias).
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
//
// The rotary embedding rotates each token by its cache index rather than
// by position_ids, which the graph accepts but does not read: ONNX Runtime
// 1.30's CPU GroupQueryAttention applies the first row's position_ids to
// every row. Attention depends only on the difference of two tokens'
// rotations, so the logits are those of position_ids whenever each row's
// positions are its cache indices less a constant of the row, as with left
// padding (the generate package's layout, and what the tests check); the
// keys in the cache are rotated by cache index too. Like the kernel, the
// graph takes S > 1 new positions after a non-empty cache for one row only.
func FusedKVGraph(cfg Config, w policy.Weights, o GraphOptions) (*onnx.Model, error) {
	return fusedKVGraph(cfg, w, o, defaultFused)
}

// fusedOptions choose among the ways FusedKVGraph can write a layer; the
// benchmarks and tests compare them, FusedKVGraph uses defaultFused.
type fusedOptions struct {
	// gqaRotary rotates queries and keys inside GroupQueryAttention
	// (do_rotary=1 with the cos/sin caches and position_ids) instead of
	// with RotaryEmbedding nodes before it.
	gqaRotary bool
	// gateUp packs the MLP's gate and up projections into one Gemm whose
	// output is split, so the MLP runs two matrix products instead of three.
	gateUp bool
	// keyBias gives GroupQueryAttention the padding mask alone, [B,1,S,L]
	// from a [B,1,1,L] Where, and leaves the causal mask to the kernel,
	// which applies it anyway.
	keyBias bool
	// addNorm writes each residual Add and the RMSNorm after it as Add plus
	// SimplifiedLayerNormalization instead of one
	// SkipSimplifiedLayerNormalization.
	addNorm bool
}

// defaultFused is the fastest choice measured: the fewest nodes, which
// counts most at small batches; packing gate and up saves less in the
// Gemm than the Split of its output costs at 64 rows (see
// docs/BENCHMARKS.md, "Hugging Face models").
var defaultFused = fusedOptions{gqaRotary: true, keyBias: true}

// fusedKVGraph builds FusedKVGraph's graph the way fo says.
func fusedKVGraph(cfg Config, w policy.Weights, o GraphOptions, fo fusedOptions) (*onnx.Model, error) {
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
	bs := g.op("Shape", ids)
	at := fusedInputs{
		bias: g.fusedBias(mask, total, newLen, fo),
		// Every row has the same cache length, total-1 for seqlens_k; the
		// padding is masked by the bias, as in KVGraph.
		seqlens: g.b.Op("Cast", []string{g.op("Expand", g.op("Sub", total, g.ints(1)), g.dimOf(mask, 0))},
			onnx.AttrI("to", int64(onnx.Int32))),
		total:     g.b.Op("Cast", []string{g.op("Squeeze", total, g.ints(0))}, onnx.AttrI("to", int64(onnx.Int32))),
		positions: pos,
		cos:       cos,
		sin:       sin,
		fo:        fo,
		qkvShape:  g.b.Op("Concat", []string{bs, g.ints(int64(cfg.QDim() + 2*cfg.KVDim()))}, onnx.AttrI("axis", 0)),
	}
	x := g.b.Op("Gather", []string{g.weight(ParamEmbed), g.op("Reshape", ids, g.ints(-1))}, onnx.AttrI("axis", 0))
	hn := g.simplifiedNorm(x, p0(ParamInputNorm))
	for l := 0; l < cfg.NumLayers; l++ {
		next := ParamNorm
		if l+1 < cfg.NumLayers {
			next = LayerParam(l+1, ParamInputNorm)
		}
		x, hn = g.fusedBlock(l, x, hn, at, io[l], next)
	}
	out := ParamLMHead
	if cfg.TieWordEmbeddings {
		out = ParamEmbed
	}
	logits := g.b.Op("Gemm", []string{hn, g.weight(out)}, onnx.AttrI("transB", 1))
	shape := g.b.Op("Concat", []string{bs, g.ints(int64(cfg.VocabSize))}, onnx.AttrI("axis", 0))
	g.b.Named("Reshape", []string{logits, shape}, []string{policy.OutputLogits})
	g.b.Output(policy.OutputLogits, onnx.Float, b, s, onnx.Dim{Value: int64(cfg.VocabSize)})
	for l := range io {
		g.b.Output(io[l].presentKey, onnx.Float, b, h, c, dh)
		g.b.Output(io[l].presentValue, onnx.Float, b, h, c, dh)
	}
	m := g.model()
	m.Opsets = append(m.Opsets, onnx.OpsetImport{Domain: DomainMicrosoft, Version: 1})
	return m, nil
}

// fusedBias returns GroupQueryAttention's attention_bias [B,1,S,L] for S
// new positions over L = P+S cache positions: the causal and padding mask
// of attentionBias, or under fo.keyBias the padding mask alone, broadcast
// over the queries.
func (g *graphBuilder) fusedBias(mask, total, newLen string, fo fusedOptions) string {
	if !fo.keyBias {
		return g.attentionBias(mask, g.op("Sub", total, newLen), newLen, total)
	}
	keep := g.b.Op("Cast", []string{mask}, onnx.AttrI("to", int64(onnx.Bool)))
	keep = g.op("Unsqueeze", keep, g.ints(1, 2))
	bias := g.op("Where", keep, g.scalar(0), g.scalar(maskValue))
	shape := g.b.Op("Concat", []string{g.dimOf(mask, 0), g.ints(1), newLen, total}, onnx.AttrI("axis", 0))
	return g.op("Expand", bias, shape)
}

// p0 names a tensor of layer 0.
func p0(name string) string { return LayerParam(0, name) }

// fusedInputs are the per-step tensors every layer's attention shares: the
// additive attention bias [B,1,S,P+S], seqlens_k [B] int32,
// total_sequence_length (a scalar int32), position_ids [B,S], the rotary
// caches [MaxSeq, Dh/2], and the shape [B,S,(H+2·KVH)·Dh] of the packed
// query/key/value projection.
type fusedInputs struct {
	bias, seqlens, total, positions, cos, sin string
	qkvShape                                  string
	// fo is how the layers are written.
	fo fusedOptions
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

// contrib adds a com.microsoft node with n outputs and returns their names.
func (g *graphBuilder) contrib(opType string, inputs []string, n int, attrs ...onnx.Attribute) []string {
	outs := g.b.OpN(opType, inputs, n, attrs...)
	g.b.Graph().Nodes[len(g.b.Graph().Nodes)-1].Domain = DomainMicrosoft
	return outs
}

// simplifiedNorm is the RMSNorm of x over its last axis as one ONNX Runtime
// SimplifiedLayerNormalization node.
func (g *graphBuilder) simplifiedNorm(x, weight string) string {
	return g.b.Op("SimplifiedLayerNormalization", []string{x, g.weight(weight)},
		onnx.AttrI("axis", -1), onnx.AttrF("epsilon", float32(g.cfg.RMSNormEps)))
}

// skipNorm returns x+skip and its RMSNorm with weight, from one
// com.microsoft SkipSimplifiedLayerNormalization node.
func (g *graphBuilder) skipNorm(x, skip, weight string) (sum, norm string) {
	outs := g.contrib("SkipSimplifiedLayerNormalization", []string{x, skip, g.weight(weight)}, 4,
		onnx.AttrF("epsilon", float32(g.cfg.RMSNormEps)))
	node := g.b.Graph().Nodes[len(g.b.Graph().Nodes)-1]
	node.Outputs[1], node.Outputs[2] = "", "" // mean and inv_std_var: unused
	return outs[3], outs[0]
}

// gemm returns x·Wᵀ (+ b) for a [B·S, in] matrix x and a Hugging Face
// [out, in] weight, as one Gemm node.
func (g *graphBuilder) gemm(x, weight, bias string) string {
	in := []string{x, g.weight(weight)}
	if bias != "" {
		in = append(in, g.weight(bias))
	}
	return g.b.Op("Gemm", in, onnx.AttrI("transB", 1))
}

// rotate returns the queries or keys x [B,S,n·Dh] after the per-head
// RMSNorm norm (Qwen3) when it is not empty, rotated by RotaryEmbedding at
// the given positions.
func (g *graphBuilder) rotate(x, norm string, n int, at fusedInputs) string {
	return g.contrib("RotaryEmbedding", []string{g.headNorm(x, norm, n), at.positions, at.cos, at.sin}, 1,
		onnx.AttrI("interleaved", 0), onnx.AttrI("num_heads", int64(n)))[0]
}

// fusedBlock applies decoder layer l to the residual stream x [B·S, D],
// given hn, x normalised by the layer's input RMSNorm. It returns the new
// residual stream and that stream normalised by nextNorm: the next layer's
// input norm, or the final one.
func (g *graphBuilder) fusedBlock(l int, x, hn string, at fusedInputs, kv kvIO, nextNorm string) (string, string) {
	c := g.cfg
	p := func(name string) string { return LayerParam(l, name) }
	opt := func(ok bool, name string) string {
		if ok {
			return p(name)
		}
		return ""
	}
	qkv := g.op("Reshape", g.b.Op("Gemm", g.packedQKV(l, hn), onnx.AttrI("transB", 1)), at.qkvShape)
	// GroupQueryAttention's inputs: query (or the packed query, key and
	// value), key, value, past_key, past_value, seqlens_k,
	// total_sequence_length, cos_cache, sin_cache, position_ids,
	// attention_bias.
	var in []string
	rotary := int64(0)
	switch {
	case at.fo.gqaRotary && !c.QKNorm:
		in = []string{qkv, "", ""}
		rotary = 1
	default:
		parts := g.b.OpN("Split", []string{qkv, g.ints(int64(c.QDim()), int64(c.KVDim()), int64(c.KVDim()))}, 3,
			onnx.AttrI("axis", 2))
		q, k := parts[0], parts[1]
		if at.fo.gqaRotary {
			q = g.headNorm(q, opt(c.QKNorm, ParamQNorm), c.NumHeads)
			k = g.headNorm(k, opt(c.QKNorm, ParamKNorm), c.NumKVHeads)
			rotary = 1
		} else {
			q = g.rotate(q, opt(c.QKNorm, ParamQNorm), c.NumHeads, at)
			k = g.rotate(k, opt(c.QKNorm, ParamKNorm), c.NumKVHeads, at)
		}
		in = []string{q, k, parts[2]}
	}
	in = append(in, kv.pastKey, kv.pastValue, at.seqlens, at.total)
	if rotary == 1 {
		// No position_ids: ONNX Runtime 1.30's CPU kernel rotates every row
		// by the first row's position_ids, so GroupQueryAttention derives
		// the positions from the cache (seqlens_k), row r's position p
		// becoming its cache index p+pad(r). Attention scores depend on
		// the difference of two positions only, and each row's padding is
		// the same at every step, so the logits are those of position_ids.
		in = append(in, at.cos, at.sin, "", at.bias)
	} else {
		in = append(in, "", "", "", at.bias)
	}
	ctx := g.b.Op("GroupQueryAttention", nil)
	node := g.b.Graph().Nodes[len(g.b.Graph().Nodes)-1]
	node.Domain = DomainMicrosoft
	node.Inputs = in
	node.Outputs = []string{ctx, kv.presentKey, kv.presentValue}
	node.Attrs = []onnx.Attribute{
		onnx.AttrI("num_heads", int64(c.NumHeads)),
		onnx.AttrI("kv_num_heads", int64(c.NumKVHeads)),
		onnx.AttrI("do_rotary", rotary),
	}
	if rotary == 1 {
		node.Attrs = append(node.Attrs, onnx.AttrI("rotary_interleaved", 0))
	}
	ctx = g.op("Reshape", ctx, g.ints(-1, int64(c.QDim())))
	x, hn = g.residualNorm(g.gemm(ctx, p(ParamO), opt(c.OBias, ParamOBias)), x, p(ParamPostNorm), at.fo)
	var m string
	if at.fo.gateUp {
		gu := g.b.OpN("Split", []string{g.b.Op("Gemm", g.packedGateUp(l, hn), onnx.AttrI("transB", 1)),
			g.ints(int64(c.IntermediateSize), int64(c.IntermediateSize))}, 2, onnx.AttrI("axis", 1))
		m = g.op("Mul", g.silu(gu[0]), gu[1])
	} else {
		m = g.op("Mul", g.silu(g.gemm(hn, p(ParamGate), "")), g.gemm(hn, p(ParamUp), ""))
	}
	return g.residualNorm(g.gemm(m, p(ParamDown), ""), x, nextNorm, at.fo)
}

// headNorm applies the per-head RMSNorm norm (Qwen3's q_norm and k_norm)
// to x [B,S,n·Dh], or returns x when norm is empty.
func (g *graphBuilder) headNorm(x, norm string, n int) string {
	if norm == "" {
		return x
	}
	x = g.op("Reshape", x, g.ints(0, 0, int64(n), int64(g.cfg.HeadDim)))
	return g.op("Reshape", g.simplifiedNorm(x, norm), g.ints(0, 0, int64(n*g.cfg.HeadDim)))
}

// residualNorm returns x+skip and its RMSNorm with weight: one
// SkipSimplifiedLayerNormalization, or Add and SimplifiedLayerNormalization
// under fo.addNorm.
func (g *graphBuilder) residualNorm(x, skip, weight string, fo fusedOptions) (sum, norm string) {
	if fo.addNorm {
		sum = g.op("Add", x, skip)
		return sum, g.simplifiedNorm(sum, weight)
	}
	return g.skipNorm(x, skip, weight)
}

// packedGateUp adds (once) the initializer that packs layer l's gate and
// up projection weights ([2I, D], the gate's rows then the up's) and
// returns the Gemm inputs for x.
func (g *graphBuilder) packedGateUp(l int, x string) []string {
	name := LayerParam(l, "mlp.gate_up_proj.weight")
	if !g.added[name] {
		g.added[name] = true
		wdata := make([]float32, 0, 2*g.cfg.IntermediateSize*g.cfg.HiddenSize)
		for _, part := range []string{ParamGate, ParamUp} {
			wdata = append(wdata, g.w[LayerParam(l, part)].Data...)
		}
		dims := []int64{int64(2 * g.cfg.IntermediateSize), int64(g.cfg.HiddenSize)}
		g.b.Initializer(&onnx.Tensor{Name: name, DataType: onnx.Float, Dims: dims, Float: wdata})
	}
	return []string{x, name}
}

// packedQKV adds (once) the initializers that pack layer l's query, key
// and value weights ([q+2kv, D], Hugging Face [out, in] rows one after the
// other) and biases, and returns the Gemm inputs for x.
func (g *graphBuilder) packedQKV(l int, x string) []string {
	name := LayerParam(l, "self_attn.qkv_proj.weight")
	bias := LayerParam(l, "self_attn.qkv_proj.bias")
	if !g.added[name] {
		g.added[name] = true
		var wdata []float32
		for _, part := range []string{ParamQ, ParamK, ParamV} {
			wdata = append(wdata, g.w[LayerParam(l, part)].Data...)
		}
		rows := int64(g.cfg.QDim() + 2*g.cfg.KVDim())
		g.b.Initializer(&onnx.Tensor{Name: name, DataType: onnx.Float, Dims: []int64{rows, int64(g.cfg.HiddenSize)}, Float: wdata})
		if g.cfg.QKVBias {
			var bdata []float32
			for _, part := range []string{ParamQBias, ParamKBias, ParamVBias} {
				bdata = append(bdata, g.w[LayerParam(l, part)].Data...)
			}
			g.b.Initializer(&onnx.Tensor{Name: bias, DataType: onnx.Float, Dims: []int64{rows}, Float: bdata})
		}
	}
	if g.cfg.QKVBias {
		return []string{x, name, bias}
	}
	return []string{x, name}
}
