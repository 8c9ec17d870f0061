package onnx

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// richModel uses every construct the encoder supports.
func richModel() *Model {
	b := NewBuilder("rich")
	x := b.Input("x", Float, Dim{Param: "batch"}, Dim{Value: 3})
	flag := b.Input("flag", Bool)
	w := b.Initializer(&Tensor{Name: "w", DataType: Float, Dims: []int64{3, 2}, Float: []float32{1, -2, 3.5, 0, float32(math.Inf(1)), -0.25}})
	b.Initializer(&Tensor{Name: "d", DataType: Double, Dims: []int64{2}, Double: []float64{math.Pi, -1e300}})
	b.Initializer(&Tensor{Name: "i64", DataType: Int64, Dims: []int64{3}, Int64: []int64{math.MinInt64, -1, math.MaxInt64}})
	b.Initializer(&Tensor{Name: "i32", DataType: Int32, Dims: []int64{2}, Int32: []int32{math.MinInt32, 7}})
	b.Initializer(&Tensor{Name: "mask", DataType: Bool, Dims: []int64{3}, Raw: []byte{1, 0, 1}})
	b.Initializer(&Tensor{Name: "bytes", DataType: Uint8, Dims: []int64{2}, Int32: []int32{255, 3}})
	b.Initializer(&Tensor{Name: "empty", DataType: Float, Dims: []int64{0, 4}})
	y := b.Op("MatMul", []string{x, w})
	c := b.Constant(ScalarF32(0.5))
	z := b.Op("Mul", []string{y, c})
	axes := b.Constant(Int64s(1))
	s := b.Op("ReduceSum", []string{z, axes}, AttrI("keepdims", 0), AttrI("noop_with_empty_axes", -3))
	then := NewBuilder("then")
	then.Named("Identity", []string{s}, []string{"then_out"})
	then.OutputAnyShape("then_out", Float)
	els := NewBuilder("else")
	els.Named("Neg", []string{s}, []string{"else_out"})
	els.OutputAnyShape("else_out", Float)
	b.Named("If", []string{flag}, []string{"picked"},
		Attribute{Name: "then_branch", Type: AttrGraph, G: then.Graph()},
		Attribute{Name: "else_branch", Type: AttrGraph, G: els.Graph()})
	b.Named("Custom", []string{"picked", ""}, []string{"out", ""},
		AttrF("alpha", -1.5), AttrS("mode", "fast"), AttrInts("perm", 1, 0, -7),
		Attribute{Name: "scales", Type: AttrFloatList, Floats: []float32{0.5, 2}},
		Attribute{Name: "tags", Type: AttrStringList, Strings: [][]byte{[]byte("a"), []byte("bc")}},
		AttrT("table", &Tensor{Name: "table", DataType: Int64, Dims: []int64{2}, Int64: []int64{4, 5}}))
	b.Graph().Nodes[len(b.Graph().Nodes)-1].Domain = "com.wsgrpo"
	b.Output("out", Float, Dim{Param: "batch"})
	b.OutputAnyShape("picked", Float)
	b.Graph().ValueInfos = []ValueInfo{{Name: y, DataType: Float, Shape: []Dim{{Param: "batch"}, {Value: 2}}}}
	m := NewModel(b.Graph(), 17)
	m.Opsets = append(m.Opsets, OpsetImport{Domain: "com.wsgrpo", Version: 1})
	m.ProducerVersion = "test"
	return m
}

func TestRoundTrip(t *testing.T) {
	m := richModel()
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	enc, err := m.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := Unmarshal(enc)
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip changed the model:\n got %+v\nwant %+v", got.Graph, m.Graph)
	}
	again, err := got.Marshal()
	if err != nil {
		t.Fatalf("second Marshal: %v", err)
	}
	if !bytes.Equal(again, enc) {
		t.Fatalf("re-encoding differs: %d vs %d bytes", len(again), len(enc))
	}
	sig, err := ReadSignature(enc)
	if err != nil {
		t.Fatalf("ReadSignature: %v", err)
	}
	if !reflect.DeepEqual(sig.Inputs, m.Graph.Inputs) || !reflect.DeepEqual(sig.Outputs, m.Graph.Outputs) {
		t.Fatalf("signature %+v, want inputs %+v outputs %+v", sig, m.Graph.Inputs, m.Graph.Outputs)
	}
}

// TestUnmarshalTypedAndUnknownFields feeds a hand-encoded model that uses
// the typed tensor fields (packed and unpacked), packed dims and attribute
// lists, and fields this package does not model.
func TestUnmarshalTypedAndUnknownFields(t *testing.T) {
	msg := func(b []byte, num protowire.Number, body []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, body)
	}
	str := func(b []byte, num protowire.Number, s string) []byte { return msg(b, num, []byte(s)) }
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		b = protowire.AppendTag(b, num, protowire.VarintType)
		return protowire.AppendVarint(b, v)
	}
	unknown := func(b []byte, doc protowire.Number) []byte {
		b = str(b, doc, "doc string")                          // doc_string: not modelled
		b = protowire.AppendTag(b, 999, protowire.Fixed64Type) // a field no message has
		b = protowire.AppendFixed64(b, 42)
		return msg(b, 998, []byte{0x08, 0x01})
	}

	var fl []byte // float tensor: packed dims, packed float_data
	fl = msg(fl, fTensorDims, protowire.AppendVarint(protowire.AppendVarint(nil, 2), 2))
	fl = varint(fl, fTensorDataType, uint64(Float))
	var packed []byte
	for _, v := range []float32{1, 2, 3, 4} {
		packed = protowire.AppendFixed32(packed, math.Float32bits(v))
	}
	fl = msg(fl, fTensorFloatData, packed)
	fl = str(fl, fTensorName, "f")
	fl = unknown(fl, 12)

	var db []byte // double tensor: unpacked double_data
	db = varint(db, fTensorDims, 2)
	db = varint(db, fTensorDataType, uint64(Double))
	for _, v := range []float64{0.5, -8} {
		db = protowire.AppendTag(db, fTensorDoubleData, protowire.Fixed64Type)
		db = protowire.AppendFixed64(db, math.Float64bits(v))
	}
	db = str(db, fTensorName, "d")

	var in []byte // int64 tensor: unpacked int64_data with a negative value
	in = varint(in, fTensorDims, 2)
	in = varint(in, fTensorDataType, uint64(Int64))
	in = varint(in, fTensorInt64Data, uint64(1<<64-5))
	in = varint(in, fTensorInt64Data, 9)
	in = str(in, fTensorName, "i")

	var attr []byte // packed ints and floats in an attribute
	attr = str(attr, fAttrName, "axes")
	attr = msg(attr, fAttrInts, protowire.AppendVarint(protowire.AppendVarint(nil, 0), 1))
	attr = varint(attr, fAttrType, uint64(AttrIntList))
	attr = unknown(attr, 13)

	var node []byte
	node = str(node, fNodeInput, "f")
	node = str(node, fNodeOutput, "y")
	node = str(node, fNodeOpType, "ReduceSum")
	node = msg(node, fNodeAttribute, attr)
	node = unknown(node, 6)

	var g []byte
	g = msg(g, fGraphNode, node)
	g = str(g, fGraphName, "hand")
	g = msg(g, fGraphInitializer, fl)
	g = msg(g, fGraphInitializer, db)
	g = msg(g, fGraphInitializer, in)
	g = msg(g, fGraphOutput, str(nil, fValueInfoName, "y")) // no type at all
	g = unknown(g, 10)

	var model []byte
	model = varint(model, fModelIRVersion, 8)
	model = unknown(model, 6)
	model = msg(model, fModelGraph, g)
	model = msg(model, fModelOpsetImport, varint(nil, fOpsetVersion, 13))
	model = msg(model, 14, str(nil, 1, "key")) // metadata_props

	m, err := Unmarshal(model)
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	want := &Model{
		IRVersion: 8,
		Opsets:    []OpsetImport{{Version: 13}},
		Graph: &Graph{
			Name: "hand",
			Nodes: []*Node{{OpType: "ReduceSum", Inputs: []string{"f"}, Outputs: []string{"y"},
				Attrs: []Attribute{{Name: "axes", Type: AttrIntList, Ints: []int64{0, 1}}}}},
			Initializers: []*Tensor{
				{Name: "f", DataType: Float, Dims: []int64{2, 2}, Float: []float32{1, 2, 3, 4}},
				{Name: "d", DataType: Double, Dims: []int64{2}, Double: []float64{0.5, -8}},
				{Name: "i", DataType: Int64, Dims: []int64{2}, Int64: []int64{-5, 9}},
			},
			Outputs: []ValueInfo{{Name: "y"}},
		},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("Unmarshal = %+v\nwant %+v", m.Graph, want.Graph)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	m := richModel()
	m.Opsets = nil // the graph is then the last field: every strict prefix is incomplete
	enc, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(enc) {
		if _, err := Unmarshal(enc[:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded without error", n, len(enc))
		}
	}
	rawTensor := func(raw []byte, dims ...int64) []byte {
		var t []byte
		for _, d := range dims {
			t = protowire.AppendVarint(protowire.AppendTag(t, fTensorDims, protowire.VarintType), uint64(d))
		}
		t = protowire.AppendVarint(protowire.AppendTag(t, fTensorDataType, protowire.VarintType), uint64(Float))
		t = protowire.AppendBytes(protowire.AppendTag(t, fTensorRawData, protowire.BytesType), raw)
		g := protowire.AppendBytes(protowire.AppendTag(nil, fGraphInitializer, protowire.BytesType), t)
		return protowire.AppendBytes(protowire.AppendTag(nil, fModelGraph, protowire.BytesType), g)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrNoGraph},
		{"huge length prefix", []byte{0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}, ErrMalformed},
		{"wrong wire type for graph", []byte{0x38, 0x01}, ErrMalformed},
		{"bad tag", []byte{0x00}, ErrMalformed},
		{"raw size not a multiple", rawTensor([]byte{1, 2, 3}, 1), ErrInvalidTensor},
		{"raw size disagrees with dims", rawTensor(make([]byte, 8), 3), ErrInvalidTensor},
		{"huge dims", rawTensor(make([]byte, 4), 1<<40, 1<<40), ErrInvalidTensor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Unmarshal error = %v, want %v", err, tc.want)
			}
			if _, err := ReadSignature(tc.in); err == nil && !errors.Is(tc.want, ErrInvalidTensor) {
				t.Fatalf("ReadSignature accepted %x", tc.in)
			}
		})
	}
}

func TestUnmarshalDepthLimit(t *testing.T) {
	g := []byte{}
	for range maxDepth + 2 {
		attr := protowire.AppendBytes(protowire.AppendTag(nil, fAttrG, protowire.BytesType), g)
		node := protowire.AppendBytes(protowire.AppendTag(nil, fNodeAttribute, protowire.BytesType), attr)
		g = protowire.AppendBytes(protowire.AppendTag(nil, fGraphNode, protowire.BytesType), node)
	}
	model := protowire.AppendBytes(protowire.AppendTag(nil, fModelGraph, protowire.BytesType), g)
	if _, err := Unmarshal(model); !errors.Is(err, ErrMalformed) {
		t.Fatalf("deeply nested graphs: %v, want ErrMalformed", err)
	}
}

func TestMarshalErrors(t *testing.T) {
	withInit := func(tensor *Tensor) *Model {
		return NewModel(&Graph{Initializers: []*Tensor{tensor}}, 17)
	}
	withAttr := func(a Attribute) *Model {
		return NewModel(&Graph{Nodes: []*Node{{OpType: "X", Attrs: []Attribute{a}}}}, 17)
	}
	for _, tc := range []struct {
		name string
		m    *Model
		want error
	}{
		{"no graph", &Model{}, ErrNoGraph},
		{"too few elements", withInit(&Tensor{Name: "t", DataType: Float, Dims: []int64{3}, Float: []float32{1}}), ErrInvalidTensor},
		{"wrong slice for type", withInit(&Tensor{Name: "t", DataType: Int64, Float: []float32{1}}), ErrInvalidTensor},
		{"two data fields", withInit(&Tensor{Name: "t", DataType: Float, Float: []float32{1}, Raw: []byte{0, 0, 0, 0}}), ErrInvalidTensor},
		{"no data", withInit(&Tensor{Name: "t", DataType: Float, Dims: []int64{2}}), ErrInvalidTensor},
		{"negative dim", withInit(&Tensor{Name: "t", DataType: Float, Dims: []int64{-1}}), ErrInvalidTensor},
		{"raw size", withInit(&Tensor{Name: "t", DataType: Double, Raw: []byte{1, 2, 3, 4}}), ErrInvalidTensor},
		{"nil initializer", withInit(nil), ErrInvalidGraph},
		{"tensor attribute without tensor", withAttr(Attribute{Name: "a", Type: AttrTensor}), ErrInvalidTensor},
		{"graph attribute without graph", withAttr(Attribute{Name: "a", Type: AttrGraph}), ErrInvalidGraph},
		{"undefined attribute type", withAttr(Attribute{Name: "a"}), ErrInvalidGraph},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.m.Marshal(); !errors.Is(err, tc.want) {
				t.Fatalf("Marshal error = %v, want %v", err, tc.want)
			}
		})
	}
}
