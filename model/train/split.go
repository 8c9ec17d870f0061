package train

import (
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort"
)

// Gradients is the first half of Step: it runs the training graph on each
// micro-batch and keeps their mean gradient in the trainer, without
// touching the weights or the optimizer. A caller that must look at the
// loss before committing to an update (the learner skips non-finite
// steps) calls Gradients, checks the Result, and then calls Apply, or
// drops the gradients by not calling it.
func (t *Trainer) Gradients(batches ...map[string]*ort.Tensor) (Result, error) {
	return t.accumulate(batches)
}

// Apply is the second half of Step: one AdamW update with the gradients of
// the last Gradients call. A non-finite gradient changes nothing and gives
// optim.ErrNonFinite (with the norm in the stats).
func (t *Trainer) Apply() (optim.StepStats, error) {
	return t.opt.Step(t.weightBufs(), t.grads)
}
