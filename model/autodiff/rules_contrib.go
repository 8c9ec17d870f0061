package autodiff

import (
	"math"
	"slices"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// DomainMicrosoft is ONNX Runtime's contrib-operator domain. Build
// differentiates the operators of it listed in contribRules; a graph that
// uses them needs its opset import (see NewModel).
const DomainMicrosoft = "com.microsoft"

// contribRules maps com.microsoft operator types to gradient rules.
var contribRules = map[string]rule{
	"FastGelu": ruleFastGelu,
}

// ruleFor returns the gradient rule of n's operator in n's domain.
func ruleFor(n *onnx.Node) (rule, bool) {
	switch n.Domain {
	case "", "ai.onnx":
		r, ok := rules[n.OpType]
		return r, ok
	case DomainMicrosoft:
		r, ok := contribRules[n.OpType]
		return r, ok
	}
	return nil, false
}

// NewModel wraps a graph (for example one Build returned) in a model for the
// default domain at opset, importing com.microsoft version 1 as well when a
// node uses that domain.
func NewModel(g *onnx.Graph, opset int64) *onnx.Model {
	m := onnx.NewModel(g, opset)
	if slices.ContainsFunc(g.Nodes, func(n *onnx.Node) bool { return n.Domain == DomainMicrosoft }) {
		m.Opsets = append(m.Opsets, onnx.OpsetImport{Domain: DomainMicrosoft, Version: 1})
	}
	return m
}

// FastGelu's constants: gelu(u) = 0.5 u (1 + tanh(c (u + a u^3))).
var (
	geluC = math.Sqrt(2 / math.Pi)
	geluA = 0.044715
)

// ruleFastGelu differentiates com.microsoft FastGelu(X[, bias]), the tanh
// approximation of GELU applied to u = X + bias. With 0.5 (1 + tanh z) =
// sigmoid(2z), gelu(u) = u s where s = sigmoid(u (k1 + k2 u^2)), k1 = 2c,
// k2 = 2ca, so
//
//	gelu'(u) = s (1 + u (1 - s) (k1 + 3 k2 u^2)).
//
// This recomputes s from u: 13 element-wise passes (14 with a bias), about
// as many as the gradient of the same function written from primitives,
// whose forward pass, though, takes nine passes where FastGelu takes one.
func ruleFastGelu(c *ctx, n *onnx.Node, gy []string, want []bool) ([]string, error) {
	u := n.Inputs[0]
	hasBias := len(n.Inputs) > 1 && n.Inputs[1] != ""
	if hasBias {
		u = c.op("Add", u, n.Inputs[1])
	}
	k1, k2 := 2*geluC, 2*geluC*geluA
	q := c.op("Mul", u, u)
	s := c.op("Sigmoid", c.op("Mul", u, c.op("Add", c.op("Mul", q, c.scalar(u, k2)), c.scalar(u, k1))))
	r := c.op("Add", c.op("Mul", q, c.scalar(u, 3*k2)), c.scalar(u, k1))
	t := c.op("Mul", c.op("Mul", u, r), c.op("Sub", c.scalar(u, 1), s))
	gu := c.op("Mul", gy[0], c.op("Mul", s, c.op("Add", t, c.scalar(u, 1))))
	out := make([]string, len(n.Inputs))
	if want[0] {
		out[0] = c.reduceTo(gu, c.outInfo(n), n.Inputs[0])
	}
	if hasBias && want[1] {
		out[1] = c.reduceTo(gu, c.outInfo(n), n.Inputs[1])
	}
	return out, nil
}
