package autodiff

import (
	"errors"
	"testing"
)

// TestDomains checks that rules apply only in their own operator domain.
func TestDomains(t *testing.T) {
	for _, tc := range []struct {
		name, op, domain string
		want             error
	}{
		{"default domain", "Tanh", "", nil},
		{"ai.onnx", "Tanh", "ai.onnx", nil},
		{"default op in another domain", "Tanh", "com.example", ErrUnsupportedOp},
		{"contrib op", "FastGelu", DomainMicrosoft, nil},
		{"contrib op without the domain", "FastGelu", "", ErrUnsupportedOp},
		{"contrib op without a rule", "BiasGelu", DomainMicrosoft, ErrUnsupportedOp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, loss := smallGraph(t, tc.op)
			for _, n := range g.Nodes {
				if n.OpType == tc.op {
					n.Domain = tc.domain
				}
			}
			tg, err := Build(g, loss, []string{"w"})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Build error = %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			m := NewModel(tg, 17)
			hasMS := false
			for _, o := range m.Opsets {
				hasMS = hasMS || o.Domain == DomainMicrosoft
			}
			if hasMS != (tc.domain == DomainMicrosoft) {
				t.Fatalf("opsets %+v for a graph using domain %q", m.Opsets, tc.domain)
			}
		})
	}
}
