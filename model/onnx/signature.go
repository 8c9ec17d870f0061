package onnx

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// Signature is the interface of a model's graph: the inputs a caller must
// feed (graph inputs that are not initializers) and the graph outputs.
type Signature struct {
	Inputs  []ValueInfo
	Outputs []ValueInfo
}

// ReadSignature decodes only the graph inputs and outputs of an encoded
// ModelProto, skipping nodes and weights, so it costs little even for a large
// model. Errors wrap ErrMalformed or ErrNoGraph.
func ReadSignature(b []byte) (*Signature, error) {
	var graph []byte
	found := false
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num != fModelGraph {
			return skipField(num, typ, b)
		}
		s, n, err := bytesField(typ, b)
		graph, found = s, true
		return n, err
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNoGraph
	}
	sig := &Signature{}
	var all []ValueInfo
	inits := map[string]bool{}
	err = forEachField(graph, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case fGraphInput, fGraphOutput:
			s, n, err := bytesField(typ, b)
			if err != nil {
				return n, err
			}
			vi, err := decodeValueInfo(s)
			if num == fGraphInput {
				all = append(all, vi)
			} else {
				sig.Outputs = append(sig.Outputs, vi)
			}
			return n, err
		case fGraphInitializer:
			s, n, err := bytesField(typ, b)
			if err != nil {
				return n, err
			}
			return n, forEachField(s, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
				if num != fTensorName {
					return skipField(num, typ, b)
				}
				name, n, err := bytesField(typ, b)
				inits[string(name)] = true
				return n, err
			})
		}
		return skipField(num, typ, b)
	})
	if err != nil {
		return nil, err
	}
	for _, vi := range all {
		if !inits[vi.Name] {
			sig.Inputs = append(sig.Inputs, vi)
		}
	}
	return sig, nil
}
