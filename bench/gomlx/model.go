package main

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
)

// Arch is the decoder-only transformer benchmarked here. It mirrors the
// project's policy (model/policy): pre-norm LayerNorm blocks, learned
// positions, causal multi-head attention with separate biased Q/K/V/O
// projections, a tanh-GELU MLP, a final LayerNorm and an untied output head
// without bias.
type Arch struct {
	Vocab, DModel, Heads, DFF, Layers, Seq int
}

// layerNormEps matches the project's LayerNorm epsilon.
const layerNormEps = 1e-5

// modelFn returns a train.ModelFn building the logits [B, T, Vocab] from
// token ids [B, T] (int32).
func (a Arch) modelFn() func(ctx *context.Context, _ any, inputs []*graph.Node) []*graph.Node {
	return func(ctx *context.Context, _ any, inputs []*graph.Node) []*graph.Node {
		tokens := inputs[0]
		g := tokens.Graph()
		x := layers.Embedding(ctx.In("tok_embed"), tokens, dtypes.Float32, a.Vocab, a.DModel)
		pos := ctx.In("pos_embed").
			VariableWithShape("embeddings", shapes.Make(dtypes.Float32, 1, a.Seq, a.DModel)).
			ValueGraph(g)
		x = graph.Add(x, pos)
		for l := range a.Layers {
			lctx := ctx.Inf("layer_%02d", l)
			h := layerNorm(lctx.In("ln1"), x)
			x = graph.Add(x, a.attention(lctx.In("attn"), h))
			h = layerNorm(lctx.In("ln2"), x)
			h = layers.Dense(lctx.In("fc1"), h, true, a.DFF)
			h = activations.GeluApproximate(h)
			h = layers.Dense(lctx.In("fc2"), h, true, a.DModel)
			x = graph.Add(x, h)
		}
		x = layerNorm(ctx.In("ln_f"), x)
		logits := layers.Dense(ctx.In("lm_head"), x, false, a.Vocab)
		return []*graph.Node{logits}
	}
}

// layerNorm normalises over the last axis with learned scale and offset.
func layerNorm(ctx *context.Context, x *graph.Node) *graph.Node {
	return layers.LayerNormalization(ctx, x, -1).Epsilon(layerNormEps).Done()
}

// attention is causal multi-head self-attention over x [B, T, D]: separate
// Q, K, V projections to [B, T, H, D/H], scaled dot products, a causal mask,
// softmax over keys, and the output projection back to D.
func (a Arch) attention(ctx *context.Context, x *graph.Node) *graph.Node {
	g := x.Graph()
	headDim := a.DModel / a.Heads
	q := layers.Dense(ctx.In("q"), x, true, a.Heads, headDim)
	k := layers.Dense(ctx.In("k"), x, true, a.Heads, headDim)
	v := layers.Dense(ctx.In("v"), x, true, a.Heads, headDim)
	q = graph.MulScalar(q, 1/math.Sqrt(float64(headDim)))
	scores := graph.Einsum("bqhd,bkhd->bhqk", q, k) // [B, H, Tq, Tk]
	pos := shapes.Make(dtypes.Int32, a.Seq, a.Seq)
	causal := graph.GreaterOrEqual(graph.Iota(g, pos, 0), graph.Iota(g, pos, 1))
	causal = graph.BroadcastToDims(graph.Reshape(causal, 1, 1, a.Seq, a.Seq), scores.Shape().Dimensions...)
	probs := graph.MaskedSoftmax(scores, causal, -1)
	out := graph.Einsum("bhqk,bkhd->bqhd", probs, v) // [B, T, H, D/H]
	out = graph.Reshape(out, out.Shape().Dimensions[0], a.Seq, a.DModel)
	return layers.Dense(ctx.In("o"), out, true, a.DModel)
}
