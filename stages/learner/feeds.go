package learner

import (
	"cmp"
	"slices"

	"github.com/wsgrpo/wsgrpo/model/autodiff"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/train"
)

// Names the learner adds to the training graph.
const (
	// inputLossScale [1] multiplies a micro-batch's loss by its share of
	// the step's sequences times the number of micro-batches, so that the
	// trainer's plain mean over micro-batches is the loss of the whole
	// step, whatever the micro-batch sizes.
	inputLossScale = "learner.loss_scale"
	// outputLoss is the scaled loss the trainer differentiates.
	outputLoss = "learner.loss"
)

// appendScaledLoss appends outputLoss = loss * inputLossScale to g.
func appendScaledLoss(g *onnx.Graph, loss string) string {
	e := autodiff.NewEditor(g, "learner/")
	scale := e.Input(inputLossScale, onnx.Float, onnx.Dim{Value: 1})
	s := e.Op("Squeeze", []string{scale, e.Ints(0)})
	e.Named("Mul", []string{loss, s}, []string{outputLoss})
	e.Output(outputLoss, onnx.Float)
	return outputLoss
}

// split orders rows by sequence length (longest first, trajectory id
// breaking ties, so the order does not depend on arrival) and cuts them
// into ceil(n/max) micro-batches whose sizes differ by at most one, so
// that rows of similar length share a batch and little of it is padding.
func split(rows []*row, maxRows int) [][]*row {
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b *row) int {
		if c := cmp.Compare(len(b.seq), len(a.seq)); c != 0 {
			return c
		}
		return cmp.Compare(a.l.TrajectoryID, b.l.TrajectoryID)
	})
	k := (len(rows) + maxRows - 1) / maxRows
	out := make([][]*row, 0, k)
	for i := range k {
		lo, hi := i*len(rows)/k, (i+1)*len(rows)/k
		out = append(out, rows[lo:hi])
	}
	return out
}

// feeds builds the training inputs of one micro-batch of the n rows of a
// step cut into k micro-batches: the inputs are each sequence but its
// last token, the targets each but its first, and only completion targets
// count. Advantages are per sequence, or per token with step credit.
func (p *Processor) feeds(rows []*row, n, k int) (map[string]*ort.Tensor, error) {
	inputs := make([][]int32, len(rows))
	for i, r := range rows {
		inputs[i] = r.seq[:len(r.seq)-1]
	}
	b, err := policy.NewBatch(inputs, p.tok.PAD(), false, p.model.maxSeq())
	if err != nil {
		return nil, err
	}
	size := b.Rows * b.Len
	targets := make([]int64, size)
	mask := make([]float32, size)
	old := make([]float32, size)
	ref := make([]float32, size)
	var adv []float32
	if p.opts.PerStepCredit {
		adv = make([]float32, size)
	} else {
		adv = make([]float32, b.Rows)
	}
	for i, r := range rows {
		l := r.l
		base := i * b.Len
		if !p.opts.PerStepCredit {
			adv[i] = l.Advantage
		}
		for c := range l.CompletionTokenIDs {
			j := base + r.prompt - 1 + c
			targets[j] = int64(l.CompletionTokenIDs[c])
			mask[j] = 1
			old[j] = l.TokenLogprobs[c]
			ref[j] = r.ref[c]
		}
		if p.opts.PerStepCredit {
			tokenAdvantages(adv[base+r.prompt-1:base+r.prompt-1+len(l.CompletionTokenIDs)], l.Advantage, l.StepEnds, l.StepAdvantages)
		}
	}
	shape := []int64{int64(b.Rows), int64(b.Len)}
	advShape := []int64{int64(b.Rows)}
	if p.opts.PerStepCredit {
		advShape = shape
	}
	return map[string]*ort.Tensor{
		policy.InputIDs:        ort.I64Tensor(b.IDs, shape...),
		policy.InputMask:       ort.I64Tensor(b.Mask, shape...),
		train.InputTargets:     ort.I64Tensor(targets, shape...),
		train.InputTokenMask:   ort.F32Tensor(mask, shape...),
		train.InputOldLogprobs: ort.F32Tensor(old, shape...),
		train.InputRefLogprobs: ort.F32Tensor(ref, shape...),
		train.InputAdvantages:  ort.F32Tensor(adv, advShape...),
		inputLossScale:         ort.F32Tensor([]float32{float32(k) * float32(len(rows)) / float32(n)}, 1),
	}, nil
}

// tokenAdvantages fills dst (one value per completion token) with the
// advantage of each token: with step advantages (schemas.Labeled:
// StepAdvantages[t] is the whole advantage of step t's tokens, the
// sequence advantage plus the labeler's centred step term), step t's
// tokens [ends[t-1], ends[t]) get steps[t] and tokens after the last step
// end (EOS) keep adv; without them every token gets adv.
func tokenAdvantages(dst []float32, adv float32, ends []int32, steps []float32) {
	t := 0
	for c := range dst {
		for t < len(ends) && int32(c) >= ends[t] {
			t++
		}
		dst[c] = adv
		if t < len(steps) && t < len(ends) {
			dst[c] = steps[t]
		}
	}
}
