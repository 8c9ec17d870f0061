package labeler

import (
	"slices"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// prune returns a copy of g that computes only the outputs named in keep:
// graph outputs not in keep, the nodes that only they need, and the
// initializers no remaining node reads are removed. The featurizer uses it
// to drop the policy's language-model head, whose [B,T,V] logits it never
// reads. g itself is not modified (nodes and tensors are shared, not
// copied).
func prune(g *onnx.Graph, keep ...string) *onnx.Graph {
	producer := map[string]*onnx.Node{}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			producer[o] = n
		}
	}
	live := map[*onnx.Node]bool{}
	needed := map[string]bool{}
	stack := slices.Clone(keep)
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if needed[v] {
			continue
		}
		needed[v] = true
		if n := producer[v]; n != nil && !live[n] {
			live[n] = true
			stack = append(stack, n.Inputs...)
		}
	}
	out := &onnx.Graph{Name: g.Name, Inputs: g.Inputs}
	for _, n := range g.Nodes {
		if live[n] {
			out.Nodes = append(out.Nodes, n)
		}
	}
	for _, t := range g.Initializers {
		if needed[t.Name] {
			out.Initializers = append(out.Initializers, t)
		}
	}
	for _, o := range g.Outputs {
		if slices.Contains(keep, o.Name) {
			out.Outputs = append(out.Outputs, o)
		}
	}
	for _, v := range g.ValueInfos {
		if needed[v.Name] {
			out.ValueInfos = append(out.ValueInfos, v)
		}
	}
	return out
}
