package autodiff

import (
	"errors"
	"fmt"
	"math"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
)

// ErrGradientMismatch means an analytic gradient disagrees with central
// finite differences beyond the tolerance.
var ErrGradientMismatch = errors.New("autodiff: gradient does not match finite differences")

// CheckConfig tunes CheckGradients.
type CheckConfig struct {
	// Step is the finite-difference step h (default 1e-6).
	Step float64
	// Atol and Rtol bound |analytic - numeric| <= Atol + Rtol*|numeric|
	// (defaults 1e-6 and 1e-5).
	Atol, Rtol float64
	// MaxPerParam caps how many elements of each weight are probed, spread
	// evenly over the weight (default 64).
	MaxPerParam int
	// Opset is the default-domain opset of the model (default 17).
	Opset int64
}

func (c CheckConfig) withDefaults() CheckConfig {
	if c.Step == 0 {
		c.Step = 1e-6
	}
	if c.Atol == 0 {
		c.Atol = 1e-6
	}
	if c.Rtol == 0 {
		c.Rtol = 1e-5
	}
	if c.MaxPerParam == 0 {
		c.MaxPerParam = 64
	}
	if c.Opset == 0 {
		c.Opset = 17
	}
	return c
}

// CheckGradients builds the training graph of g (a float64 graph) for loss
// and params, runs it in ONNX Runtime with feeds for g's inputs, and compares
// every returned gradient element (up to MaxPerParam per weight) with the
// central difference (L(w+h) - L(w-h)) / 2h computed by the same session. It
// returns the largest absolute error seen, and ErrGradientMismatch naming the
// first element outside the tolerance.
func CheckGradients(rt *ort.Runtime, g *onnx.Graph, loss string, params []string,
	feeds map[string]*ort.Tensor, cfg CheckConfig) (float64, error) {
	cfg = cfg.withDefaults()
	tg, err := Build(g, loss, params, WithOpset(cfg.Opset))
	if err != nil {
		return 0, err
	}
	m := NewModel(tg, cfg.Opset)
	if err := m.Validate(); err != nil {
		return 0, err
	}
	bytes, err := m.Marshal()
	if err != nil {
		return 0, err
	}
	outputs := []string{loss}
	for _, p := range params {
		outputs = append(outputs, GradPrefix+p)
	}
	sess, err := rt.NewSession(bytes, nil, outputs)
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	in := map[string]*ort.Tensor{}
	for k, v := range feeds {
		in[k] = v
	}
	weights := map[string]*onnx.Tensor{}
	for _, t := range g.Initializers {
		weights[t.Name] = t
	}
	for _, p := range params {
		w := weights[p]
		if w.DataType != onnx.Double || len(w.Double) == 0 {
			return 0, fmt.Errorf("%w: CheckGradients needs float64 weights with Double data, %q is not", ErrUnknownValue, p)
		}
		in[p] = ort.F64Tensor(append([]float64(nil), w.Double...), w.Dims...)
	}
	res, err := sess.Run(in)
	if err != nil {
		return 0, err
	}
	lossAt := func() (float64, error) {
		r, err := sess.Run(in)
		if err != nil {
			return 0, err
		}
		return sumF64(r[loss].F64), nil
	}
	worst := 0.0
	for _, p := range params {
		grad := res[GradPrefix+p].F64
		buf := in[p].F64
		if len(grad) != len(buf) {
			return worst, fmt.Errorf("%w: %s has %d gradient elements, weight has %d", ErrGradientMismatch, p, len(grad), len(buf))
		}
		stride := max(1, len(buf)/cfg.MaxPerParam)
		for i := 0; i < len(buf); i += stride {
			orig := buf[i]
			buf[i] = orig + cfg.Step
			up, err := lossAt()
			if err != nil {
				return worst, err
			}
			buf[i] = orig - cfg.Step
			down, err := lossAt()
			if err != nil {
				return worst, err
			}
			buf[i] = orig
			num := (up - down) / (2 * cfg.Step)
			diff := math.Abs(grad[i] - num)
			bad := math.IsNaN(diff) || math.IsInf(diff, 0) || diff > cfg.Atol+cfg.Rtol*math.Abs(num)
			if math.IsNaN(diff) {
				diff = math.Inf(1)
			}
			worst = max(worst, diff)
			if bad {
				return worst, fmt.Errorf("%w: d%s/d%s[%d]: analytic %.9g, numeric %.9g", ErrGradientMismatch, loss, p, i, grad[i], num)
			}
		}
	}
	return worst, nil
}

func sumF64(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}
