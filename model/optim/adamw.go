// Package optim holds the optimizer that updates policy and labeler weights
// in Go after ONNX Runtime has computed their gradients: AdamW (Adam with
// decoupled weight decay, Loshchilov & Hutter) over flat float32 buffers,
// with global-norm gradient clipping and serialisable state so that a
// learner can checkpoint and resume bit-exactly.
package optim

import (
	"errors"
	"fmt"
	"math"
)

// Sentinel errors returned (wrapped) by this package; test with errors.Is.
var (
	// ErrConfig means a Config or parameter list cannot work.
	ErrConfig = errors.New("optim: bad config")
	// ErrShape means buffers passed to Step disagree with the parameters the
	// optimizer was built for.
	ErrShape = errors.New("optim: shape mismatch")
	// ErrNonFinite means a gradient holds NaN or Inf; no weight was changed.
	ErrNonFinite = errors.New("optim: non-finite gradient")
	// ErrState means serialized optimizer state is malformed or belongs to
	// other parameters.
	ErrState = errors.New("optim: bad state")
)

// Config holds AdamW hyperparameters.
type Config struct {
	// LR is the learning rate (SetLR changes it between steps).
	LR float64
	// Beta1 and Beta2 are the moment decay rates (defaults 0.9, 0.999).
	Beta1, Beta2 float64
	// Eps is added to the root of the second moment (default 1e-8).
	Eps float64
	// WeightDecay is the decoupled decay coefficient, applied as
	// w -= LR*WeightDecay*w to parameters whose Decay flag is set.
	WeightDecay float64
	// ClipNorm, when positive, scales all gradients together so that their
	// global L2 norm is at most ClipNorm (scale ClipNorm/(norm+1e-6), as
	// PyTorch's clip_grad_norm_).
	ClipNorm float64
}

// DefaultConfig returns AdamW defaults: LR 1e-3, betas (0.9, 0.999), eps
// 1e-8, weight decay 0.01, clipping at norm 1.
func DefaultConfig() Config {
	return Config{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, ClipNorm: 1}
}

// Param describes one parameter buffer.
type Param struct {
	// Name identifies the parameter in serialized state.
	Name string
	// Size is the number of elements.
	Size int
	// Decay says whether weight decay applies (typically true for matrices
	// and embeddings, false for biases and normalisation gains).
	Decay bool
}

// StepStats reports what one Step did.
type StepStats struct {
	// Step is the optimizer step count after the update (1 for the first).
	Step int64
	// GradNorm is the global L2 norm of the gradients before clipping.
	GradNorm float64
	// Scale is the factor applied to the gradients (1 when not clipped).
	Scale float64
}

// AdamW is the optimizer state for a fixed list of parameters. It is not
// safe for concurrent use.
type AdamW struct {
	cfg    Config
	params []Param
	m, v   [][]float32
	step   int64
}

// NewAdamW returns an optimizer for params with zero moments.
func NewAdamW(cfg Config, params []Param) (*AdamW, error) {
	if cfg.Beta1 == 0 && cfg.Beta2 == 0 {
		cfg.Beta1, cfg.Beta2 = 0.9, 0.999
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-8
	}
	switch {
	case cfg.LR <= 0 || math.IsNaN(cfg.LR):
		return nil, fmt.Errorf("%w: learning rate %v must be positive", ErrConfig, cfg.LR)
	case cfg.Beta1 < 0 || cfg.Beta1 >= 1 || cfg.Beta2 < 0 || cfg.Beta2 >= 1:
		return nil, fmt.Errorf("%w: betas (%v, %v) must lie in [0, 1)", ErrConfig, cfg.Beta1, cfg.Beta2)
	case cfg.Eps <= 0 || cfg.WeightDecay < 0 || cfg.ClipNorm < 0:
		return nil, fmt.Errorf("%w: eps %v, weight decay %v, clip norm %v", ErrConfig, cfg.Eps, cfg.WeightDecay, cfg.ClipNorm)
	}
	seen := map[string]bool{}
	o := &AdamW{cfg: cfg, params: append([]Param(nil), params...)}
	for _, p := range params {
		if p.Size < 0 || seen[p.Name] {
			return nil, fmt.Errorf("%w: parameter %q (size %d) duplicated or negative", ErrConfig, p.Name, p.Size)
		}
		seen[p.Name] = true
		o.m = append(o.m, make([]float32, p.Size))
		o.v = append(o.v, make([]float32, p.Size))
	}
	return o, nil
}

// Config returns the current hyperparameters.
func (o *AdamW) Config() Config { return o.cfg }

// SetLR changes the learning rate for later steps (for schedules).
func (o *AdamW) SetLR(lr float64) { o.cfg.LR = lr }

// StepCount returns the number of updates applied so far.
func (o *AdamW) StepCount() int64 { return o.step }

// Params returns the parameter list.
func (o *AdamW) Params() []Param { return append([]Param(nil), o.params...) }

// GlobalNorm returns the L2 norm of all gradients together.
func GlobalNorm(grads [][]float32) float64 {
	s := 0.0
	for _, g := range grads {
		for _, x := range g {
			s += float64(x) * float64(x)
		}
	}
	return math.Sqrt(s)
}

// Step applies one AdamW update to weights in place, given their gradients
// (same order and sizes as the Params). Gradients are read, not modified.
// With a non-finite gradient nothing changes and ErrNonFinite is returned.
func (o *AdamW) Step(weights, grads [][]float32) (StepStats, error) {
	if len(weights) != len(o.params) || len(grads) != len(o.params) {
		return StepStats{}, fmt.Errorf("%w: %d weights and %d gradients for %d parameters", ErrShape, len(weights), len(grads), len(o.params))
	}
	for i, p := range o.params {
		if len(weights[i]) != p.Size || len(grads[i]) != p.Size {
			return StepStats{}, fmt.Errorf("%w: %s has %d weights, %d gradients, want %d", ErrShape, p.Name, len(weights[i]), len(grads[i]), p.Size)
		}
	}
	norm := GlobalNorm(grads)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return StepStats{GradNorm: norm, Step: o.step}, ErrNonFinite
	}
	scale := 1.0
	if o.cfg.ClipNorm > 0 && norm > o.cfg.ClipNorm {
		scale = o.cfg.ClipNorm / (norm + 1e-6)
	}
	o.step++
	b1, b2 := o.cfg.Beta1, o.cfg.Beta2
	bc1 := 1 - math.Pow(b1, float64(o.step))
	bc2 := 1 - math.Pow(b2, float64(o.step))
	lr, eps := o.cfg.LR, o.cfg.Eps
	for i, p := range o.params {
		w, g, m, v := weights[i], grads[i], o.m[i], o.v[i]
		decay := 1.0
		if p.Decay {
			decay = 1 - lr*o.cfg.WeightDecay
		}
		for j := range w {
			gj := float64(g[j]) * scale
			mj := b1*float64(m[j]) + (1-b1)*gj
			vj := b2*float64(v[j]) + (1-b2)*gj*gj
			m[j], v[j] = float32(mj), float32(vj)
			upd := (mj / bc1) / (math.Sqrt(vj/bc2) + eps)
			w[j] = float32(float64(w[j])*decay - lr*upd)
		}
	}
	return StepStats{Step: o.step, GradNorm: norm, Scale: scale}, nil
}
