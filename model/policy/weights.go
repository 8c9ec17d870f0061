package policy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// ParamSpec names one weight tensor and its shape.
type ParamSpec struct {
	Name  string
	Shape []int64
}

// NumElements returns the product of the spec's shape.
func (s ParamSpec) NumElements() int64 {
	n := int64(1)
	for _, d := range s.Shape {
		n *= d
	}
	return n
}

// Param is one weight tensor: its shape and row-major float32 data.
type Param struct {
	Shape []int64
	Data  []float32
}

// Weights maps parameter names (see Config.ParamSpecs) to tensors.
type Weights map[string]Param

// Layer parameter names; LayerParam builds the full name.
const (
	ParamLN1Scale = "ln1.scale"
	ParamLN1Bias  = "ln1.bias"
	ParamQWeight  = "attn.q.weight"
	ParamQBias    = "attn.q.bias"
	ParamKWeight  = "attn.k.weight"
	ParamKBias    = "attn.k.bias"
	ParamVWeight  = "attn.v.weight"
	ParamVBias    = "attn.v.bias"
	ParamOWeight  = "attn.o.weight"
	ParamOBias    = "attn.o.bias"
	ParamLN2Scale = "ln2.scale"
	ParamLN2Bias  = "ln2.bias"
	ParamFC1      = "mlp.fc1.weight"
	ParamFC1Bias  = "mlp.fc1.bias"
	ParamFC2      = "mlp.fc2.weight"
	ParamFC2Bias  = "mlp.fc2.bias"
)

// Model-level parameter names.
const (
	ParamTokEmbed = "embed.tok"
	ParamPosEmbed = "embed.pos"
	ParamLNFScale = "ln_f.scale"
	ParamLNFBias  = "ln_f.bias"
	ParamLMHead   = "lm_head.weight"
)

// LayerParam returns the full name of a block parameter, e.g.
// LayerParam(0, ParamQWeight) = "layers.0.attn.q.weight".
func LayerParam(layer int, name string) string {
	return "layers." + strconv.Itoa(layer) + "." + name
}

// ParamSpecs returns every parameter of a policy with config c, in a fixed
// canonical order. Matrices are stored [in, out] so that y = x·W + b.
func (c Config) ParamSpecs() []ParamSpec {
	d, f, v := int64(c.DModel), int64(c.DFF), int64(c.VocabSize)
	specs := []ParamSpec{
		{ParamTokEmbed, []int64{v, d}},
		{ParamPosEmbed, []int64{int64(c.MaxSeq), d}},
	}
	for l := 0; l < c.NLayers; l++ {
		for _, s := range []ParamSpec{
			{ParamLN1Scale, []int64{d}}, {ParamLN1Bias, []int64{d}},
			{ParamQWeight, []int64{d, d}}, {ParamQBias, []int64{d}},
			{ParamKWeight, []int64{d, d}}, {ParamKBias, []int64{d}},
			{ParamVWeight, []int64{d, d}}, {ParamVBias, []int64{d}},
			{ParamOWeight, []int64{d, d}}, {ParamOBias, []int64{d}},
			{ParamLN2Scale, []int64{d}}, {ParamLN2Bias, []int64{d}},
			{ParamFC1, []int64{d, f}}, {ParamFC1Bias, []int64{f}},
			{ParamFC2, []int64{f, d}}, {ParamFC2Bias, []int64{d}},
		} {
			specs = append(specs, ParamSpec{LayerParam(l, s.Name), s.Shape})
		}
	}
	return append(specs,
		ParamSpec{ParamLNFScale, []int64{d}},
		ParamSpec{ParamLNFBias, []int64{d}},
		ParamSpec{ParamLMHead, []int64{d, v}},
	)
}

// initStd is the standard deviation of the normal initialisation of
// embeddings and matrices (GPT-2's choice).
const initStd = 0.02

// Init returns freshly initialised weights for c, the same for the same
// seed: embeddings and matrices ~ N(0, 0.02²) (the residual output
// projections attn.o and mlp.fc2 scaled by 1/sqrt(2·NLayers)), biases 0,
// layer-norm scales 1.
func Init(c Config, seed uint64) (Weights, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x706f6c696379)) // "policy"
	residualStd := initStd / math.Sqrt(2*float64(c.NLayers))
	w := make(Weights)
	for _, s := range c.ParamSpecs() {
		data := make([]float32, s.NumElements())
		switch {
		case strings.HasSuffix(s.Name, ".scale"):
			for i := range data {
				data[i] = 1
			}
		case strings.HasSuffix(s.Name, ".bias"):
		default:
			std := initStd
			if strings.HasSuffix(s.Name, ParamOWeight) || strings.HasSuffix(s.Name, ParamFC2) {
				std = residualStd
			}
			for i := range data {
				data[i] = float32(rng.NormFloat64() * std)
			}
		}
		w[s.Name] = Param{Shape: append([]int64(nil), s.Shape...), Data: data}
	}
	return w, nil
}

// Check reports whether w holds exactly the parameters of c with the right
// shapes and data lengths (see CheckSpecs); failures wrap ErrWeights, or
// what c.Validate returns.
func (w Weights) Check(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	return w.CheckSpecs(c.ParamSpecs(), ErrWeights)
}

// CheckSpecs reports whether w holds exactly the tensors of specs: each
// present with the spec's shape and as many values as that shape holds, and
// no other. A failure names the first missing, misshapen, short or
// unexpected tensor and wraps errKind (a package's own mismatch sentinel;
// nil means ErrWeights).
func (w Weights) CheckSpecs(specs []ParamSpec, errKind error) error {
	if errKind == nil {
		errKind = ErrWeights
	}
	for _, s := range specs {
		p, ok := w[s.Name]
		if !ok {
			return fmt.Errorf("%w: missing tensor %q", errKind, s.Name)
		}
		if !sameShape(p.Shape, s.Shape) {
			return fmt.Errorf("%w: tensor %q has shape %v, want %v", errKind, s.Name, p.Shape, s.Shape)
		}
		if int64(len(p.Data)) != s.NumElements() {
			return fmt.Errorf("%w: tensor %q has %d values, want %d", errKind, s.Name, len(p.Data), s.NumElements())
		}
	}
	if len(w) != len(specs) {
		known := make(map[string]bool, len(specs))
		for _, s := range specs {
			known[s.Name] = true
		}
		for _, name := range w.Names() {
			if !known[name] {
				return fmt.Errorf("%w: unexpected tensor %q", errKind, name)
			}
		}
	}
	return nil
}

// Names returns the parameter names of w in sorted order.
func (w Weights) Names() []string {
	names := make([]string, 0, len(w))
	for n := range w {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Clone returns a deep copy of w.
func (w Weights) Clone() Weights {
	out := make(Weights, len(w))
	for n, p := range w {
		out[n] = Param{Shape: append([]int64(nil), p.Shape...), Data: append([]float32(nil), p.Data...)}
	}
	return out
}

// sameShape reports whether a and b are equal.
func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
