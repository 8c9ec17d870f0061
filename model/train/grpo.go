package train

import (
	"fmt"
	"math"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// Aggregation says how per-token GRPO losses become one number.
type Aggregation int

const (
	// SeqMean averages each sequence's masked tokens, then the sequences
	// (the original GRPO).
	SeqMean Aggregation = iota
	// TokenSumConst sums all masked tokens and divides by batch size times
	// a constant (Dr. GRPO), so long answers are not down-weighted.
	TokenSumConst
)

// GRPOConfig configures the clipped GRPO surrogate.
type GRPOConfig struct {
	// EpsLow and EpsHigh clip the ratio to [1-EpsLow, 1+EpsHigh].
	EpsLow, EpsHigh float64
	// Beta weights the k3 KL estimate exp(ref-logp) - (ref-logp) - 1.
	Beta float64
	// Aggregation picks SeqMean or TokenSumConst.
	Aggregation Aggregation
	// NormConst is TokenSumConst's per-sequence divisor (e.g. the maximum
	// completion length).
	NormConst float64
	// PerTokenAdvantages makes InputAdvantages [B,T] instead of [B].
	PerTokenAdvantages bool
}

// GRPO output names.
const (
	// OutputGRPOLoss is the surrogate loss to minimise.
	OutputGRPOLoss = "loss.grpo"
	// OutputKL is the masked mean k3 KL estimate to the reference policy.
	OutputKL = "metric.kl"
	// OutputClipFrac is the fraction of masked tokens where the clipped
	// term was the smaller (its gradient is zero there).
	OutputClipFrac = "metric.clip_frac"
	// OutputRatio is the masked mean importance ratio.
	OutputRatio = "metric.ratio"
)

// GRPOOutputs names the values AppendGRPO adds.
type GRPOOutputs struct {
	Loss, KL, ClipFrac, Ratio string
}

// Metrics lists the logging outputs (for autodiff.WithOutputs).
func (o GRPOOutputs) Metrics() []string { return []string{o.KL, o.ClipFrac, o.Ratio} }

// AppendGRPO appends the clipped GRPO surrogate to g for logits [B,T,V] of
// float type dt, with per-token loss
//
//	-min(r A, clip(r, 1-EpsLow, 1+EpsHigh) A) + Beta (exp(ref-logp) - (ref-logp) - 1)
//
// where logp is log softmax(logits)[InputTargets], r = exp(logp - old), old
// and ref come from InputOldLogprobs and InputRefLogprobs, and A from
// InputAdvantages. Tokens where InputTokenMask is 0 do not count.
func AppendGRPO(g *onnx.Graph, dt onnx.DataType, logits string, cfg GRPOConfig) (GRPOOutputs, error) {
	if cfg.EpsLow < 0 || cfg.EpsLow >= 1 || cfg.EpsHigh < 0 || cfg.Beta < 0 || math.IsNaN(cfg.Beta) {
		return GRPOOutputs{}, fmt.Errorf("%w: eps_low %v (want [0,1)), eps_high %v, beta %v", ErrLoss, cfg.EpsLow, cfg.EpsHigh, cfg.Beta)
	}
	if cfg.Aggregation == TokenSumConst && cfg.NormConst <= 0 {
		return GRPOOutputs{}, fmt.Errorf("%w: Dr. GRPO aggregation needs a positive NormConst", ErrLoss)
	}
	e, err := lossEditor(g, dt)
	if err != nil {
		return GRPOOutputs{}, err
	}
	targets := declare(e, InputTargets, onnx.Int64, bt()...)
	mask := declare(e, InputTokenMask, dt, bt()...)
	old := declare(e, InputOldLogprobs, dt, bt()...)
	ref := declare(e, InputRefLogprobs, dt, bt()...)
	adv := InputAdvantages
	if cfg.PerTokenAdvantages {
		declare(e, adv, dt, bt()...)
	} else {
		declare(e, adv, dt, onnx.Dim{Param: DimBatch})
		adv = e.Op("Unsqueeze", []string{adv, e.Ints(1)})
	}
	op := func(t string, in ...string) string { return e.Op(t, in) }
	lp := targetLogprobs(e, logits, targets)
	// Masked-out tokens may carry any old/ref values (even -Inf padding):
	// Where keeps them out of the arithmetic instead of multiplying by 0.
	keep := op("Greater", mask, e.Scalar(dt, 0))
	zero := e.Scalar(dt, 0)
	ratio := op("Exp", op("Where", keep, op("Sub", lp, old), zero))
	s1 := op("Mul", ratio, adv)
	clipped := op("Clip", ratio, e.Scalar(dt, 1-cfg.EpsLow), e.Scalar(dt, 1+cfg.EpsHigh))
	s2 := op("Mul", clipped, adv)
	per := op("Neg", op("Min", s1, s2))
	d := op("Where", keep, op("Sub", ref, lp), zero)
	kl := op("Sub", op("Sub", op("Exp", d), d), e.Scalar(dt, 1))
	if cfg.Beta > 0 {
		per = op("Add", per, op("Mul", kl, e.Scalar(dt, cfg.Beta)))
	}
	var loss string
	switch cfg.Aggregation {
	case SeqMean:
		perSeq := e.Op("ReduceSum", []string{op("Mul", per, mask), e.Ints(1)}, onnx.AttrI("keepdims", 0))
		count := op("Max", e.Op("ReduceSum", []string{mask, e.Ints(1)}, onnx.AttrI("keepdims", 0)), e.Scalar(dt, 1))
		loss = e.Op("ReduceMean", []string{op("Div", perSeq, count)}, onnx.AttrI("keepdims", 0))
	case TokenSumConst:
		total := e.Op("ReduceSum", []string{op("Mul", per, mask)}, onnx.AttrI("keepdims", 0))
		batch := e.Op("Cast", []string{e.Op("Shape", []string{mask}, onnx.AttrI("start", 0), onnx.AttrI("end", 1))}, onnx.AttrI("to", int64(dt)))
		batch = e.Op("Squeeze", []string{batch, e.Ints(0)})
		loss = op("Div", total, op("Mul", batch, e.Scalar(dt, cfg.NormConst)))
	default:
		return GRPOOutputs{}, fmt.Errorf("%w: aggregation %d", ErrLoss, cfg.Aggregation)
	}
	isClipped := e.Op("Cast", []string{op("Less", s2, s1)}, onnx.AttrI("to", int64(dt)))
	return GRPOOutputs{
		Loss:     named(e, loss, OutputGRPOLoss, dt),
		KL:       named(e, maskedMean(e, dt, kl, mask), OutputKL, dt),
		ClipFrac: named(e, maskedMean(e, dt, isClipped, mask), OutputClipFrac, dt),
		Ratio:    named(e, maskedMean(e, dt, ratio, mask), OutputRatio, dt),
	}, nil
}
