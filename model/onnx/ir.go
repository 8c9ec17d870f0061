package onnx

// DataType is an ONNX TensorProto.DataType value.
type DataType int32

// ONNX tensor element types used by wsgrpo.
const (
	Undefined DataType = 0
	Float     DataType = 1
	Uint8     DataType = 2
	Int8      DataType = 3
	Int32     DataType = 6
	Int64     DataType = 7
	Bool      DataType = 9
	Float16   DataType = 10
	Double    DataType = 11
)

// AttrType is an ONNX AttributeProto.AttributeType value.
type AttrType int32

// ONNX attribute kinds. The INTS kind is AttrIntList because the name
// AttrInts belongs to the builder helper that makes such an attribute;
// AttrFloatList and AttrStringList are aliases for symmetry.
const (
	AttrUndefined AttrType = 0
	AttrFloat     AttrType = 1
	AttrInt       AttrType = 2
	AttrString    AttrType = 3
	AttrTensor    AttrType = 4
	AttrGraph     AttrType = 5
	AttrFloats    AttrType = 6
	AttrIntList   AttrType = 7
	AttrStrings   AttrType = 8

	AttrFloatList  = AttrFloats
	AttrStringList = AttrStrings
)

// Tensor is a TensorProto: a named, typed, shaped constant. Exactly one of the
// typed slices (or Raw, little-endian) carries the data, or, for a tensor
// whose data lies outside the ModelProto (TensorProto.data_location
// EXTERNAL), none does and External says where the data is.
type Tensor struct {
	Name     string
	DataType DataType
	Dims     []int64
	Float    []float32
	Double   []float64
	Int64    []int64
	Int32    []int32
	Raw      []byte
	// External, when not nil, places the tensor's data in a file beside
	// the model (see ExternalData); the tensor then carries no data of its
	// own until Model.LoadExternal reads it.
	External *ExternalData
}

// ExternalData is the place of an external tensor's data: Length bytes at
// Offset of the file Location, a path relative to the model's directory,
// laid out as raw_data would be (little-endian, ElemSize bytes an element).
// These are TensorProto's external_data entries location, offset and
// length.
type ExternalData struct {
	Location string
	Offset   int64
	Length   int64
}

// Attribute is an AttributeProto.
type Attribute struct {
	Name    string
	Type    AttrType
	F       float32
	I       int64
	S       []byte
	T       *Tensor
	G       *Graph
	Floats  []float32
	Ints    []int64
	Strings [][]byte
}

// Node is a NodeProto: one operator application.
type Node struct {
	Name    string
	OpType  string
	Domain  string
	Inputs  []string
	Outputs []string
	Attrs   []Attribute
}

// Dim is one dimension of a tensor shape: a fixed size, or a symbolic name
// when Param is not empty.
type Dim struct {
	Value int64
	Param string
}

// ValueInfo is a ValueInfoProto for a tensor-typed value.
type ValueInfo struct {
	Name     string
	DataType DataType
	Shape    []Dim
}

// Graph is a GraphProto.
type Graph struct {
	Name         string
	Nodes        []*Node
	Initializers []*Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
	ValueInfos   []ValueInfo
}

// OpsetImport is an OperatorSetIdProto.
type OpsetImport struct {
	Domain  string
	Version int64
}

// Model is a ModelProto.
type Model struct {
	IRVersion       int64
	Opsets          []OpsetImport
	ProducerName    string
	ProducerVersion string
	Graph           *Graph
}
