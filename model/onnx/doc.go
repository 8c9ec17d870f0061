// Package onnx holds an in-memory form of the ONNX intermediate representation
// (the subset of onnx.proto that wsgrpo writes and reads), its protobuf wire
// encoding, and a small graph-building API.
//
// The wire encoding (Model.Marshal, Unmarshal, ReadSignature) is written by
// hand on top of google.golang.org/protobuf/encoding/protowire instead of
// being generated from onnx.proto. There is no protoc in the build
// environment, and hand-written code leaves no generated files to vendor and
// keep in step with upstream; it covers only the messages and fields wsgrpo
// uses (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
// ValueInfoProto with tensor types and shapes, OperatorSetIdProto), skipping
// all others on decode; and it gives exact control over the bytes: weights
// go out as little-endian raw_data in one pass without intermediate message
// objects, and decoding bounds every length by the input so hostile files
// cannot force large allocations. Field numbers are those of onnx.proto and
// are listed in wire.go.
//
// Protobuf refuses messages of 2 GiB or more, so Marshal refuses such a
// model (ErrTooLarge), and models of any size keep their large
// initializers outside the protobuf as ONNX external data
// (TensorProto.data_location EXTERNAL; Tensor.External says where).
// MarshalExternal encodes a model without those tensors' data and returns
// the tensors themselves, uncopied, for the caller to hand to ONNX Runtime
// from memory (ort.Runtime.NewSessionExternal) or write out; SaveExternal
// writes a .onnx file and one data file beside it, each tensor at an offset
// aligned to ExternalAlign so that ONNX Runtime can memory-map it; Load and
// LoadExternal read them back, refusing any location that leads out of the
// model's directory.
//
// Model.Validate checks graph structure (every value defined before use,
// unique names, graph outputs produced) before a model is handed to ONNX
// Runtime, which reports such mistakes far less readably.
package onnx
