package policy

import "github.com/wsgrpo/wsgrpo/model/onnx"

// Symbolic dimension names used in graph input and output shapes.
const (
	DimBatch    = "batch"
	DimSeq      = "seq"
	DimPastSeq  = "past_seq"
	DimTotalSeq = "total_seq"
)

// FullGraph returns the full-sequence policy graph in float type dt
// (onnx.Float, or onnx.Double for finite-difference checks).
//
// Inputs: input_ids [B,T] int64 and attention_mask [B,T] int64 (1 for real
// tokens, 0 for padding, so left and right padding both work; NewBatch
// builds both). Positions are computed in the graph as the count of real
// tokens before each token (CumSum of the mask), the same positions the KV
// graph gets through position_ids. Outputs: logits [B,T,V] and hidden
// [B,T,D], the final layer-normed hidden state. Row t of the logits
// predicts token t+1. T must not exceed cfg.MaxSeq.
func FullGraph(cfg Config, w Weights, dt onnx.DataType) (*onnx.Model, error) {
	g, err := newGraphBuilder("wsgrpo_policy_full", cfg, w, dt)
	if err != nil {
		return nil, err
	}
	bt := []onnx.Dim{{Param: DimBatch}, {Param: DimSeq}}
	ids := g.b.Input(InputIDs, onnx.Int64, bt...)
	mask := g.b.Input(InputMask, onnx.Int64, bt...)

	t := g.dimOf(ids, 1)
	bias := g.attentionBias(mask, g.ints(0), t, t)
	x := g.embed(ids, g.positions(mask))
	for l := 0; l < cfg.NLayers; l++ {
		x = g.block(l, x, bias, kvIO{})
	}
	g.head(x, OutputHidden)
	g.b.Output(OutputLogits, dt, onnx.Dim{Param: DimBatch}, onnx.Dim{Param: DimSeq}, onnx.Dim{Value: int64(cfg.VocabSize)})
	g.b.Output(OutputHidden, dt, onnx.Dim{Param: DimBatch}, onnx.Dim{Param: DimSeq}, onnx.Dim{Value: int64(cfg.DModel)})
	return g.model(), nil
}

// KVGraph returns the float32 KV-cache policy graph, named like a Hugging
// Face exported decoder so that the generate package treats it like any
// such model.
//
// Inputs: input_ids [B,S] int64; attention_mask [B,P+S] int64 over cached
// and new tokens; position_ids [B,S] int64; past_key_values.N.key and
// past_key_values.N.value [B,H,P,Dh] float (P may be 0). Outputs: logits
// [B,S,V]; present.N.key and present.N.value [B,H,P+S,Dh]. P+S must not
// exceed cfg.MaxSeq.
func KVGraph(cfg Config, w Weights) (*onnx.Model, error) {
	g, err := newGraphBuilder("wsgrpo_policy_kv", cfg, w, onnx.Float)
	if err != nil {
		return nil, err
	}
	b, s, p, tot := onnx.Dim{Param: DimBatch}, onnx.Dim{Param: DimSeq}, onnx.Dim{Param: DimPastSeq}, onnx.Dim{Param: DimTotalSeq}
	h, dh := onnx.Dim{Value: int64(cfg.NHeads)}, onnx.Dim{Value: int64(cfg.HeadDim())}
	ids := g.b.Input(InputIDs, onnx.Int64, b, s)
	mask := g.b.Input(InputMask, onnx.Int64, b, tot)
	pos := g.b.Input(InputPositions, onnx.Int64, b, s)
	io := make([]kvIO, cfg.NLayers)
	for l := range io {
		io[l] = kvIO{
			pastKey:      g.b.Input(PastKeyName(l), onnx.Float, b, h, p, dh),
			pastValue:    g.b.Input(PastValueName(l), onnx.Float, b, h, p, dh),
			presentKey:   PresentKeyName(l),
			presentValue: PresentValueName(l),
		}
	}

	past := g.dimOf(io[0].pastKey, 2)
	bias := g.attentionBias(mask, past, g.dimOf(ids, 1), g.dimOf(mask, 1))
	x := g.embed(ids, pos)
	for l := 0; l < cfg.NLayers; l++ {
		x = g.block(l, x, bias, io[l])
	}
	g.head(x, "")
	g.b.Output(OutputLogits, onnx.Float, b, s, onnx.Dim{Value: int64(cfg.VocabSize)})
	for l := range io {
		g.b.Output(io[l].presentKey, onnx.Float, b, h, tot, dh)
		g.b.Output(io[l].presentValue, onnx.Float, b, h, tot, dh)
	}
	return g.model(), nil
}

// positions returns (CumSum(mask, axis 1) - 1) · mask: each real token's
// index among the real tokens of its row, 0 at padding.
func (g *graphBuilder) positions(mask string) string {
	axis := g.b.Constant(&onnx.Tensor{DataType: onnx.Int64, Int64: []int64{1}})
	count := g.b.Op("CumSum", []string{mask, axis})
	return g.b.Op("Mul", []string{g.b.Op("Sub", []string{count, g.ints(1)}), mask})
}
