package hf

import (
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/policy"
)

// FullGraph returns the full-sequence graph of a checkpoint: the graph for
// scoring and, through autodiff.Build, training.
//
// Inputs: input_ids [B,T] int64 and attention_mask [B,T] int64 (1 for real
// tokens, 0 for padding; left and right padding both work, as
// policy.NewBatch builds them). Positions are the count of real tokens
// before each token (CumSum of the mask), the positions KVGraph gets
// through position_ids. Outputs: logits [B,T,V] and hidden [B,T,D], the
// final RMS-normed hidden state. Row t of the logits predicts token t+1. T
// must not exceed the options' MaxSeq. Only differentiable primitives lie
// on the paths from the weights (initializers with Hugging Face names) to
// the outputs.
//
// The float32 initializers share the memory of w (a real checkpoint's
// weights are gigabytes): change w only after the model is marshalled, or
// its session created (ort.Runtime.NewModelSession, which takes a model of
// any size), or no longer used. The same holds for KVGraph and
// FusedKVGraph.
func FullGraph(cfg Config, w policy.Weights, o GraphOptions) (*onnx.Model, error) {
	g, err := newGraphBuilder("wsgrpo_hf_full", cfg, w, o)
	if err != nil {
		return nil, err
	}
	bt := []onnx.Dim{{Param: policy.DimBatch}, {Param: policy.DimSeq}}
	ids := g.b.Input(policy.InputIDs, onnx.Int64, bt...)
	mask := g.b.Input(policy.InputMask, onnx.Int64, bt...)

	t := g.dimOf(ids, 1)
	bias := g.attentionBias(mask, g.ints(0), t, t)
	r := g.rotaryTables(g.positions(mask))
	x := g.embed(ids)
	for l := 0; l < cfg.NumLayers; l++ {
		x = g.block(l, x, bias, r, kvIO{})
	}
	g.head(x, policy.OutputHidden)
	b, s := onnx.Dim{Param: policy.DimBatch}, onnx.Dim{Param: policy.DimSeq}
	g.b.Output(policy.OutputLogits, g.dt, b, s, onnx.Dim{Value: int64(cfg.VocabSize)})
	g.b.Output(policy.OutputHidden, g.dt, b, s, onnx.Dim{Value: int64(cfg.HiddenSize)})
	return g.model(), nil
}

// KVGraph returns the float32 sampling graph with a key/value cache, named
// like a Hugging Face exported decoder so that the generate package drives
// it like any such model. It is FullGraph's description with the cache
// concatenated in front of each layer's keys and values.
//
// Inputs: input_ids [B,S] int64; attention_mask [B,P+S] int64 over cached
// and new tokens; position_ids [B,S] int64; past_key_values.N.key and
// past_key_values.N.value [B,KVH,P,Dh] float (P may be 0; keys are stored
// after the rotary embedding, before the heads are repeated). Outputs:
// logits [B,S,V]; present.N.key and present.N.value [B,KVH,P+S,Dh]. P+S
// must not exceed the options' MaxSeq.
func KVGraph(cfg Config, w policy.Weights, o GraphOptions) (*onnx.Model, error) {
	o.DType = onnx.Float
	g, err := newGraphBuilder("wsgrpo_hf_kv", cfg, w, o)
	if err != nil {
		return nil, err
	}
	b, s := onnx.Dim{Param: policy.DimBatch}, onnx.Dim{Param: policy.DimSeq}
	p, tot := onnx.Dim{Param: policy.DimPastSeq}, onnx.Dim{Param: policy.DimTotalSeq}
	h, dh := onnx.Dim{Value: int64(cfg.NumKVHeads)}, onnx.Dim{Value: int64(cfg.HeadDim)}
	ids := g.b.Input(policy.InputIDs, onnx.Int64, b, s)
	mask := g.b.Input(policy.InputMask, onnx.Int64, b, tot)
	pos := g.b.Input(policy.InputPositions, onnx.Int64, b, s)
	io := make([]kvIO, cfg.NumLayers)
	for l := range io {
		io[l] = kvIO{
			pastKey:      g.b.Input(policy.PastKeyName(l), onnx.Float, b, h, p, dh),
			pastValue:    g.b.Input(policy.PastValueName(l), onnx.Float, b, h, p, dh),
			presentKey:   policy.PresentKeyName(l),
			presentValue: policy.PresentValueName(l),
		}
	}
	past := g.dimOf(io[0].pastKey, 2)
	bias := g.attentionBias(mask, past, g.dimOf(ids, 1), g.dimOf(mask, 1))
	r := g.rotaryTables(pos)
	x := g.embed(ids)
	for l := 0; l < cfg.NumLayers; l++ {
		x = g.block(l, x, bias, r, io[l])
	}
	g.head(x, "")
	g.b.Output(policy.OutputLogits, onnx.Float, b, s, onnx.Dim{Value: int64(cfg.VocabSize)})
	for l := range io {
		g.b.Output(io[l].presentKey, onnx.Float, b, h, tot, dh)
		g.b.Output(io[l].presentValue, onnx.Float, b, h, tot, dh)
	}
	return g.model(), nil
}

// SamplingGraph returns the fastest sampling graph ONNX Runtime can run for
// cfg: FusedKVGraph (in-place cache) when FusedSupported(cfg), else KVGraph.
// The generate package drives either.
func SamplingGraph(cfg Config, w policy.Weights, o GraphOptions) (*onnx.Model, error) {
	if FusedSupported(cfg) {
		return FusedKVGraph(cfg, w, o)
	}
	return KVGraph(cfg, w, o)
}
