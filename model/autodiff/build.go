package autodiff

import (
	"fmt"
	"slices"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// GradPrefix is prepended to a weight's name to name its gradient output.
const GradPrefix = "grad."

// MinOpset is the oldest default-domain opset whose operator forms the
// gradient rules read and write (axes as inputs of ReduceSum, Unsqueeze,
// Squeeze and Split; single-axis Softmax).
const MinOpset = 13

// Option adjusts Build.
type Option func(*config)

type config struct {
	opset   int64
	outputs []string
}

// WithOpset tells Build the default-domain opset the graph is written for
// (17 when not given). It decides whether Reduce* nodes take their axes as an
// attribute (before 18) or an input.
func WithOpset(v int64) Option { return func(c *config) { c.opset = v } }

// WithOutputs keeps the named forward values as extra outputs of the training
// graph (metrics such as a mean KL or a clip fraction).
func WithOutputs(names ...string) Option {
	return func(c *config) { c.outputs = append(c.outputs, names...) }
}

// Build returns a training graph for g: the forward nodes of g, then nodes
// computing the gradient of the value loss with respect to each initializer
// named in params. g is not modified. In the result the params are graph
// inputs (same names, types and shapes as the initializers were), the other
// initializers stay, and the outputs are loss, any WithOutputs values, and
// GradPrefix+param for each param, in order. A param whose value does not
// influence the loss gets a zero gradient. The loss may have any shape; its
// gradient seed is all ones (so a non-scalar loss is summed).
func Build(g *onnx.Graph, loss string, params []string, opts ...Option) (*onnx.Graph, error) {
	cfg := config{opset: 17}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.opset < MinOpset {
		return nil, fmt.Errorf("%w: opset %d, need %d or later", ErrOpset, cfg.opset, MinOpset)
	}
	out, paramInfo, err := trainingSkeleton(g, params)
	if err != nil {
		return nil, err
	}
	info := inferGraph(g)
	li, ok := info[loss]
	if !ok {
		return nil, fmt.Errorf("%w: loss %q", ErrUnknownValue, loss)
	}
	if !isFloat(li.dt) {
		return nil, fmt.Errorf("%w: loss %q has type %v, want a float type", ErrUnknownValue, loss, li.dt)
	}
	for _, name := range cfg.outputs {
		if _, ok := info[name]; !ok {
			return nil, fmt.Errorf("%w: output %q", ErrUnknownValue, name)
		}
	}
	c := &ctx{e: NewEditor(out, "grad/"), info: info, opset: cfg.opset}
	for _, p := range params {
		c.e.Reserve(GradPrefix + p)
	}
	if err := c.backward(g, loss, params); err != nil {
		return nil, err
	}
	out.Outputs = []onnx.ValueInfo{outputInfo(g, loss, li)}
	for _, name := range cfg.outputs {
		out.Outputs = append(out.Outputs, outputInfo(g, name, info[name]))
	}
	for i, p := range params {
		gname := GradPrefix + p
		if gs := c.grads[p]; len(gs) > 0 {
			c.e.Named("Identity", []string{c.sum(gs)}, []string{gname})
		} else {
			c.e.Named("ConstantOfShape", []string{c.e.Ints(paramInfo[i].Dims...)}, []string{gname},
				onnx.AttrT("value", zeroTensor(paramInfo[i].DataType, 1)))
		}
		out.Outputs = append(out.Outputs, onnx.ValueInfo{Name: gname, DataType: paramInfo[i].DataType, Shape: onnx.Dims(paramInfo[i].Dims...)})
	}
	return out, nil
}

// trainingSkeleton copies g with the params moved from initializers to inputs.
func trainingSkeleton(g *onnx.Graph, params []string) (*onnx.Graph, []*onnx.Tensor, error) {
	byName := map[string]*onnx.Tensor{}
	for _, t := range g.Initializers {
		byName[t.Name] = t
	}
	isParam := map[string]bool{}
	infos := make([]*onnx.Tensor, len(params))
	out := &onnx.Graph{
		Name:       g.Name + "_train",
		Nodes:      slices.Clone(g.Nodes),
		Inputs:     slices.Clone(g.Inputs),
		ValueInfos: slices.Clone(g.ValueInfos),
	}
	for i, p := range params {
		t, ok := byName[p]
		if !ok || !isFloat(t.DataType) {
			return nil, nil, fmt.Errorf("%w: weight %q is not a float initializer", ErrUnknownValue, p)
		}
		if isParam[p] {
			return nil, nil, fmt.Errorf("%w: weight %q listed twice", ErrUnknownValue, p)
		}
		isParam[p] = true
		infos[i] = t
		// An initializer may double as the default of a graph input of the
		// same name; the input then stays as it is.
		if !slices.ContainsFunc(out.Inputs, func(vi onnx.ValueInfo) bool { return vi.Name == p }) {
			out.Inputs = append(out.Inputs, onnx.ValueInfo{Name: p, DataType: t.DataType, Shape: onnx.Dims(t.Dims...)})
		}
	}
	for _, t := range g.Initializers {
		if !isParam[t.Name] {
			out.Initializers = append(out.Initializers, t)
		}
	}
	return out, infos, nil
}

// outputInfo describes a kept forward value: as inferred when its rank is
// known, else as g declares it among its outputs.
func outputInfo(g *onnx.Graph, name string, vi *vinfo) onnx.ValueInfo {
	if vi.rank < 0 {
		for _, o := range g.Outputs {
			if o.Name == name {
				return o
			}
		}
	}
	return valueInfo(name, vi)
}

func valueInfo(name string, vi *vinfo) onnx.ValueInfo {
	v := onnx.ValueInfo{Name: name, DataType: vi.dt}
	if vi.rank >= 0 {
		v.Shape = make([]onnx.Dim, vi.rank)
		for i, d := range vi.dims {
			switch {
			case d.p != "":
				v.Shape[i] = onnx.Dim{Param: d.p}
			case d.v >= 0:
				v.Shape[i] = onnx.Dim{Value: d.v}
			default:
				v.Shape[i] = onnx.Dim{Param: fmt.Sprintf("%s_d%d", name, i)}
			}
		}
	}
	return v
}

// zeroTensor returns a one-element tensor of type dt holding zero (n is the
// rank: 1 for ConstantOfShape values).
func zeroTensor(dt onnx.DataType, rank int) *onnx.Tensor {
	t := scalarTensor(dt, 0)
	if rank == 1 {
		t.Dims = []int64{1}
	}
	return t
}

// ctx carries the state of one backward pass.
type ctx struct {
	e     *Editor
	info  map[string]*vinfo
	opset int64
	grads map[string][]string
}

// backward walks g's nodes in reverse, accumulating gradient contributions.
func (c *ctx) backward(g *onnx.Graph, loss string, params []string) error {
	// Values that depend on a param through float tensors.
	req := map[string]bool{}
	for _, p := range params {
		req[p] = true
	}
	for _, n := range g.Nodes {
		if noGrad[n.OpType] {
			continue
		}
		dep := false
		for _, in := range n.Inputs {
			dep = dep || req[in]
		}
		if !dep {
			continue
		}
		for _, o := range n.Outputs {
			if vi := c.info[o]; vi != nil && isFloat(vi.dt) {
				req[o] = true
			}
		}
	}
	c.grads = map[string][]string{}
	if !req[loss] {
		return nil
	}
	c.grads[loss] = []string{c.ones(loss)}
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		gy := make([]string, len(n.Outputs))
		anyGrad := false
		for j, o := range n.Outputs {
			if gs := c.grads[o]; len(gs) > 0 && req[o] {
				gy[j] = c.sum(gs)
				anyGrad = true
			}
		}
		if !anyGrad {
			continue
		}
		want := make([]bool, len(n.Inputs))
		wantAny := false
		for j, in := range n.Inputs {
			want[j] = in != "" && req[in]
			wantAny = wantAny || want[j]
		}
		if !wantAny {
			continue
		}
		r, ok := ruleFor(n)
		if !ok {
			return fmt.Errorf("%w: %s (node %q) lies between a weight and the loss", ErrUnsupportedOp, n.OpType, n.Name)
		}
		if err := checkArity(n); err != nil {
			return err
		}
		gx, err := r(c, n, gy, want)
		if err != nil {
			return fmt.Errorf("node %q: %w", n.Name, err)
		}
		for j, gxi := range gx {
			if j < len(want) && want[j] && gxi != "" {
				c.grads[n.Inputs[j]] = append(c.grads[n.Inputs[j]], gxi)
			}
		}
	}
	return nil
}

// noGrad lists float-producing operators whose gradient is zero or
// undefined: their outputs carry no gradient back.
var noGrad = map[string]bool{
	"Shape": true, "Size": true, "Sign": true, "Floor": true, "Ceil": true, "Round": true,
	"ArgMax": true, "ArgMin": true, "ConstantOfShape": true, "Constant": true, "NonZero": true,
	"Equal": true, "Less": true, "Greater": true, "LessOrEqual": true, "GreaterOrEqual": true,
	"RandomNormalLike": true, "RandomUniformLike": true, "EyeLike": true, "OneHot": true,
}

// sum returns the sum of gradient contributions (one node for several).
func (c *ctx) sum(gs []string) string {
	if len(gs) == 1 {
		return gs[0]
	}
	return c.e.Op("Sum", gs)
}

// ones returns a tensor of ones shaped like v.
func (c *ctx) ones(v string) string {
	vi := c.info[v]
	if vi.rank == 0 {
		return c.e.Scalar(vi.dt, 1)
	}
	one := scalarTensor(vi.dt, 1)
	one.Dims = []int64{1}
	return c.e.Op("ConstantOfShape", []string{c.e.Op("Shape", []string{v})}, onnx.AttrT("value", one))
}

// zerosLike returns a tensor of zeros shaped and typed like v.
func (c *ctx) zerosLike(v string) string {
	return c.e.Op("ConstantOfShape", []string{c.e.Op("Shape", []string{v})}, onnx.AttrT("value", zeroTensor(c.dt(v), 1)))
}

// dt returns v's element type.
func (c *ctx) dt(v string) onnx.DataType {
	if vi := c.info[v]; vi != nil {
		return vi.dt
	}
	return onnx.Undefined
}

// rank returns v's rank or ErrUnknownRank.
func (c *ctx) rank(v string) (int, error) {
	if vi := c.info[v]; vi != nil && vi.rank >= 0 {
		return vi.rank, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownRank, v)
}

// scalar returns a rank-0 constant of v's element type.
func (c *ctx) scalar(v string, x float64) string { return c.e.Scalar(c.dt(v), x) }

// op appends a one-output node.
func (c *ctx) op(opType string, inputs ...string) string { return c.e.Op(opType, inputs) }

// minInputs is the number of inputs a node needs before its rule may read
// them (1 when not listed).
var minInputs = map[string]int{
	"Add": 2, "Sub": 2, "Mul": 2, "Div": 2, "Pow": 2, "Where": 3, "MatMul": 2, "Gemm": 2,
	"Gather": 2, "GatherElements": 2, "Reshape": 2, "Expand": 2, "Slice": 3, "CumSum": 2,
	"LayerNormalization": 2,
}

// checkArity rejects malformed nodes (too few inputs, empty required
// inputs, no outputs, bad permutations) before a rule indexes into them.
func checkArity(n *onnx.Node) error {
	need := max(1, minInputs[n.OpType])
	if len(n.Inputs) < need || len(n.Outputs) < 1 {
		return fmt.Errorf("%w: %s node %q has %d inputs and %d outputs", ErrUnsupportedOp, n.OpType, n.Name, len(n.Inputs), len(n.Outputs))
	}
	for i := range need {
		if n.Inputs[i] == "" {
			return fmt.Errorf("%w: %s node %q lacks input %d", ErrUnsupportedOp, n.OpType, n.Name, i)
		}
	}
	if a := attr(n, "perm"); a != nil && n.OpType == "Transpose" && !validPerm(a.Ints) {
		return fmt.Errorf("%w: Transpose node %q has permutation %v", ErrUnsupportedOp, n.Name, a.Ints)
	}
	return nil
}
