package onnx

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// maxDepth bounds the nesting of graphs inside attributes, so that hostile
// input cannot drive the recursive decoder arbitrarily deep.
const maxDepth = 32

// Unmarshal decodes an ONNX ModelProto. Fields this package does not model are
// skipped. A tensor with external data (data_location EXTERNAL) keeps its
// place in Tensor.External and no data; Model.LoadExternal reads it, and
// Load does both. Tensor raw_data of float, double, int64 and int32 tensors is
// decoded into the typed slices (Float, Double, Int64, Int32), so a model
// survives Marshal/Unmarshal unchanged; other types keep Raw. Errors wrap
// ErrMalformed (bad wire data) or ErrInvalidTensor (data disagreeing with its
// shape); every length is checked against the input before use, so truncated
// or random bytes give an error, not a panic or a huge allocation.
func Unmarshal(b []byte) (*Model, error) {
	m := &Model{}
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case fModelIRVersion:
			v, n, err := varintField(typ, b)
			m.IRVersion = int64(v)
			return n, err
		case fModelProducerName:
			s, n, err := bytesField(typ, b)
			m.ProducerName = string(s)
			return n, err
		case fModelProducerVersion:
			s, n, err := bytesField(typ, b)
			m.ProducerVersion = string(s)
			return n, err
		case fModelGraph:
			s, n, err := bytesField(typ, b)
			if err != nil {
				return n, err
			}
			if m.Graph, err = decodeGraph(s, 0); err != nil {
				return n, err
			}
			return n, nil
		case fModelOpsetImport:
			s, n, err := bytesField(typ, b)
			if err != nil {
				return n, err
			}
			op, err := decodeOpset(s)
			m.Opsets = append(m.Opsets, op)
			return n, err
		}
		return skipField(num, typ, b)
	})
	if err != nil {
		return nil, err
	}
	if m.Graph == nil {
		return nil, ErrNoGraph
	}
	return m, nil
}

// forEachField calls fn for every field of the message in b; fn gets the bytes
// after the tag and returns how many of them the field's value used.
func forEachField(b []byte, fn func(protowire.Number, protowire.Type, []byte) (int, error)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: bad tag: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		used, err := fn(num, typ, b)
		if err != nil {
			return err
		}
		b = b[used:]
	}
	return nil
}

func skipField(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
	n := protowire.ConsumeFieldValue(num, typ, b)
	if n < 0 {
		return 0, fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(n))
	}
	return n, nil
}

func wrongType(typ protowire.Type) error {
	return fmt.Errorf("%w: unexpected wire type %d", ErrMalformed, typ)
}

func bytesField(typ protowire.Type, b []byte) ([]byte, int, error) {
	if typ != protowire.BytesType {
		return nil, 0, wrongType(typ)
	}
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return nil, 0, fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
	}
	return v, n, nil
}

func varintField(typ protowire.Type, b []byte) (uint64, int, error) {
	if typ != protowire.VarintType {
		return 0, 0, wrongType(typ)
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, 0, fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
	}
	return v, n, nil
}

// repeatedVarint reads one element, or a packed run, of a repeated varint field.
func repeatedVarint(typ protowire.Type, b []byte, dst []int64) ([]int64, int, error) {
	if typ != protowire.BytesType {
		v, n, err := varintField(typ, b)
		return append(dst, int64(v)), n, err
	}
	p, n, err := bytesField(typ, b)
	if err != nil {
		return dst, n, err
	}
	for len(p) > 0 {
		v, m := protowire.ConsumeVarint(p)
		if m < 0 {
			return dst, 0, fmt.Errorf("%w: packed varint: %v", ErrMalformed, protowire.ParseError(m))
		}
		dst = append(dst, int64(v))
		p = p[m:]
	}
	return dst, n, nil
}

// repeatedFixed32 reads one element, or a packed run, of a repeated float field.
func repeatedFixed32(typ protowire.Type, b []byte, dst []float32) ([]float32, int, error) {
	switch typ {
	case protowire.Fixed32Type:
		v, n := protowire.ConsumeFixed32(b)
		if n < 0 {
			return dst, 0, fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		return append(dst, math.Float32frombits(v)), n, nil
	case protowire.BytesType:
		p, n, err := bytesField(typ, b)
		if err != nil {
			return dst, n, err
		}
		if len(p)%4 != 0 {
			return dst, 0, fmt.Errorf("%w: packed float length %d", ErrMalformed, len(p))
		}
		return append(dst, float32sFromLE(p)...), n, nil
	}
	return dst, 0, wrongType(typ)
}

// repeatedFixed64 reads one element, or a packed run, of a repeated double field.
func repeatedFixed64(typ protowire.Type, b []byte, dst []float64) ([]float64, int, error) {
	switch typ {
	case protowire.Fixed64Type:
		v, n := protowire.ConsumeFixed64(b)
		if n < 0 {
			return dst, 0, fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		return append(dst, math.Float64frombits(v)), n, nil
	case protowire.BytesType:
		p, n, err := bytesField(typ, b)
		if err != nil {
			return dst, n, err
		}
		if len(p)%8 != 0 {
			return dst, 0, fmt.Errorf("%w: packed double length %d", ErrMalformed, len(p))
		}
		return append(dst, float64sFromLE(p)...), n, nil
	}
	return dst, 0, wrongType(typ)
}

func decodeOpset(b []byte) (OpsetImport, error) {
	var op OpsetImport
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case fOpsetDomain:
			s, n, err := bytesField(typ, b)
			op.Domain = string(s)
			return n, err
		case fOpsetVersion:
			v, n, err := varintField(typ, b)
			op.Version = int64(v)
			return n, err
		}
		return skipField(num, typ, b)
	})
	return op, err
}

func decodeGraph(b []byte, depth int) (*Graph, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: graphs nested deeper than %d", ErrMalformed, maxDepth)
	}
	g := &Graph{}
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num == fGraphName {
			s, n, err := bytesField(typ, b)
			g.Name = string(s)
			return n, err
		}
		if num != fGraphNode && num != fGraphInitializer && num != fGraphInput &&
			num != fGraphOutput && num != fGraphValueInfo {
			return skipField(num, typ, b)
		}
		s, n, err := bytesField(typ, b)
		if err != nil {
			return n, err
		}
		switch num {
		case fGraphNode:
			var nd *Node
			nd, err = decodeNode(s, depth)
			g.Nodes = append(g.Nodes, nd)
		case fGraphInitializer:
			var t *Tensor
			t, err = decodeTensor(s)
			g.Initializers = append(g.Initializers, t)
		default:
			var vi ValueInfo
			vi, err = decodeValueInfo(s)
			switch num {
			case fGraphInput:
				g.Inputs = append(g.Inputs, vi)
			case fGraphOutput:
				g.Outputs = append(g.Outputs, vi)
			default:
				g.ValueInfos = append(g.ValueInfos, vi)
			}
		}
		return n, err
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func decodeNode(b []byte, depth int) (*Node, error) {
	nd := &Node{}
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case fNodeInput, fNodeOutput, fNodeName, fNodeOpType, fNodeDomain:
			s, n, err := bytesField(typ, b)
			switch num {
			case fNodeInput:
				nd.Inputs = append(nd.Inputs, string(s))
			case fNodeOutput:
				nd.Outputs = append(nd.Outputs, string(s))
			case fNodeName:
				nd.Name = string(s)
			case fNodeOpType:
				nd.OpType = string(s)
			default:
				nd.Domain = string(s)
			}
			return n, err
		case fNodeAttribute:
			s, n, err := bytesField(typ, b)
			if err != nil {
				return n, err
			}
			a, err := decodeAttribute(s, depth)
			nd.Attrs = append(nd.Attrs, a)
			return n, err
		}
		return skipField(num, typ, b)
	})
	if err != nil {
		return nil, err
	}
	return nd, nil
}

func decodeAttribute(b []byte, depth int) (Attribute, error) {
	var a Attribute
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case fAttrName:
			s, n, err := bytesField(typ, b)
			a.Name = string(s)
			return n, err
		case fAttrType:
			v, n, err := varintField(typ, b)
			a.Type = AttrType(int32(v))
			return n, err
		case fAttrF:
			if typ != protowire.Fixed32Type {
				return 0, wrongType(typ)
			}
			v, n := protowire.ConsumeFixed32(b)
			if n < 0 {
				return 0, fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
			}
			a.F = math.Float32frombits(v)
			return n, nil
		case fAttrI:
			v, n, err := varintField(typ, b)
			a.I = int64(v)
			return n, err
		case fAttrS:
			s, n, err := bytesField(typ, b)
			a.S = append([]byte{}, s...)
			return n, err
		case fAttrStrings:
			s, n, err := bytesField(typ, b)
			a.Strings = append(a.Strings, append([]byte{}, s...))
			return n, err
		case fAttrFloats:
			var n int
			var err error
			a.Floats, n, err = repeatedFixed32(typ, b, a.Floats)
			return n, err
		case fAttrInts:
			var n int
			var err error
			a.Ints, n, err = repeatedVarint(typ, b, a.Ints)
			return n, err
		case fAttrT:
			s, n, err := bytesField(typ, b)
			if err != nil {
				return n, err
			}
			a.T, err = decodeTensor(s)
			return n, err
		case fAttrG:
			s, n, err := bytesField(typ, b)
			if err != nil {
				return n, err
			}
			a.G, err = decodeGraph(s, depth+1)
			return n, err
		}
		return skipField(num, typ, b)
	})
	return a, err
}

func decodeValueInfo(b []byte) (ValueInfo, error) {
	var vi ValueInfo
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case fValueInfoName:
			s, n, err := bytesField(typ, b)
			vi.Name = string(s)
			return n, err
		case fValueInfoType:
			s, n, err := bytesField(typ, b)
			if err != nil {
				return n, err
			}
			return n, forEachField(s, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
				if num != fTypeTensorType {
					return skipField(num, typ, b) // sequence, map, optional: not modelled
				}
				s, n, err := bytesField(typ, b)
				if err != nil {
					return n, err
				}
				return n, decodeTensorType(s, &vi)
			})
		}
		return skipField(num, typ, b)
	})
	return vi, err
}

func decodeTensorType(b []byte, vi *ValueInfo) error {
	return forEachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case fTypeTensorElem:
			v, n, err := varintField(typ, b)
			vi.DataType = DataType(int32(v))
			return n, err
		case fTypeTensorShape:
			s, n, err := bytesField(typ, b)
			if err != nil {
				return n, err
			}
			vi.Shape = []Dim{} // present, possibly rank 0
			return n, forEachField(s, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
				if num != fShapeDim {
					return skipField(num, typ, b)
				}
				s, n, err := bytesField(typ, b)
				if err != nil {
					return n, err
				}
				d, err := decodeDim(s)
				vi.Shape = append(vi.Shape, d)
				return n, err
			})
		}
		return skipField(num, typ, b)
	})
}

func decodeDim(b []byte) (Dim, error) {
	var d Dim
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case fDimValue:
			v, n, err := varintField(typ, b)
			d.Value = int64(v)
			return n, err
		case fDimParam:
			s, n, err := bytesField(typ, b)
			d.Param = string(s)
			return n, err
		}
		return skipField(num, typ, b)
	})
	return d, err
}

func decodeTensor(b []byte) (*Tensor, error) {
	t := &Tensor{}
	var raw []byte
	hasRaw := false
	ext := ExternalData{Length: -1} // -1: no length entry
	location := uint64(0)
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		var n int
		var err error
		switch num {
		case fTensorDims:
			t.Dims, n, err = repeatedVarint(typ, b, t.Dims)
		case fTensorDataType:
			var v uint64
			v, n, err = varintField(typ, b)
			t.DataType = DataType(int32(v))
		case fTensorName:
			var s []byte
			s, n, err = bytesField(typ, b)
			t.Name = string(s)
		case fTensorRawData:
			raw, n, err = bytesField(typ, b)
			hasRaw = true
		case fTensorFloatData:
			t.Float, n, err = repeatedFixed32(typ, b, t.Float)
		case fTensorDoubleData:
			t.Double, n, err = repeatedFixed64(typ, b, t.Double)
		case fTensorInt64Data:
			t.Int64, n, err = repeatedVarint(typ, b, t.Int64)
		case fTensorInt32Data:
			var v []int64
			v, n, err = repeatedVarint(typ, b, nil)
			for _, x := range v {
				t.Int32 = append(t.Int32, int32(x))
			}
		case fTensorExternal:
			var s []byte
			if s, n, err = bytesField(typ, b); err == nil {
				err = decodeExternalEntry(s, &ext)
			}
		case fTensorLocation:
			location, n, err = varintField(typ, b)
		default:
			n, err = skipField(num, typ, b)
		}
		return n, err
	})
	if err != nil {
		return nil, err
	}
	if location == locationExternal {
		if ext.Length < 0 {
			// length is optional: the rest of the tensor's elements.
			n, err := NumElements(t.Dims)
			if err != nil {
				return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
			}
			ext.Length = int64(n) * int64(t.DataType.ElemSize())
		}
		t.External = &ext
	}
	if hasRaw && len(raw) > 0 {
		if err := t.setRaw(raw); err != nil {
			return nil, err
		}
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

// setRaw stores raw_data, decoding it into the typed slice for the types that
// have one. The element count is checked against dims by the caller.
func (t *Tensor) setRaw(raw []byte) error {
	if len(t.Float)+len(t.Double)+len(t.Int64)+len(t.Int32) > 0 {
		return fmt.Errorf("%w: tensor %q: both raw_data and typed data", ErrInvalidTensor, t.Name)
	}
	sz := t.DataType.ElemSize()
	if sz > 0 && len(raw)%sz != 0 {
		return fmt.Errorf("%w: tensor %q: %d raw bytes is not a whole number of %s elements",
			ErrInvalidTensor, t.Name, len(raw), t.DataType)
	}
	switch t.DataType {
	case Float:
		t.Float = append(t.Float, float32sFromLE(raw)...)
	case Double:
		t.Double = append(t.Double, float64sFromLE(raw)...)
	case Int64:
		t.Int64 = append(t.Int64, int64sFromLE(raw)...)
	case Int32:
		t.Int32 = append(t.Int32, int32sFromLE(raw)...)
	default:
		t.Raw = append([]byte{}, raw...)
	}
	return nil
}
