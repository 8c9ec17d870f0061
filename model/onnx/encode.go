package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// Marshal encodes m as an ONNX ModelProto in protobuf wire format, ready to
// be written to a .onnx file or handed to ONNX Runtime. Float, double, int64
// and int32 tensor data are written as little-endian raw_data. Marshal checks
// that every tensor's data agrees with its type and shape (ErrInvalidTensor)
// but does not check the graph; call Validate for that.
//
// A model whose encoding would reach protobuf's 2 GiB limit gives
// ErrTooLarge before anything is allocated: encode such a model with
// MarshalExternal or SaveExternal.
func (m *Model) Marshal() ([]byte, error) {
	return m.marshal(nil)
}

// maxProtoBytes is the size an encoding must stay under: protobuf refuses
// messages of 2 GiB or more. A variable so that tests can lower it.
var maxProtoBytes int64 = 2<<30 - 1

// marshal encodes m, writing the main-graph initializers that ext maps as
// external-data references to the places it gives.
func (m *Model) marshal(ext map[*Tensor]ExternalData) ([]byte, error) {
	if m.Graph == nil {
		return nil, ErrNoGraph
	}
	size := 1024 + dataSize(m.Graph, 0)
	for t := range ext {
		size -= t.DataSize()
	}
	if size > maxProtoBytes {
		return nil, fmt.Errorf("%w: about %d MiB of tensor data", ErrTooLarge, size>>20)
	}
	b := make([]byte, 0, size)
	b = appendVarintField(b, fModelIRVersion, uint64(m.IRVersion))
	b = appendStringField(b, fModelProducerName, m.ProducerName)
	b = appendStringField(b, fModelProducerVersion, m.ProducerVersion)
	b, err := appendMessage(b, fModelGraph, func(b []byte) ([]byte, error) { return appendGraph(b, m.Graph, ext) })
	if err != nil {
		return nil, err
	}
	for _, op := range m.Opsets {
		b, _ = appendMessage(b, fModelOpsetImport, func(b []byte) ([]byte, error) {
			b = protowire.AppendTag(b, fOpsetDomain, protowire.BytesType)
			b = protowire.AppendString(b, op.Domain)
			return appendVarintField(b, fOpsetVersion, uint64(op.Version)), nil
		})
	}
	if int64(len(b)) > maxProtoBytes {
		return nil, fmt.Errorf("%w: %d MiB encoded", ErrTooLarge, len(b)>>20)
	}
	return b, nil
}

// appendMessage appends field num holding the sub-message that enc appends.
// The sub-message is encoded in place and then shifted right by the size of
// its tag and length prefix, so no temporary buffer is allocated per level.
func appendMessage(b []byte, num protowire.Number, enc func([]byte) ([]byte, error)) ([]byte, error) {
	start := len(b)
	b, err := enc(b)
	if err != nil {
		return b[:start], err
	}
	n := len(b) - start
	var hdr [20]byte // tag and length varints, at most 10 bytes each
	h := protowire.AppendTag(hdr[:0], num, protowire.BytesType)
	h = protowire.AppendVarint(h, uint64(n))
	b = append(b, h...) // grow by len(h)
	copy(b[start+len(h):], b[start:start+n])
	copy(b[start:], h)
	return b, nil
}

// appendStringField appends a string field, omitting it when empty.
func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendVarintField appends a varint field, omitting it when zero.
func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendGraph appends the fields of g; the initializers that ext maps are
// written as references to external data at the places it gives (ext is
// nil for subgraphs).
func appendGraph(b []byte, g *Graph, ext map[*Tensor]ExternalData) ([]byte, error) {
	var err error
	for i, n := range g.Nodes {
		if n == nil {
			return b, fmt.Errorf("%w: node %d is nil", ErrInvalidGraph, i)
		}
		if b, err = appendMessage(b, fGraphNode, func(b []byte) ([]byte, error) { return appendNode(b, n) }); err != nil {
			return b, err
		}
	}
	b = appendStringField(b, fGraphName, g.Name)
	for i, t := range g.Initializers {
		if t == nil {
			return b, fmt.Errorf("%w: initializer %d is nil", ErrInvalidGraph, i)
		}
		enc := func(b []byte) ([]byte, error) { return appendTensor(b, t) }
		if e, ok := ext[t]; ok {
			enc = func(b []byte) ([]byte, error) {
				if err := t.check(); err != nil {
					return b, err
				}
				return appendExternalTensor(b, t, e), nil
			}
		}
		if b, err = appendMessage(b, fGraphInitializer, enc); err != nil {
			return b, err
		}
	}
	for _, list := range []struct {
		num protowire.Number
		vis []ValueInfo
	}{{fGraphInput, g.Inputs}, {fGraphOutput, g.Outputs}, {fGraphValueInfo, g.ValueInfos}} {
		for i := range list.vis {
			vi := &list.vis[i]
			b, _ = appendMessage(b, list.num, func(b []byte) ([]byte, error) { return appendValueInfo(b, vi), nil })
		}
	}
	return b, nil
}

func appendNode(b []byte, n *Node) ([]byte, error) {
	for _, s := range n.Inputs {
		// Empty names mark omitted optional inputs and must be kept.
		b = protowire.AppendTag(b, fNodeInput, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	for _, s := range n.Outputs {
		b = protowire.AppendTag(b, fNodeOutput, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	b = appendStringField(b, fNodeName, n.Name)
	b = appendStringField(b, fNodeOpType, n.OpType)
	var err error
	for i := range n.Attrs {
		a := &n.Attrs[i]
		if b, err = appendMessage(b, fNodeAttribute, func(b []byte) ([]byte, error) { return appendAttribute(b, a) }); err != nil {
			return b, fmt.Errorf("node %q attribute %q: %w", n.Name, a.Name, err)
		}
	}
	b = appendStringField(b, fNodeDomain, n.Domain)
	return b, nil
}

func appendAttribute(b []byte, a *Attribute) ([]byte, error) {
	b = appendStringField(b, fAttrName, a.Name)
	var err error
	switch a.Type {
	case AttrFloat:
		b = protowire.AppendTag(b, fAttrF, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	case AttrInt:
		b = protowire.AppendTag(b, fAttrI, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.I))
	case AttrString:
		b = protowire.AppendTag(b, fAttrS, protowire.BytesType)
		b = protowire.AppendBytes(b, a.S)
	case AttrTensor:
		if a.T == nil {
			return b, fmt.Errorf("%w: tensor attribute without tensor", ErrInvalidTensor)
		}
		b, err = appendMessage(b, fAttrT, func(b []byte) ([]byte, error) { return appendTensor(b, a.T) })
	case AttrGraph:
		if a.G == nil {
			return b, fmt.Errorf("%w: graph attribute without graph", ErrInvalidGraph)
		}
		b, err = appendMessage(b, fAttrG, func(b []byte) ([]byte, error) { return appendGraph(b, a.G, nil) })
	case AttrFloats:
		for _, f := range a.Floats {
			b = protowire.AppendTag(b, fAttrFloats, protowire.Fixed32Type)
			b = protowire.AppendFixed32(b, math.Float32bits(f))
		}
	case AttrIntList:
		for _, v := range a.Ints {
			b = protowire.AppendTag(b, fAttrInts, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(v))
		}
	case AttrStrings:
		for _, s := range a.Strings {
			b = protowire.AppendTag(b, fAttrStrings, protowire.BytesType)
			b = protowire.AppendBytes(b, s)
		}
	default:
		return b, fmt.Errorf("%w: unsupported attribute type %d", ErrInvalidGraph, a.Type)
	}
	if err != nil {
		return b, err
	}
	b = protowire.AppendTag(b, fAttrType, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(a.Type)), nil
}

func appendValueInfo(b []byte, vi *ValueInfo) []byte {
	b = appendStringField(b, fValueInfoName, vi.Name)
	b, _ = appendMessage(b, fValueInfoType, func(b []byte) ([]byte, error) {
		return appendMessage(b, fTypeTensorType, func(b []byte) ([]byte, error) {
			b = appendVarintField(b, fTypeTensorElem, uint64(vi.DataType))
			if vi.Shape == nil {
				return b, nil // unknown rank: no shape field at all
			}
			return appendMessage(b, fTypeTensorShape, func(b []byte) ([]byte, error) {
				for _, d := range vi.Shape {
					b, _ = appendMessage(b, fShapeDim, func(b []byte) ([]byte, error) {
						if d.Param != "" {
							return appendStringField(b, fDimParam, d.Param), nil
						}
						b = protowire.AppendTag(b, fDimValue, protowire.VarintType)
						return protowire.AppendVarint(b, uint64(d.Value)), nil
					})
				}
				return b, nil
			})
		})
	})
	return b
}

func appendTensor(b []byte, t *Tensor) ([]byte, error) {
	if err := t.check(); err != nil {
		return b, err
	}
	if t.External != nil {
		return appendExternalTensor(b, t, *t.External), nil
	}
	for _, d := range t.Dims {
		b = protowire.AppendTag(b, fTensorDims, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d))
	}
	b = protowire.AppendTag(b, fTensorDataType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.DataType))
	b = appendStringField(b, fTensorName, t.Name)
	switch {
	case len(t.Raw) > 0:
		b = protowire.AppendTag(b, fTensorRawData, protowire.BytesType)
		b = protowire.AppendBytes(b, t.Raw)
	case len(t.Float) > 0:
		b = appendRawHeader(b, len(t.Float)*4)
		for _, v := range t.Float {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	case len(t.Double) > 0:
		b = appendRawHeader(b, len(t.Double)*8)
		for _, v := range t.Double {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	case len(t.Int64) > 0:
		b = appendRawHeader(b, len(t.Int64)*8)
		for _, v := range t.Int64 {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	case len(t.Int32) > 0 && t.DataType == Int32:
		b = appendRawHeader(b, len(t.Int32)*4)
		for _, v := range t.Int32 {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		}
	case len(t.Int32) > 0:
		// bool, (u)int8 and float16 held in int32_data: keep that field so
		// the element width stays the reader's business.
		n := 0
		for _, v := range t.Int32 {
			n += protowire.SizeVarint(uint64(int64(v)))
		}
		b = protowire.AppendTag(b, fTensorInt32Data, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		for _, v := range t.Int32 {
			b = protowire.AppendVarint(b, uint64(int64(v)))
		}
	}
	return b, nil
}

// appendExternalTensor appends the fields of t with its data replaced by a
// reference to e: data_location EXTERNAL and the external_data entries
// location, offset and length.
func appendExternalTensor(b []byte, t *Tensor, e ExternalData) []byte {
	for _, d := range t.Dims {
		b = protowire.AppendTag(b, fTensorDims, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d))
	}
	b = protowire.AppendTag(b, fTensorDataType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.DataType))
	b = appendStringField(b, fTensorName, t.Name)
	for _, kv := range [...][2]string{
		{extLocation, e.Location},
		{extOffset, strconv.FormatInt(e.Offset, 10)},
		{extLength, strconv.FormatInt(e.Length, 10)},
	} {
		b, _ = appendMessage(b, fTensorExternal, func(b []byte) ([]byte, error) {
			b = protowire.AppendTag(b, fEntryKey, protowire.BytesType)
			b = protowire.AppendString(b, kv[0])
			b = protowire.AppendTag(b, fEntryValue, protowire.BytesType)
			return protowire.AppendString(b, kv[1]), nil
		})
	}
	return appendVarintField(b, fTensorLocation, locationExternal)
}

func appendRawHeader(b []byte, n int) []byte {
	b = protowire.AppendTag(b, fTensorRawData, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	return slices.Grow(b, n)
}

// dataSize estimates the bytes of tensor data in g and its subgraphs, to
// size the output buffer once.
func dataSize(g *Graph, depth int) int64 {
	if g == nil || depth > maxDepth {
		return 0
	}
	n := int64(0)
	size := func(t *Tensor) int64 {
		if t == nil {
			return 0
		}
		return int64(len(t.Raw)) + 4*int64(len(t.Float)) + 8*int64(len(t.Double)) + 8*int64(len(t.Int64)) + 5*int64(len(t.Int32)) + 16
	}
	for _, t := range g.Initializers {
		n += size(t)
	}
	for _, nd := range g.Nodes {
		if nd == nil {
			continue
		}
		for _, a := range nd.Attrs {
			n += size(a.T) + dataSize(a.G, depth+1)
		}
	}
	return n
}
