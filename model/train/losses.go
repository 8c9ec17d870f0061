package train

import (
	"errors"
	"fmt"

	"github.com/wsgrpo/wsgrpo/model/autodiff"
	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// Graph inputs that the loss builders declare. Targets are int64 [B,T];
// masks, log-probabilities and advantages have the graph's float type.
const (
	// InputTargets holds the token each logits row is scored against [B,T].
	InputTargets = "loss.targets"
	// InputTokenMask is 1 for tokens that count, 0 for padding/prompt [B,T].
	InputTokenMask = "loss.token_mask"
	// InputOldLogprobs holds the sampler's log-probabilities of the targets [B,T].
	InputOldLogprobs = "loss.old_logprobs"
	// InputRefLogprobs holds the reference policy's log-probabilities [B,T].
	InputRefLogprobs = "loss.ref_logprobs"
	// InputAdvantages holds advantages, [B] per sequence or [B,T] per token.
	InputAdvantages = "loss.advantages"
)

// Dimension names of the loss inputs.
const (
	DimBatch = "batch"
	DimSeq   = "seq"
)

// ErrLoss means a loss cannot be appended (bad configuration or names).
var ErrLoss = errors.New("train: bad loss")

// lossEditor returns an editor for appending loss nodes and checks dt.
func lossEditor(g *onnx.Graph, dt onnx.DataType) (*autodiff.Editor, error) {
	if dt != onnx.Float && dt != onnx.Double {
		return nil, fmt.Errorf("%w: float type %v, want float or double", ErrLoss, dt)
	}
	return autodiff.NewEditor(g, "loss/"), nil
}

// bt returns the symbolic [batch, seq] shape.
func bt() []onnx.Dim { return []onnx.Dim{{Param: DimBatch}, {Param: DimSeq}} }

// declare adds a graph input unless the graph already has it.
func declare(e *autodiff.Editor, name string, dt onnx.DataType, shape ...onnx.Dim) string {
	for _, in := range e.Graph().Inputs {
		if in.Name == name {
			return name
		}
	}
	return e.Input(name, dt, shape...)
}

// targetLogprobs returns log softmax(logits)[target] as [B,T].
func targetLogprobs(e *autodiff.Editor, logits, targets string) string {
	lsm := e.Op("LogSoftmax", []string{logits}, onnx.AttrI("axis", -1))
	idx := e.Op("Unsqueeze", []string{targets, e.Ints(-1)})
	lp := e.Op("GatherElements", []string{lsm, idx}, onnx.AttrI("axis", -1))
	return e.Op("Squeeze", []string{lp, e.Ints(-1)})
}

// maskedMean returns sum(x*mask)/max(sum(mask), 1) over all elements.
func maskedMean(e *autodiff.Editor, dt onnx.DataType, x, mask string) string {
	num := e.Op("ReduceSum", []string{e.Op("Mul", []string{x, mask})}, onnx.AttrI("keepdims", 0))
	den := e.Op("Max", []string{e.Op("ReduceSum", []string{mask}, onnx.AttrI("keepdims", 0)), e.Scalar(dt, 1)})
	return e.Op("Div", []string{num, den})
}

// named gives value v the graph-output name out (and declares it).
func named(e *autodiff.Editor, v, out string, dt onnx.DataType) string {
	e.Named("Identity", []string{v}, []string{out})
	e.Output(out, dt, []onnx.Dim{}...)
	return out
}

// CrossEntropy names the outputs of AppendCrossEntropy.
const (
	// OutputCELoss is the mean next-token negative log-likelihood over
	// masked tokens.
	OutputCELoss = "loss.ce"
)

// AppendCrossEntropy appends the masked next-token cross-entropy of logits
// [B,T,V] (float type dt) against InputTargets, averaged over the tokens
// where InputTokenMask is 1, and returns the loss name (OutputCELoss). The
// caller aligns targets with logits (row t of the logits scores target t).
func AppendCrossEntropy(g *onnx.Graph, dt onnx.DataType, logits string) (string, error) {
	e, err := lossEditor(g, dt)
	if err != nil {
		return "", err
	}
	targets := declare(e, InputTargets, onnx.Int64, bt()...)
	mask := declare(e, InputTokenMask, dt, bt()...)
	lp := targetLogprobs(e, logits, targets)
	return named(e, maskedMean(e, dt, e.Op("Neg", []string{lp}), mask), OutputCELoss, dt), nil
}

// OutputTargetLogprobs names the output of AppendTargetLogprobs.
const OutputTargetLogprobs = "target_logprobs"

// AppendTargetLogprobs appends log softmax(logits)[InputTargets] as the
// [B,T] graph output OutputTargetLogprobs (float type dt), for reference
// and sampler log-probabilities computed by a forward graph.
func AppendTargetLogprobs(g *onnx.Graph, dt onnx.DataType, logits string) (string, error) {
	e, err := lossEditor(g, dt)
	if err != nil {
		return "", err
	}
	targets := declare(e, InputTargets, onnx.Int64, bt()...)
	e.Named("Identity", []string{targetLogprobs(e, logits, targets)}, []string{OutputTargetLogprobs})
	e.Output(OutputTargetLogprobs, dt, bt()...)
	return OutputTargetLogprobs, nil
}
