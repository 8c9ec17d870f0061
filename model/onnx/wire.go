package onnx

// Field numbers from onnx.proto (github.com/onnx/onnx, onnx/onnx.proto). Only
// the fields wsgrpo reads or writes are listed; every other field is skipped
// on decode.
const (
	// ModelProto.
	fModelIRVersion       = 1
	fModelProducerName    = 2
	fModelProducerVersion = 3
	fModelGraph           = 7
	fModelOpsetImport     = 8

	// OperatorSetIdProto.
	fOpsetDomain  = 1
	fOpsetVersion = 2

	// GraphProto.
	fGraphNode        = 1
	fGraphName        = 2
	fGraphInitializer = 5
	fGraphInput       = 11
	fGraphOutput      = 12
	fGraphValueInfo   = 13

	// NodeProto.
	fNodeInput     = 1
	fNodeOutput    = 2
	fNodeName      = 3
	fNodeOpType    = 4
	fNodeAttribute = 5
	fNodeDomain    = 7

	// AttributeProto.
	fAttrName    = 1
	fAttrF       = 2
	fAttrI       = 3
	fAttrS       = 4
	fAttrT       = 5
	fAttrG       = 6
	fAttrFloats  = 7
	fAttrInts    = 8
	fAttrStrings = 9
	fAttrType    = 20

	// TensorProto.
	fTensorDims       = 1
	fTensorDataType   = 2
	fTensorFloatData  = 4
	fTensorInt32Data  = 5
	fTensorInt64Data  = 7
	fTensorName       = 8
	fTensorRawData    = 9
	fTensorDoubleData = 10
	fTensorExternal   = 13
	fTensorLocation   = 14

	// StringStringEntryProto (TensorProto.external_data).
	fEntryKey   = 1
	fEntryValue = 2

	// TensorProto.DataLocation.
	locationExternal = 1

	// ValueInfoProto.
	fValueInfoName = 1
	fValueInfoType = 2

	// TypeProto and TypeProto.Tensor.
	fTypeTensorType  = 1
	fTypeTensorElem  = 1
	fTypeTensorShape = 2
	fShapeDim        = 1
	fDimValue        = 1
	fDimParam        = 2
)
