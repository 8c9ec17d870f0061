package onnx

import "fmt"

// Validate checks that m is a well-formed model: it has a graph and an
// opset for the default domain; names of inputs, initializers and node
// outputs are unique; every node input is a graph input, an initializer, or
// an output of an earlier node (or of an enclosing graph, for subgraphs);
// every graph output is produced; and initializers agree with their shapes.
// Errors wrap ErrInvalidGraph, ErrInvalidTensor or ErrNoGraph.
func (m *Model) Validate() error {
	if m.Graph == nil {
		return ErrNoGraph
	}
	hasDefault := false
	for _, op := range m.Opsets {
		if op.Domain == "" || op.Domain == "ai.onnx" {
			hasDefault = true
		}
	}
	if !hasDefault {
		return fmt.Errorf("%w: no opset import for the default ONNX domain", ErrInvalidGraph)
	}
	return validateGraph(m.Graph, nil, 0)
}

// scope is the set of value names visible in a graph, chained to the
// enclosing graph's scope.
type scope struct {
	names map[string]bool
	outer *scope
}

func (s *scope) has(name string) bool {
	for ; s != nil; s = s.outer {
		if s.names[name] {
			return true
		}
	}
	return false
}

func validateGraph(g *Graph, outer *scope, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: graphs nested deeper than %d", ErrInvalidGraph, maxDepth)
	}
	sc := &scope{names: map[string]bool{}, outer: outer}
	define := func(name, what string) error {
		if name == "" {
			return fmt.Errorf("%w: graph %q: %s with an empty name", ErrInvalidGraph, g.Name, what)
		}
		if sc.names[name] {
			return fmt.Errorf("%w: graph %q: %s %q defined twice", ErrInvalidGraph, g.Name, what, name)
		}
		sc.names[name] = true
		return nil
	}
	for _, vi := range g.Inputs {
		if err := define(vi.Name, "input"); err != nil {
			return err
		}
	}
	inputs := sc.names
	sc.names = make(map[string]bool, len(inputs))
	for name := range inputs {
		sc.names[name] = true
	}
	for i, t := range g.Initializers {
		if t == nil {
			return fmt.Errorf("%w: graph %q: initializer %d is nil", ErrInvalidGraph, g.Name, i)
		}
		// An initializer may share its name with a graph input (a default
		// value for that input) but not with another initializer.
		if !inputs[t.Name] {
			if err := define(t.Name, "initializer"); err != nil {
				return err
			}
		}
		if err := t.check(); err != nil {
			return fmt.Errorf("graph %q: %w", g.Name, err)
		}
	}
	for i, n := range g.Nodes {
		if n == nil {
			return fmt.Errorf("%w: graph %q: node %d is nil", ErrInvalidGraph, g.Name, i)
		}
		if n.OpType == "" {
			return fmt.Errorf("%w: graph %q: node %d (%q) has no op type", ErrInvalidGraph, g.Name, i, n.Name)
		}
		for _, in := range n.Inputs {
			if in != "" && !sc.has(in) {
				return fmt.Errorf("%w: graph %q: node %d (%s %q) reads %q, which is not an input, initializer or earlier output",
					ErrInvalidGraph, g.Name, i, n.OpType, n.Name, in)
			}
		}
		for _, a := range n.Attrs {
			if a.Type == AttrGraph && a.G != nil {
				if err := validateGraph(a.G, sc, depth+1); err != nil {
					return fmt.Errorf("node %q attribute %q: %w", n.Name, a.Name, err)
				}
			}
			if a.Type == AttrTensor && a.T != nil {
				if err := a.T.check(); err != nil {
					return fmt.Errorf("node %q attribute %q: %w", n.Name, a.Name, err)
				}
			}
		}
		for _, out := range n.Outputs {
			if out == "" {
				continue // omitted optional output
			}
			if err := define(out, fmt.Sprintf("output of node %d (%s)", i, n.OpType)); err != nil {
				return err
			}
		}
	}
	seen := map[string]bool{}
	for _, vi := range g.Outputs {
		if !sc.has(vi.Name) {
			return fmt.Errorf("%w: graph %q: output %q is never produced", ErrInvalidGraph, g.Name, vi.Name)
		}
		if seen[vi.Name] {
			return fmt.Errorf("%w: graph %q: output %q listed twice", ErrInvalidGraph, g.Name, vi.Name)
		}
		seen[vi.Name] = true
	}
	return nil
}
